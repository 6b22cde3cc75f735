"""Composition root: argv -> Settings -> adapters -> run. The only module that wires things together."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from photosorter import __version__
from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.adapters.state import SqliteState
from photosorter.config import Settings, load_settings
from photosorter.errors import ConfigError, PhotosorterError
from photosorter.ml.download import resolve_model
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.index import UsearchIndex
from photosorter.ml.prior import ZeroShotPrior
from photosorter.pipeline import Sorter
from photosorter.records import RunReport

log = logging.getLogger("photosorter")

STATE_FILE = "state.sqlite3"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", help="sorted library folder (PHOTOSORTER_LIBRARY)")
    common.add_argument("--data", help="state, index and model cache folder (PHOTOSORTER_DATA)")
    common.add_argument("--model", help="model folder or built-in model name (PHOTOSORTER_MODEL)")
    common.add_argument("--options", type=Path, help="add-on options JSON file (e.g. /data/options.json)")
    common.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser = argparse.ArgumentParser(prog="photosorter", description="Sort a photo library into categories.")
    parser.add_argument("--version", action="version", version=f"photosorter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    sort = commands.add_parser("sort", parents=[common], help="move every photo from INBOX into the library")
    sort.add_argument("inbox", type=Path)
    label = commands.add_parser("label", parents=[common], help="teach a category with example photos")
    label.add_argument("items", nargs="+", help="PHOTO... CATEGORY (or --folder DIR CATEGORY)")
    label.add_argument("--folder", type=Path, help="label every photo in this folder")
    commands.add_parser("status", parents=[common], help="library and label counts, model, last run")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings({"library": args.library, "data": args.data, "model": args.model,
                          "log_level": args.log_level}, options_path=args.options)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S")


def build_sorter(settings: Settings, state: SqliteState) -> Sorter:
    spec = resolve_model(settings.model.name, settings.model_cache_dir, settings.model.base_url)
    embedder = OnnxEmbedder(spec, threads=settings.model.threads)
    prior = ZeroShotPrior(embedder, settings.classify.categories, settings.library.data / "cache")
    index_path = settings.library.data / f"knn-{spec.fingerprint}.usearch"
    labelled = state.labelled_embeddings(spec.fingerprint)
    index = UsearchIndex.load(index_path, spec.embedding_dim, {pid: cat for pid, cat, _ in labelled})
    if index is None:
        index = UsearchIndex(spec.embedding_dim)
        for photo_id, category, vector in labelled:
            index.upsert(photo_id, vector, category)
        if labelled:
            index.save(index_path)
            log.info("rebuilt kNN index from %d labels", len(labelled))
    return Sorter(settings=settings, state=state, files=LocalFiles(), decoder=decode_image, embedder=embedder,
                  prior=prior, index=index, index_path=index_path)


def _print_report(report: RunReport) -> None:
    total = report.handled + len(report.skipped)
    rate = total / report.elapsed_s if report.elapsed_s > 0 else 0.0
    print(f"Sorted {total} files in {report.elapsed_s:.1f} s ({rate:.1f}/s)")
    for category, count in sorted(report.placed.items()):
        print(f"  {category:<14}{count:>6}")
    print(f"  unsure (in _unsure): {report.unsure}")
    print(f"  duplicates (in _duplicates): {report.duplicates}")
    print(f"  failed (in _failed or left in place): {len(report.failed)}")
    for failure in report.failed:
        print(f"    {failure.name}: {failure.reason}")
    if report.skipped:
        print(f"  skipped (left in the inbox): {len(report.skipped)}")
        for failure in report.skipped:
            print(f"    {failure.name}: {failure.reason}")


def _label_targets(args: argparse.Namespace) -> tuple[list[Path], str]:
    *photos, category = args.items
    paths = [Path(p) for p in photos]
    if args.folder:
        paths += sorted(p for p in args.folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise ConfigError(["label: give PHOTO... CATEGORY or --folder DIR CATEGORY"])
    return paths, category.lower()


def _status(settings: Settings, state: SqliteState) -> None:
    print(f"library: {settings.library.path}")
    print(f"model: {settings.model.name}")
    counts = state.library_counts()
    print("photos in the library:")
    for name in (*settings.classify.names, "_unsure", "_duplicates", "_failed"):
        print(f"  {name:<14}{counts.get(name, 0):>6}")
    labels = state.label_counts()
    print("labels:")
    for name in settings.classify.names:
        print(f"  {name:<14}{labels.get(name, 0):>6}")
    last = state.last_run()
    if last:
        when = dt.datetime.fromtimestamp(float(last["started"])).isoformat(timespec="seconds")  # type: ignore[arg-type]
        print(f"last run: {when} with {last['model']}: placed {last['placed']}, unsure {last['unsure']}, "
              f"duplicates {last['duplicates']}, failed {last['failed']}")
    else:
        print("last run: never")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"photosorter: invalid setting {problem}", file=sys.stderr)
        return exc.exit_code
    _setup_logging(settings.general.log_level)
    state = None
    try:
        state = SqliteState(settings.library.data / STATE_FILE)
        if args.command == "status":
            _status(settings, state)
            return 0
        sorter = build_sorter(settings, state)
        if args.command == "sort":
            if not args.inbox.is_dir():
                raise ConfigError([f"inbox: {args.inbox} is not a folder"])
            _print_report(sorter.sort_folder(args.inbox))
        elif args.command == "label":
            paths, category = _label_targets(args)
            count = sorter.label(paths, category)
            print(f"labelled {count} of {len(paths)} photos as {category}")
            if count < len(paths):
                return 1
        return 0
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return exc.exit_code
    except PhotosorterError as exc:
        log.error("%s", exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        log.warning("interrupted; state is saved, run again to continue")
        return 130
    finally:
        if state is not None:
            state.close()

"""``sort``, ``label`` and ``status``: the library commands, and how a Sorter is assembled."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.adapters.previews import PreviewFolder
from photosorter.adapters.state import SqliteState
from photosorter.config import Settings
from photosorter.errors import ConfigError, ModelError
from photosorter.facestage import FaceStage
from photosorter.ml.download import resolve_model
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.faces import OnnxFaces, resolve_face_models
from photosorter.ml.index import UsearchIndex
from photosorter.ml.prior import ZeroShotPrior
from photosorter.ml.selfcheck import check_on_this_cpu, last_check
from photosorter.pipeline import Sorter
from photosorter.records import PhotoEvent, RunReport

log = logging.getLogger(__name__)

STATE_FILE = "state.sqlite3"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    sort = commands.add_parser("sort", parents=[common], help="move every photo from INBOX into the library")
    sort.add_argument("inbox", type=Path)
    sort.set_defaults(handler=run_sort)
    label = commands.add_parser("label", parents=[common], help="teach a category with example photos")
    label.add_argument("items", nargs="+", help="PHOTO... CATEGORY (or --folder DIR CATEGORY)")
    label.add_argument("--folder", type=Path, help="label every photo in this folder")
    label.set_defaults(handler=run_label)
    status = commands.add_parser("status", parents=[common], help="library and label counts, model, last run")
    status.set_defaults(handler=run_status)


def open_state(settings: Settings) -> SqliteState:
    return SqliteState(settings.library.data / STATE_FILE)


def preview_folder(settings: Settings) -> Path:
    """Where sources leave small renditions of the photos they deliver (see ``adapters.previews``)."""
    return settings.library.data / "previews"


def build_face_stage(settings: Settings, state: SqliteState, *, required: bool = False) -> FaceStage | None:
    """The face stage, when the ``faces`` setting is on. Sorting goes on without it (one warning) when its
    models cannot be found; ``required`` (the ``me`` commands) makes that an error instead."""
    if not settings.faces.enabled:
        if required:
            raise ConfigError(["faces: the face stage is off (setting faces: false)"])
        return None
    try:
        files = resolve_face_models(settings.faces.model, settings.model_cache_dir, settings.model.base_url)
    except ModelError as exc:
        if required:
            raise
        log.warning("faces off for this run (me and people come from the whole image only): %s", exc.message)
        return None
    return FaceStage(model=OnnxFaces(files, threads=settings.model.threads), store=state,
                     data_dir=settings.library.data, me_threshold=settings.faces.me_threshold)


def build_sorter(settings: Settings, state: SqliteState,
                 on_sorted: Callable[[PhotoEvent], None] | None = None, *, faces_required: bool = False) -> Sorter:
    spec = resolve_model(settings.model.name, settings.model_cache_dir, settings.model.base_url)
    spec = check_on_this_cpu(spec, settings.library.data, settings.model.threads)
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
    return Sorter(settings=settings, state=state, files=LocalFiles(settings.library.settle_seconds),
                  decoder=decode_image, embedder=embedder,
                  prior=prior, index=index, index_path=index_path, on_sorted=on_sorted,
                  faces=build_face_stage(settings, state, required=faces_required),
                  previews=PreviewFolder(preview_folder(settings)))


def print_report(report: RunReport) -> None:
    total = report.handled + report.videos + len(report.skipped)
    rate = total / report.elapsed_s if report.elapsed_s > 0 else 0.0
    print(f"Sorted {total} files in {report.elapsed_s:.1f} s ({rate:.1f}/s)")
    for category, count in sorted(report.placed.items()):
        print(f"  {category:<14}{count:>6}")
    print(f"  unsure (in _unsure): {report.unsure}")
    print(f"  duplicates (in _duplicates): {report.duplicates}")
    if report.videos:
        print(f"  videos (in videos, not classified): {report.videos}")
    print(f"  failed (in _failed or left in place): {len(report.failed)}")
    for failure in report.failed:
        print(f"    {failure.name}: {failure.reason}")
    if report.skipped:
        print(f"  skipped (left in the inbox): {len(report.skipped)}")
        for failure in report.skipped:
            print(f"    {failure.name}: {failure.reason}")


def run_sort(args: argparse.Namespace, settings: Settings) -> int:
    if not args.inbox.is_dir():
        raise ConfigError([f"inbox: {args.inbox} is not a folder"])
    state = open_state(settings)
    try:
        print_report(build_sorter(settings, state).sort_folder(args.inbox))
    finally:
        state.close()
    return 0


def run_label(args: argparse.Namespace, settings: Settings) -> int:
    *photos, category = args.items
    paths = [Path(p) for p in photos]
    if args.folder:
        paths += sorted(p for p in args.folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise ConfigError(["label: give PHOTO... CATEGORY or --folder DIR CATEGORY"])
    state = open_state(settings)
    try:
        count = build_sorter(settings, state).label(paths, category.lower())
    finally:
        state.close()
    print(f"labelled {count} of {len(paths)} photos as {category.lower()}")
    return 0 if count == len(paths) else 1


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    state = open_state(settings)
    try:
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
            started = dt.datetime.fromtimestamp(float(last["started"]))  # type: ignore[arg-type]
            print(f"last run: {started.isoformat(timespec='seconds')} with {last['model']}: placed {last['placed']}, "
                  f"unsure {last['unsure']}, duplicates {last['duplicates']}, failed {last['failed']}")
        else:
            print("last run: never")
        check = last_check(settings.library.data)
        if check is None:
            print("model check: not run yet on this data folder")
        else:
            checked = dt.datetime.fromtimestamp(check.checked_at).isoformat(timespec="seconds")
            verdict = "ok" if check.ok else "BELOW 0.99" + (", using the float32 graph" if check.fell_back else "")
            print(f"model check: {check.model} on {check.cpu}: cosine {check.min_cosine:.4f} to its float32 "
                  f"reference, {verdict} ({checked}, graph {check.graph})")
    finally:
        state.close()
    return 0

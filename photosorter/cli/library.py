"""``sort`` and ``label``: the library commands, and how a Sorter is assembled."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

from photosorter.adapters.filemeta import read_file_hints
from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.adapters.previews import PreviewFolder
from photosorter.adapters.state import SqliteState
from photosorter.cli.commands import CATEGORY_HELP, Options, described
from photosorter.config import DEFAULT_SOURCE, STATE_FILE, Settings, read_saved, save_settings, saved_path
from photosorter.core.companions import VIDEOS_FOLDER
from photosorter.core.placement import DUPLICATES_FOLDER, FAILED_FOLDER, UNSURE_FOLDER
from photosorter.core.replies import CategoryNames
from photosorter.errors import ConfigError, ModelError
from photosorter.facestage import FaceStage
from photosorter.ml.catalogue import DEFAULT_MODEL, EMBEDDED_MODEL
from photosorter.ml.download import resolve_model
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.faces import OnnxFaces, resolve_face_models
from photosorter.ml.index import UsearchIndex
from photosorter.ml.lifetime import ModelLifetime
from photosorter.ml.modelspec import ModelSpec
from photosorter.ml.prior import ZeroShotPrior
from photosorter.ml.selfcheck import check_on_this_cpu
from photosorter.ml.textread import OnnxTextReader
from photosorter.pipeline import Sorter
from photosorter.placing import check_inbox
from photosorter.records import PhotoEvent, RunReport

log = logging.getLogger(__name__)



def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    sort = commands.add_parser("sort", parents=options.everything, **described("sort"))
    sort.add_argument("inbox", type=Path, nargs="?", metavar="INBOX",
                      help="folder of photos to sort (they are moved; default: the saved or configured inbox)")
    sort.set_defaults(handler=run_sort)
    label = commands.add_parser("label", parents=options.everything, **described("label"))
    label.add_argument("photos", nargs="*", type=Path, metavar="PHOTO", help="photos that show CATEGORY")
    label.add_argument("category", metavar="CATEGORY", help=CATEGORY_HELP)
    label.add_argument("--folder", type=Path, metavar="DIR", help="also label every photo in DIR (and its subfolders)")
    label.set_defaults(handler=run_label)


def library_folders(settings: Settings) -> tuple[str, ...]:
    """The folders photosorter files photos into: an inbox may not lie inside one."""
    return (*settings.classify.names, UNSURE_FOLDER, FAILED_FOLDER, DUPLICATES_FOLDER, VIDEOS_FOLDER)


def open_state(settings: Settings) -> SqliteState:
    return SqliteState(settings.library.data / STATE_FILE)


def preview_folder(settings: Settings) -> Path:
    """Where sources leave small renditions of the photos they deliver (see ``adapters.previews``)."""
    return settings.library.data / "previews"


def session_threads(settings: Settings) -> int:
    """Threads per onnxruntime session: the sorter runs the models on its two decode workers at once, so
    each call gets half of model_threads and two calls together use them all (with 2 threads each, four
    threads fought for two cores: bench, the shared photos: 12% more CPU per photo, 14 vs 16 ms with faces)."""
    return max(1, settings.model.threads // 2)


def model_lifetime(settings: Settings, clock: Callable[[], float] = time.monotonic) -> ModelLifetime:
    """Holds the daemon's models and lets them go after ``model_idle_minutes`` (0: never). With
    ``model_worker`` they run in a child process that ends with them, so the daemon itself never imports
    onnxruntime (one-shot commands keep the default: sessions in their own process)."""
    minutes = settings.model.idle_minutes
    if settings.model.worker:
        from photosorter.ml.worker import InferenceWorker

        return ModelLifetime(minutes * 60.0 if minutes else None, clock, InferenceWorker().open_session)
    return ModelLifetime(minutes * 60.0 if minutes else None, clock)


def build_face_stage(settings: Settings, state: SqliteState, *, required: bool = False,
                     lifetime: ModelLifetime | None = None) -> FaceStage | None:
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
    return FaceStage(model=OnnxFaces(files, threads=session_threads(settings), lifetime=lifetime), store=state,
                     data_dir=settings.library.data, me_threshold=settings.faces.me_threshold)


def remember(settings: Settings, values: dict[str, str]) -> Path | None:
    """Save choices for later commands; a data folder that cannot be written only costs a warning here."""
    try:
        return save_settings(settings.library.data, values)
    except ConfigError as exc:
        log.warning("%s; later commands need the same flags", exc.message)
        return None


def chose_model(settings: Settings) -> bool:
    """Whether the person picked the model (flag, environment, .env, saved), rather than taking the default
    (the add-on's options list every option, so a default value there counts as not chosen)."""
    source = settings.source_of("model")
    return not (source == DEFAULT_SOURCE or (source.startswith("options") and settings.model.name == DEFAULT_MODEL))


def open_model(settings: Settings) -> ModelSpec:
    """The configured model; when the default cannot be downloaded and nobody chose it, the embedded one.

    The fallback is saved (``<data>/settings.json``) unless a model is saved already, so later commands
    (label, status, the next sort) use the model the photos were sorted with."""
    try:
        return resolve_model(settings.model.name, settings.model_cache_dir, settings.model.base_url)
    except ModelError as exc:
        if chose_model(settings) or settings.model.name != DEFAULT_MODEL:
            raise
        spec = resolve_model(EMBEDDED_MODEL, settings.model_cache_dir)
        log.warning("model %s is not available (%s); sorting with %s, which ships with photosorter (MobileNetV2 "
                    "8-bit, ImageNet classes: less accurate than %s). To use %s: run photosorter init --model %s "
                    "when online (labels given until then come along), or set model_base_url to a mirror, or "
                    "model to a folder holding its files",
                    DEFAULT_MODEL, exc.message, EMBEDDED_MODEL, DEFAULT_MODEL, DEFAULT_MODEL, DEFAULT_MODEL)
        if "model" not in read_saved(settings.library.data):
            remember(settings, {"model": EMBEDDED_MODEL})
        return spec


def build_sorter(settings: Settings, state: SqliteState,
                 on_sorted: Callable[[PhotoEvent], None] | None = None, *, faces_required: bool = False,
                 lifetime: ModelLifetime | None = None) -> Sorter:
    """The sorter; ``lifetime`` (a daemon's, to unload idle models) defaults to one that keeps them."""
    lifetime = lifetime or ModelLifetime()
    spec = check_on_this_cpu(open_model(settings), settings.library.data, settings.model.threads,
                             lifetime.open_session)
    embedder = OnnxEmbedder(spec, threads=session_threads(settings), lifetime=lifetime,
                            cache_dir=settings.library.data / "cache", fastest_graph=True)
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
    files = LocalFiles(settings.library.settle_seconds, atomic=(settings.library.data,))  # iCloud's incoming: whole
    sorter = Sorter(settings=settings, state=state, files=files, decoder=decode_image, embedder=embedder,
                    prior=prior, index=index, index_path=index_path, on_sorted=on_sorted,
                    faces=build_face_stage(settings, state, required=faces_required, lifetime=lifetime),
                    previews=PreviewFolder(preview_folder(settings)), file_hints=read_file_hints,
                    text=OnnxTextReader(threads=settings.model.threads, lifetime=lifetime).look
                    if settings.classify.text_signal else None)
    sorter.relearn_labels({photo_id for photo_id, _, _ in labelled})  # after a change of model
    return sorter


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


def category_named(settings: Settings, typed: str) -> str:
    """The category a person typed: its name, title, plural, a synonym or an unambiguous prefix (the same
    matching as email replies); a ``ConfigError`` listing the categories otherwise."""
    name, why = CategoryNames(settings.classify.categories).resolve(typed)
    if name is None:
        raise ConfigError([f"category: {why}; the categories are {', '.join(settings.classify.names)}"])
    return name


def chosen_values(settings: Settings, **given: str | Path | None) -> dict[str, str]:
    """The settings worth saving: ``given`` ones, and those the person set (not defaults); paths made absolute."""
    current = {"library": settings.library.path, "inbox": settings.library.inbox, "model": settings.model.name,
               "face_model": settings.faces.model}
    values: dict[str, str] = {}
    for key, value in current.items():
        if given.get(key) is not None:
            value = given[key]  # type: ignore[assignment]
        elif settings.source_of(key) == DEFAULT_SOURCE or settings.source_of(key).startswith("saved"):
            continue
        path = Path(str(value)).expanduser()
        values[key] = str(path.resolve()) if key in ("library", "inbox") or path.exists() else str(value)
    return values


def run_sort(args: argparse.Namespace, settings: Settings) -> int:
    inbox = args.inbox if args.inbox is not None else (Path(settings.library.inbox) if settings.library.inbox else None)
    if inbox is None:
        raise ConfigError(["inbox: give the folder to sort (photosorter sort INBOX), or save one with "
                           "photosorter init --inbox INBOX"])
    if not inbox.exists():
        raise ConfigError([f"inbox: {inbox} does not exist"])
    if not inbox.is_dir():
        raise ConfigError([f"inbox: {inbox} is a file, not a folder"])
    check_inbox(inbox, settings.library.path, library_folders(settings))
    first = not saved_path(settings.library.data).exists()
    state = open_state(settings)
    try:
        print_report(build_sorter(settings, state).sort_folder(inbox))
    finally:
        state.close()
    if first:  # the first sort remembers its choices, so the next commands need no flags
        values = chosen_values(settings, inbox=inbox, library=settings.library.path)
        path = remember(settings, values)
        if path is not None:
            log.info("saved %s to %s: later commands use them (change with photosorter init)",
                     ", ".join(sorted(values)), path)
    return 0


def run_label(args: argparse.Namespace, settings: Settings) -> int:
    paths = list(args.photos)
    if args.folder:
        paths += sorted(p for p in args.folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise ConfigError(["label: give PHOTO... CATEGORY or --folder DIR CATEGORY"])
    category = category_named(settings, args.category)
    state = open_state(settings)
    try:
        sorter = build_sorter(settings, state)
        sorter.recover()  # a move a killed run left half done is settled before a label moves anything
        before = state.library_counts()
        count = sorter.label(paths, category)
        after = state.library_counts()
    finally:
        state.close()
    print(f"labelled {count} of {len(paths)} photos as {category}")
    left = {folder: n - after.get(folder, 0) for folder, n in before.items() if n > after.get(folder, 0)}
    if left:  # library photos the labels moved, also those with the same bytes as a labelled file elsewhere
        print(f"moved {sum(left.values())} library photos into {category}/ (from "
              + ", ".join(f"{folder}/ {n}" for folder, n in sorted(left.items())) + ")")
    return 0 if count == len(paths) else 1

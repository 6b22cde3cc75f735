"""How the model stack is assembled for a command: the state, the models, the face stage and the Sorter.

The command modules import this only inside the handlers that run, so ``--help`` and argument errors
never load onnxruntime, usearch or numpy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from photosorter.adapters.filemeta import read_file_hints
from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.adapters.previews import PreviewFolder
from photosorter.adapters.state import SqliteState
from photosorter.cli.library import preview_folder
from photosorter.config import DEFAULT_SOURCE, STATE_FILE, Settings, read_saved, save_settings
from photosorter.errors import ConfigError, ModelError
from photosorter.facestage import FaceStage
from photosorter.ml.catalogue import DEFAULT_MODEL, EMBEDDED_MODEL
from photosorter.ml.download import resolve_model
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.faces import FaceModelFiles, OnnxFaces, resolve_face_models
from photosorter.ml.index import UsearchIndex
from photosorter.ml.lifetime import ModelLifetime
from photosorter.ml.modelspec import ModelSpec
from photosorter.ml.prior import ZeroShotPrior
from photosorter.ml.selfcheck import check_on_this_cpu
from photosorter.ml.textread import OnnxTextReader
from photosorter.pipeline import Sorter
from photosorter.records import PhotoEvent

log = logging.getLogger(__name__)


def open_state(settings: Settings) -> SqliteState:
    return SqliteState(settings.library.data / STATE_FILE)


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
    idle_s = minutes * 60.0 if minutes else None
    if not settings.model.worker:
        return ModelLifetime(idle_s, clock)
    from photosorter.ml.worker import InferenceWorker

    return ModelLifetime(idle_s, clock, InferenceWorker().open_session)


def blamed(settings: Settings, key: str, exc: ModelError) -> ModelError:
    """A model error that also says where the setting's value came from (a flag, the environment, .env, the
    add-on options, the saved file): a value saved weeks ago is otherwise hard to find."""
    source = settings.source_of(key)
    where = "is the default" if source == DEFAULT_SOURCE else f"came from {source}"
    return ModelError(f"{exc.message}; the setting {key} {where}", retryable=exc.retryable)


def load_model(settings: Settings) -> ModelSpec:
    """The model the ``model`` setting names; an error names where that setting came from."""
    try:
        return resolve_model(settings.model.name, settings.model_cache_dir, settings.model.base_url)
    except ModelError as exc:
        raise blamed(settings, "model", exc) from exc


def load_face_models(settings: Settings) -> FaceModelFiles:
    """The face models the ``face_model`` setting names; an error names where that setting came from."""
    try:
        return resolve_face_models(settings.faces.model, settings.model_cache_dir, settings.model.base_url)
    except ModelError as exc:
        raise blamed(settings, "face_model", exc) from exc


def build_face_stage(settings: Settings, state: SqliteState, *, required: bool = False,
                     lifetime: ModelLifetime | None = None) -> FaceStage | None:
    """The face stage, when the ``faces`` setting is on. Sorting goes on without it (one warning) when its
    models cannot be found; ``required`` (the ``me`` commands) makes that an error instead."""
    if not settings.faces.enabled:
        if required:
            raise ConfigError(["faces: the face stage is off (setting faces: false)"])
        return None
    try:
        files = load_face_models(settings)
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
            raise blamed(settings, "model", exc) from exc
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

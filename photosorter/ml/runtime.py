"""onnxruntime on a small CPU shared with Home Assistant: the session settings, and the one place
that chooses between a model's int8 and float32 graph on this CPU.

int8 is not always faster: without VNNI (AVX-512 VNNI or AVX-VNNI, e.g. Zen 1-3, most ARM boards)
MLAS runs int8 GEMMs through widening multiply-adds that can lose to its float32 kernels, so the
only honest answer is a measurement on the CPU at hand. The float32 graph is the one the manifest's
self-check entry names (``ml.selfcheck``, which also falls back to it where int8 embeds wrongly).
The measurement is a few warm runs on a built-in image (a handful of milliseconds each), logged in one
line, and remembered per CPU, model and onnxruntime version in the data folder, so later starts
neither measure again nor load both graphs.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from photosorter.errors import ModelError
from photosorter.ml.modelspec import ModelSpec, sha256_file
from photosorter.ml.preprocess import to_tensor
from photosorter.ml.selfcheck import float_graph_of

log = logging.getLogger(__name__)

CHOICE_FILE = "graph-choice.json"
WARM_RUNS = 5  # timed runs per graph after one warm-up; the minimum is kept (least disturbed by neighbours)
# float32 must be at least 5% faster: int8 is 4x smaller in memory. On a Zen 1 box float32 wins by
# about 12% (issue 17: 18.5 vs 16.3 ms with spinning off); a VNNI CPU runs int8 1.5-2x faster.
FLOAT_MARGIN = 0.95

if TYPE_CHECKING:
    import onnxruntime as ort


class Named(Protocol):
    @property
    def name(self) -> str: ...


class Metadata(Protocol):
    @property
    def custom_metadata_map(self) -> dict[str, str]: ...


class Session(Protocol):
    """What photosorter asks of a model session: onnxruntime's own, or one run by an ``InferenceWorker``."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]: ...

    def get_inputs(self) -> Sequence[Named]: ...

    def get_outputs(self) -> Sequence[Named]: ...

    def get_modelmeta(self) -> Metadata: ...


# Opens a model (a file, or its bytes) with this many threads: ``open_session`` here, in this process, or
# ``InferenceWorker.open_session`` in a child process that ends when its sessions are released.
SessionOpener = Callable[[Path | bytes, int], Session]


def release_session(session: object) -> None:
    """Let a session go now: a worker's session is closed in its child; onnxruntime's own is freed when
    the last reference goes."""
    close = getattr(session, "close", None)
    if callable(close):
        close()


def session_options(threads: int) -> ort.SessionOptions:
    import onnxruntime as ort  # only where a model runs: the daemon's own process never imports it

    options = ort.SessionOptions()
    # intra_op: the threads one inference may use (model_threads, default 2 = the cores of a small box).
    # More than the cores only makes threads wait on each other.
    options.intra_op_num_threads = threads
    # inter_op: threads for parallel branches of the graph. These graphs are one chain, so a second
    # pool would only add threads that wake up for nothing.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Constant folding and operator fusion: free speed, done once at load.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning: between parallel sections the pool's threads busy-wait for the next piece of work.
    # On 2 cores shared with the decoder threads and Home Assistant they steal the core the other
    # work needs (measured on a Zen 1 box: int8 MobileNetV2 23.8 -> 18.5 ms with spinning off).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initialisers etc. are not the user's business
    return options


def open_session(model: Path | bytes, threads: int) -> ort.InferenceSession:
    """An onnxruntime session in this process, for a model file or its bytes."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                    sess_options=session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        name = "the model bytes" if isinstance(model, bytes) else f"model file {model}"
        raise ModelError(f"cannot load {name}: {exc}") from exc


def onnxruntime_version() -> str:
    """onnxruntime's version, read without importing it (the graph choice is remembered per version)."""
    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith(("model name", "Model", "Hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sample_feed(spec: ModelSpec) -> np.ndarray:
    """The built-in image the graphs are timed on: a smooth colour gradient with some texture."""
    size = spec.preprocess.size
    across, down = np.meshgrid(np.linspace(0, 255, size), np.linspace(0, 255, size))
    texture = np.random.default_rng(0).random((size, size)) * 255
    pixels = np.stack([across, down, texture], axis=2).astype(np.uint8)
    return to_tensor([pixels], spec.preprocess)


@dataclass(frozen=True)
class GraphChoice:
    file: str
    precision: str  # "int8" or "float32"
    timings_ms: dict[str, float]


def _time(sessions: dict[str, Session], spec: ModelSpec) -> dict[str, float]:
    feed = {spec.image_input: sample_feed(spec)}
    output = [spec.embedding_output]
    best = dict.fromkeys(sessions, float("inf"))
    for session in sessions.values():
        session.run(output, feed)  # warm-up: first-run allocations and kernel selection
    for _ in range(WARM_RUNS):  # interleaved, so a burst from a neighbour hits both graphs alike
        for name, session in sessions.items():
            started = time.perf_counter()
            session.run(output, feed)
            best[name] = min(best[name], (time.perf_counter() - started) * 1000)
    return best


def _float_graph(spec: ModelSpec) -> str | None:
    """The float32 image graph to time against the int8 one: named by the manifest's self-check entry
    (the lead's ``ml.selfcheck``, the one place that describes it), present, and matching its sha256."""
    graph = float_graph_of(spec)
    if graph is None or graph["file"] == spec.image_file:  # none, or the self-check already fell back to it
        return None
    path = spec.folder / str(graph["file"])
    if not path.is_file():
        return None
    if sha256_file(path) != graph.get("sha256"):
        log.warning("model %s: float32 graph %s does not match its sha256; using %s", spec.name, path.name,
                    spec.image_file)
        return None
    return path.name


def choose_image_graph(spec: ModelSpec, threads: int, cache_dir: Path | None = None, *, measure: bool = True,
                       opener: SessionOpener = open_session) -> tuple[GraphChoice, Session]:
    """The faster of the model's int8 and float32 image graphs on this CPU, and its open session.

    A folder without a float32 graph keeps the graph it has (no measurement), as does ``measure=False``."""
    float_file = _float_graph(spec) if measure else None
    if float_file is None:
        session = opener(spec.folder / spec.image_file, threads)
        return GraphChoice(spec.image_file, "as given", {}), session
    files = {"int8": spec.image_file, "float32": float_file}
    key = f"{spec.fingerprint}|{cpu_name()}|onnxruntime {onnxruntime_version()}|{threads} threads"
    remembered = _read_choices(cache_dir).get(key)
    if remembered and remembered.get("precision") in files:
        precision = str(remembered["precision"])
        saved = remembered.get("timings_ms")
        timings = {str(k): float(v) for k, v in saved.items()} if isinstance(saved, dict) else {}
        log.info("model %s: %s graph (measured on this CPU before: %s)", spec.name, precision, _describe(timings))
        return GraphChoice(files[precision], precision, timings), opener(spec.folder / files[precision], threads)
    sessions = {name: opener(spec.folder / file, threads) for name, file in files.items()}
    timings = {name: round(ms, 2) for name, ms in _time(sessions, spec).items()}
    precision = "float32" if timings["float32"] < FLOAT_MARGIN * timings["int8"] else "int8"
    log.info("model %s: %s graph chosen for %s with %d threads (%s per photo)", spec.name, precision, cpu_name(),
             threads, _describe(timings))
    _write_choice(cache_dir, key, {"precision": precision, "timings_ms": timings})
    for name, session in sessions.items():
        if name != precision:
            release_session(session)
    return GraphChoice(files[precision], precision, timings), sessions[precision]


def _describe(timings: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms:.1f} ms" for name, ms in timings.items())


def _read_choices(cache_dir: Path | None) -> dict[str, dict[str, object]]:
    if cache_dir is None or not (cache_dir / CHOICE_FILE).is_file():
        return {}
    try:
        data = json.loads((cache_dir / CHOICE_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # a damaged memo only costs one measurement


def _write_choice(cache_dir: Path | None, key: str, value: dict[str, object]) -> None:
    if cache_dir is None:
        return
    choices = _read_choices(cache_dir)
    choices[key] = value
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = cache_dir / f"{CHOICE_FILE}.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            json.dump(choices, handle, indent=1)
        tmp.replace(cache_dir / CHOICE_FILE)
    except OSError as exc:
        log.debug("graph choice not remembered: %s", exc)

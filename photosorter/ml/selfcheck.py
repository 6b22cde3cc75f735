"""A model's self-check on the CPU it runs on.

The same int8 graph can embed differently on different CPUs (onnxruntime picks its integer kernels by
the instruction sets it finds: VNNI or not, AVX-512 or AVX2, ARM dot-product), and a model file can be
corrupt or simply the wrong one. So a model folder's manifest carries *reference embeddings*: what its
float32 graph makes of three small images drawn here in code (no files, the same pixels everywhere).
The first time a model runs on a CPU, photosorter embeds those images and compares. Below
``MIN_COSINE`` it logs one warning with the figure and, where the manifest names a float32 graph, uses
that instead. The outcome is kept per model and CPU in the data folder (``model-check.json``), so the
check runs once per CPU, and ``status`` shows it.

Manifest entry (``self_check``, or ``"builtin:<file>"`` for one shipped in ``photosorter/data``)::

    {"images": "photosorter-selfcheck-1", "embeddings": [[...], [...], [...]],
     "float_graph": {"file": "vision_model.onnx", "sha256": "..."}}   # float_graph is optional
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from photosorter.errors import ModelError
from photosorter.ml.modelspec import ModelSpec, sha256_file
from photosorter.ml.preprocess import fit_to_input

if TYPE_CHECKING:
    from photosorter.ml.runtime import SessionOpener

log = logging.getLogger(__name__)

IMAGES_VERSION = "photosorter-selfcheck-1"
MIN_COSINE = 0.99
RECORD_FILE = "model-check.json"


def reference_images(size: int) -> list[Image.Image]:
    """Three ``size``² RGB images made of integer arithmetic only: identical bytes on every machine.

    Textured, not flat: on a plain gradient a quantized CNN's pooled features are mostly near zero and
    8-bit rounding alone moves them (MobileNetV2's 8-bit graph: cosine 0.90 to float32 on a gradient,
    0.994-0.9996 on real photos, 0.995-0.997 on these three)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.int64)
    cell = max(size // 8, 1)
    checker = ((x // cell + y // cell) % 2) * 200 + 30
    inside = (x - size // 2) ** 2 + (y - size // 3) ** 2 < (size // 4) ** 2
    shapes = np.stack([np.where(inside, 230, checker), np.where(inside, 60, checker // 2),
                       np.where(inside, 40, 255 - checker)], axis=-1)
    blocks = np.random.default_rng(20261202).integers(0, 256, (8, 8, 3))  # PCG64: the same stream everywhere
    noise = blocks[np.minimum(y * 8 // size, 7), np.minimum(x * 8 // size, 7)]
    horizon = y > size * 5 // 8
    stripes = (x // max(size // 16, 1)) % 2
    scene = np.stack([np.where(horizon, 40 + 60 * stripes, 90 + y * 100 // size),
                      np.where(horizon, 120 + 80 * stripes, 140 + y * 80 // size),
                      np.where(horizon, 30, 230 - y * 40 // size)], axis=-1)
    scene = np.where(inside[..., None], np.array([250, 220, 60]), scene)
    return [Image.fromarray(a.astype(np.uint8), "RGB") for a in (shapes, noise, scene)]


def embed_references(spec: ModelSpec, threads: int = 1, opener: SessionOpener | None = None) -> np.ndarray:
    """The reference images' embeddings with ``spec``'s image graph, ``[3, d]``, L2-normalised (``opener``:
    where the session runs; this process by default)."""
    from photosorter.ml.embedder import OnnxEmbedder  # the model stack only where a model runs
    from photosorter.ml.lifetime import ModelLifetime

    pixels = [fit_to_input(image, spec.preprocess) for image in reference_images(spec.preprocess.size)]
    embedder = OnnxEmbedder(spec, threads=threads, lifetime=ModelLifetime(opener=opener) if opener else None)
    try:
        return np.concatenate([embedder.embed_images([p])[0] for p in pixels])  # one per call: batch-independent
    finally:
        embedder.lifetime.release_all()


def make_self_check(float_spec: ModelSpec, float_graph: str | None = None) -> dict[str, Any]:
    """The manifest's ``self_check`` entry, made with a float32 model (``float_graph``: its file, when the
    folder keeps it beside the quantized one as the fallback)."""
    embeddings = embed_references(float_spec)
    entry: dict[str, Any] = {"images": IMAGES_VERSION,
                             "embeddings": [[round(float(v), 6) for v in row] for row in embeddings]}
    if float_graph is not None:
        entry["float_graph"] = {"file": float_graph, "sha256": sha256_file(float_spec.folder / float_graph)}
    return entry


def _load_entry(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, str) and raw.startswith("builtin:"):
        text = resources.files("photosorter.data").joinpath(raw.removeprefix("builtin:")).read_text("utf-8")
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    return raw if isinstance(raw, dict) else None


def cpu_signature() -> str:
    """What decides onnxruntime's kernels: the machine and its instruction-set flags."""
    flags, name = "", platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features") and not flags:
                flags = value.strip()
            elif key.strip() == "model name" and not name:
                name = value.strip()
    except OSError:
        pass
    return hashlib.sha256(f"{platform.machine()}|{name}|{flags}".encode()).hexdigest()[:12]


def describe_cpu() -> str:
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.partition(":")[2].split())
                break
    except OSError:
        pass
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        kind = "VNNI"
    elif "avx2" in flags:
        kind = "AVX2, no VNNI"
    elif "asimddp" in flags:
        kind = "ARM dot product"
    else:
        kind = "baseline"
    return f"{platform.machine()} ({kind})"


@dataclass(frozen=True)
class CheckResult:
    model: str
    fingerprint: str
    cpu: str
    cpu_signature: str
    min_cosine: float
    graph: str  # the image graph in use after the check
    fell_back: bool
    checked_at: float

    @property
    def ok(self) -> bool:
        return self.min_cosine >= MIN_COSINE


def _read_records(path: Path) -> dict[str, Any]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def _write_records(path: Path, records: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(records, handle, indent=1)
    os.replace(tmp, path)


def last_check(data_dir: Path) -> CheckResult | None:
    """The newest self-check recorded in the data folder (for ``status``)."""
    records = [r for r in _read_records(data_dir / RECORD_FILE).values() if isinstance(r, dict)]
    if not records:
        return None
    newest = max(records, key=lambda r: float(r.get("checked_at", 0)))
    try:
        return CheckResult(**newest)
    except TypeError:
        return None


def check_on_this_cpu(spec: ModelSpec, data_dir: Path, threads: int = 1,
                      opener: SessionOpener | None = None) -> ModelSpec:
    """``spec``, or the same model on its float32 graph when its own graph fails the self-check on this CPU.

    Runs once per model and CPU; later calls reuse the recorded outcome. Models without reference
    embeddings are used as they are."""
    entry = _load_entry(spec.self_check)
    if not entry or entry.get("images") != IMAGES_VERSION:
        log.debug("model %s carries no self-check references; used as it is", spec.name)
        return spec
    records_path = data_dir / RECORD_FILE
    records = _read_records(records_path)
    signature = cpu_signature()
    key = f"{spec.fingerprint}:{signature}"
    float_graph = entry.get("float_graph") or {}
    if key in records:
        return _with_graph(spec, float_graph) if records[key].get("fell_back") else spec
    reference = np.asarray(entry["embeddings"], dtype=np.float32)
    try:
        found = embed_references(spec, threads, opener)
        cosine = float(np.min(np.sum(found * reference, axis=1) / np.maximum(
            np.linalg.norm(found, axis=1) * np.linalg.norm(reference, axis=1), 1e-12)))
    except (ModelError, ValueError) as exc:  # a graph that cannot run at all, or the wrong output shape
        log.warning("model self-check: %s cannot embed its reference images on this CPU: %s", spec.name, exc)
        cosine = -1.0
    checked = spec
    if cosine < MIN_COSINE:
        where = f"model {spec.name} ({spec.image_file}) agrees with its float32 reference at cosine {cosine:.4f} " \
                f"on this CPU ({describe_cpu()}), below {MIN_COSINE}"
        fallback = _with_graph(spec, float_graph) if float_graph else None
        if fallback is not None and (spec.folder / fallback.image_file).is_file() \
                and sha256_file(spec.folder / fallback.image_file) == float_graph.get("sha256"):
            log.warning("%s: using its float32 graph %s instead (slower, same results)", where, fallback.image_file)
            checked = fallback
        else:
            log.warning("%s, and it names no float32 graph to fall back on: photos may be sorted worse. "
                        "Download or export the model again (a damaged or wrong file gives the same sign)", where)
    else:
        log.info("model self-check: %s on this CPU (%s): cosine %.5f to its float32 reference", spec.name,
                 describe_cpu(), cosine)
    result = CheckResult(spec.name, spec.fingerprint, describe_cpu(), signature, round(cosine, 6),
                         checked.image_file, checked is not spec, time.time())
    records[key] = dataclasses.asdict(result)
    try:
        _write_records(records_path, records)
    except OSError as exc:
        log.warning("cannot record the model self-check in %s: %s", records_path, exc)
    return checked


def _with_graph(spec: ModelSpec, float_graph: dict[str, Any]) -> ModelSpec:
    return dataclasses.replace(spec, image_file=str(float_graph["file"]))


def float_graph_of(spec: ModelSpec) -> dict[str, Any] | None:
    """The float32 image graph the manifest names beside the quantized one (``file``, ``sha256``), if any."""
    graph = (_load_entry(spec.self_check) or {}).get("float_graph")
    return graph if isinstance(graph, dict) and graph.get("file") else None

"""Sorting rows: photosorter end to end against a naive baseline run here too, and the model alone.

The naive baseline: full decode with Pillow, the model's preprocessing, its float32 graph with
onnxruntime's default settings, one session call per photo, sha256, copy; nothing overlapped.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from bench.common import RSS, median_ms, row
from photosorter.adapters.previews import PreviewFolder
from photosorter.adapters.state import SqliteState
from photosorter.cli.build import build_sorter
from photosorter.config import load_settings
from photosorter.ml.download import resolve_model
from photosorter.ml.modelspec import ModelSpec
from photosorter.ml.preprocess import fit_to_input, to_tensor
from photosorter.ml.runtime import sample_feed, session_options
from photosorter.ml.selfcheck import float_graph_of


def model_spec(folder: Path) -> ModelSpec:
    return resolve_model(str(folder), Path("/nonexistent"))


def float_file(spec: ModelSpec) -> str:
    """The float32 image graph beside the quantized one (the naive baseline runs it), else the graph itself."""
    graph = float_graph_of(spec)
    return str(graph["file"]) if graph and (spec.folder / str(graph["file"])).is_file() else spec.image_file


def naive(photos: list[Path], spec: ModelSpec, out: Path, cores: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = cores
    session = ort.InferenceSession(str(spec.folder / float_file(spec)), options, providers=["CPUExecutionProvider"])
    out.mkdir(parents=True)
    started = time.perf_counter()
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        session.run([spec.embedding_output], {spec.image_input: to_tensor([fit_to_input(image, spec.preprocess)],
                                                                           spec.preprocess)})
        hashlib.sha256(photo.read_bytes()).hexdigest()
        shutil.copy(photo, out / photo.name)
    return time.perf_counter() - started


def product(photos: list[Path], model: Path, work: Path, cores: int, faces: str = "off",
            previews: bool = False, text: bool = False) -> tuple[float, float]:
    """``previews``: each photo's ``<name>.preview.jpg`` beside it is put where the iCloud source saves
    its small rendition (``<data>/previews/<sha256>.jpg``), so the sorter decodes that instead.
    Returns (seconds, CPU seconds of this process meanwhile: every thread's work, whatever else runs)."""
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    for photo in photos:
        shutil.copy(photo, inbox / photo.name)
        if previews:
            saved = PreviewFolder(work / "data" / "previews")
            saved.folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(photo.with_name(photo.name + ".preview.jpg"),
                        saved.path_for(hashlib.sha256(photo.read_bytes()).hexdigest()))
    settings = load_settings({"library": str(work / "library"), "data": str(work / "data"), "model": str(model),
                              "log_level": "warning", "model_threads": cores, "faces": faces != "off",
                              "face_model": None if faces == "off" else faces, "text_signal": text,
                              "settle_seconds": 0},  # the bench's photos were copied in a moment ago
                             environ={}, dotenv_path=Path("/nonexistent"))
    state = SqliteState(settings.library.data / "state.sqlite3")
    sorter = build_sorter(settings, state)
    size = sorter.embedder.spec.preprocess.size
    sorter.embedder.embed_images([np.zeros((size, size, 3), dtype=np.uint8)])  # loaded, as the naive one is
    started, cpu_started = time.perf_counter(), time.process_time()
    report = sorter.sort_folder(inbox)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    state.close()
    assert report.handled == len(photos), report
    return elapsed, cpu


def compare_sort(name: str, photos: list[Path], model: Path, work: Path, cores: int, faces: str = "off",
                 model_only_cpu_ms: float | None = None, text: bool = False) -> None:
    """The naive baseline, photosorter on the originals (with the face stage too when ``faces``, and the
    text signal on top when ``text``: detection, and the words of photos with text), and
    photosorter given iCloud's rendition of each photo (``<name>.preview.jpg`` beside it). With
    ``model_only_cpu_ms`` (the model's CPU time per photo), each photosorter row also says what share of
    its CPU time the model takes: with decoding fully overlapped, the share of the model-only rate
    reachable on a quiet machine (a busy one cannot show rates, but CPU time hardly moves)."""
    spec = model_spec(model)
    RSS.reset()
    base = naive(photos, spec, work / "naive", cores)
    row(f"sort {name}: naive", f"{len(photos) / base:7.1f} photos/s  peak RSS {RSS.peak_mb:5.0f} MB")
    runs = [("photosorter", "off", False, False)] + \
        ([("photosorter + faces", faces, False, False)] if faces != "off" else []) + \
        ([(f"photosorter + {'faces + ' if faces != 'off' else ''}text", faces, False, True)] if text else [])
    if photos[0].with_name(photos[0].name + ".preview.jpg").exists():
        runs.append(("photosorter, iCloud rendition", "off", True, False))
    for label, stage, previews, read in runs:
        RSS.reset()
        ours, cpu = product(photos, model, work / f"product-{label.replace(' ', '').replace(',', '')}", cores,
                            stage, previews, read)
        rate = len(photos) / ours
        cpu_ms = cpu * 1000 / len(photos)
        of_model = f"  CPU {cpu_ms:5.0f} ms/photo, model {model_only_cpu_ms / cpu_ms:4.0%}" \
            if model_only_cpu_ms else ""
        row(f"sort {name}: {label}", f"{rate:7.1f} photos/s  peak RSS {RSS.peak_mb:5.0f} MB  "
                                     f"ratio {base / ours:.1f}x{of_model}")


def make_screenshots(photos: list[Path], count: int, folder: Path) -> list[Path]:
    """Phone screenshots as iCloud holds them: a 1179x2556 PNG original, and beside it the ~2048 px JPEG
    rendition iCloud serves as ``medium`` (``<name>.preview.jpg``)."""
    folder.mkdir(parents=True)
    made = []
    for i, photo in enumerate(photos[:count]):
        screen = Image.open(photo).convert("RGB").resize((1179, 2556), Image.Resampling.BICUBIC)
        target = folder / f"screen_{i:03d}.png"
        screen.save(target)
        screen.resize((945, 2048), Image.Resampling.BILINEAR).save(folder / f"{target.name}.preview.jpg",
                                                                  "JPEG", quality=85)
        made.append(target)
    return made


def make_12mp(photos: list[Path], count: int, folder: Path, heic: bool) -> list[Path]:
    folder.mkdir(parents=True)
    encoder = shutil.which("heif-enc")
    if heic and encoder is None:
        raise SystemExit("heif-enc not found: apt-get install -y libheif-examples")
    made = []
    for i, photo in enumerate(photos[:count]):
        big = Image.open(photo).convert("RGB").resize((4032, 3024), Image.Resampling.BICUBIC)
        if heic:
            png = folder / f"big_{i:03d}.png"
            big.save(png)
            target = folder / f"big_{i:03d}.heic"
            subprocess.run([str(encoder), "-t", "320", "-q", "60", str(png), "-o", str(target)], check=True,
                           capture_output=True)
            png.unlink()
        else:
            target = folder / f"big_{i:03d}.jpg"
            big.save(target, "JPEG", quality=90)
        big.resize((2048, 1536), Image.Resampling.BILINEAR).save(folder / f"{target.name}.preview.jpg", "JPEG",
                                                                 quality=85)  # iCloud's ``medium``
        made.append(target)
    return made


def model_latency(model: Path, label: str, cores: int, repeats: int) -> float:
    """ms per photo of the image graph(s): int8 and float32 where the folder has both, with photosorter's
    session settings (and the CPU time they take: core-ms, which neighbours on a shared machine inflate
    far less than wall time) and with onnxruntime's defaults (intra-op spinning on). Returns the CPU ms
    per photo of the int8 graph with photosorter's settings."""
    spec = model_spec(model)
    feed = {spec.image_input: sample_feed(spec)}
    graphs = {"int8": spec.image_file}
    if float_file(spec) != spec.image_file:
        graphs["float32"] = float_file(spec)
    defaults = ort.SessionOptions()
    defaults.intra_op_num_threads = cores
    ours_ms = 0.0
    for precision, file in graphs.items():
        figures = []
        for settings_name, options in (("photosorter", session_options(cores)), ("defaults", defaults)):
            session = ort.InferenceSession(str(spec.folder / file), options, providers=["CPUExecutionProvider"])
            cpu_started = time.process_time()
            ms = median_ms(lambda s=session: s.run([spec.embedding_output], feed), repeats)
            cpu_ms = (time.process_time() - cpu_started) * 1000 / (repeats + 1)
            figures.append(f"{settings_name} {ms:6.2f}")
            if settings_name == "photosorter":
                figures.append(f"(CPU {cpu_ms:6.1f})")  # core-ms: what a busy machine cannot inflate much
                if precision == "int8":
                    ours_ms = cpu_ms
        size = (spec.folder / file).stat().st_size / 1e6
        row(f"model only: {label} {precision} ({size:.0f} MB), {cores} threads", " / ".join(figures) + " ms/photo")
    return ours_ms

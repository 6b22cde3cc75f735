"""photosorter's benchmark: one table, measured in one process on the same photos, 2 CPU cores.

    .venv/bin/python bench/run.py [--photos DIR] [--model DIR] [--big N] [--heic N] [--faces DIR|off] [--quick]

1. ``sort`` end to end (list, read, hash, decode, embed, classify, journal, move) on (a) 12 MP JPEGs,
   (b) 12 MP HEICs with an embedded 320 px thumbnail as phones write them, (c) the shared eval photos,
   (d) PNG phone screenshots; (a), (b) and (d) also sorted from the ~2048 px JPEG rendition iCloud
   serves beside every original (``medium``), as the iCloud source hands it to the sorter;
   each against a naive baseline run here too: full decode with Pillow, resize, the float32 model, one
   session call per photo, copy, nothing overlapped. photos/s, the ratio, and the peak RSS during each;
   photosorter both without and with the face stage (``--faces``: the face models folder, or off).
2. Model only: int8 vs float32 latency per photo (2 threads).
3. kNN: usearch (as the product uses it) vs brute-force numpy at 1k, 10k, 100k stored vectors: query
   latency, memory, save and load time.
4. State store: checking 100k known photos by sha256 (how the sorter finds a duplicate) and 100k known
   iCloud asset ids (how a sync asks "have I seen this one?").

The 12 MP photos are made here by upscaling shared eval photos (nothing is downloaded). Needs
``heif-enc`` (libheif-examples) for the HEICs.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pillow_heif
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photosorter.adapters.icloud import IcloudAssets  # noqa: E402
from photosorter.adapters.previews import PreviewFolder  # noqa: E402
from photosorter.adapters.state import SqliteState  # noqa: E402
from photosorter.cli.library import build_sorter  # noqa: E402
from photosorter.config import load_settings  # noqa: E402
from photosorter.ml.index import UsearchIndex  # noqa: E402

pillow_heif.register_heif_opener()
CORES = 2
ROWS: list[tuple[str, str]] = []


def row(what: str, figure: str) -> None:
    ROWS.append((what, figure))
    print(f"  {what:<58}{figure}", flush=True)


class PeakRss:
    """Samples this process's resident memory every 5 ms; ``peak_mb`` is the highest since ``reset``."""

    def __init__(self) -> None:
        self.peak = 0
        self._page = os.sysconf("SC_PAGE_SIZE")
        threading.Thread(target=self._run, daemon=True).start()

    def current(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self._page

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.current())
            time.sleep(0.005)

    def reset(self) -> None:
        self.peak = self.current()

    @property
    def peak_mb(self) -> float:
        return self.peak / 1e6


RSS = PeakRss()


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    started = time.perf_counter()
    yield box
    box.append(time.perf_counter() - started)


def naive(photos: list[Path], model: Path, out: Path) -> float:
    """Full decode, float32 model, one call per photo, copy; nothing overlapped."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = CORES
    session = ort.InferenceSession(str(model / "model-fp32.onnx"), options, providers=["CPUExecutionProvider"])
    out.mkdir(parents=True)
    started = time.perf_counter()
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        width, height = image.size
        scale = 256 / min(width, height)
        image = image.resize((round(width * scale), round(height * scale)), Image.Resampling.BILINEAR)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        pixels = np.asarray(image.crop((left, top, left + 224, top + 224)))[None]
        session.run(["feat", "logits"], {"input": pixels})
        hashlib.sha256(photo.read_bytes()).hexdigest()
        shutil.copy(photo, out / photo.name)
    return time.perf_counter() - started


def product(photos: list[Path], model: Path, work: Path, faces: str = "off", previews: bool = False) -> float:
    """``previews``: each photo's ``<name>.preview.jpg`` beside it is put where the iCloud source saves
    its small rendition (``<data>/previews/<sha256>.jpg``), so the sorter decodes that instead."""
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
                              "log_level": "warning", "model_threads": CORES, "faces": faces != "off",
                              "face_model": None if faces == "off" else faces,
                              "settle_seconds": 0},  # the bench's photos were copied in a moment ago
                             environ={},
                             dotenv_path=Path("/nonexistent"))
    state = SqliteState(settings.library.data / "state.sqlite3")
    sorter = build_sorter(settings, state)
    started = time.perf_counter()
    report = sorter.sort_folder(inbox)
    elapsed = time.perf_counter() - started
    state.close()
    assert report.handled == len(photos), report
    return elapsed


def compare_sort(name: str, photos: list[Path], model: Path, work: Path, faces: str = "off") -> None:
    """The naive baseline, photosorter on the originals (with the face stage too when ``faces``), and
    photosorter given iCloud's rendition of each photo (``<name>.preview.jpg`` beside it)."""
    RSS.reset()
    base = naive(photos, model, work / "naive")
    base_rss = RSS.peak_mb
    row(f"sort {name}: naive", f"{len(photos) / base:7.1f} photos/s  peak RSS {base_rss:5.0f} MB")
    runs = [("photosorter", "off", False)] + ([("photosorter + faces", faces, False)] if faces != "off" else [])
    if photos[0].with_name(photos[0].name + ".preview.jpg").exists():
        runs.append(("photosorter, iCloud preview", "off", True))
    for label, stage, previews in runs:
        RSS.reset()
        ours = product(photos, model, work / f"product-{label.replace(' ', '')}", stage, previews)
        row(f"sort {name}: {label}", f"{len(photos) / ours:7.1f} photos/s  peak RSS {RSS.peak_mb:5.0f} MB  "
                                     f"ratio {base / ours:.1f}x")


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


def median_ms(call: Callable[[], object], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000


def model_latency(model: Path) -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = CORES
    pixels = np.random.default_rng(0).integers(0, 255, (1, 224, 224, 3), dtype=np.uint8)
    for name, label in (("model.onnx", "int8"), ("model-fp32.onnx", "float32")):
        session = ort.InferenceSession(str(model / name), options, providers=["CPUExecutionProvider"])
        size = (model / name).stat().st_size / 1e6
        row(f"model only: MobileNetV2 {label} ({size:.1f} MB)",
            f"{median_ms(lambda s=session: s.run(['feat', 'logits'], {'input': pixels}), 100):7.2f} ms/photo")


def clustered_unit(rng: np.random.Generator, count: int, dim: int, centres: np.ndarray) -> np.ndarray:
    """Embeddings shaped like real ones: clusters (photos of a kind), not uniform noise, on which HNSW
    behaves very differently (uniform 512-d noise has no near neighbours to find)."""
    vectors = centres[rng.integers(0, len(centres), count)] + rng.normal(scale=0.045, size=(count, dim))
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def knn(dim: int, sizes: tuple[int, ...], work: Path) -> None:
    """The product's index (exact below its size limit, graph + exact rescoring above) against brute force
    numpy on the same vectors: query latency, recall@5 against the exact answer, memory, build, save, load."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(300, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = clustered_unit(rng, 200, dim, centres)
    for size in sizes:
        vectors = clustered_unit(rng, size, dim, centres)
        before = RSS.current()
        index = UsearchIndex(dim)
        with timed() as build:
            for key, vector in enumerate(vectors):
                index.upsert(key, vector, "food")
            index.search(queries[0], 5)  # the graph (above the exact size) is built on first use
        grown = (RSS.current() - before) / 1e6
        ours_ms = median_ms(lambda ix=index: [ix.search(q, 5) for q in queries], 3) / len(queries)

        def brute(v: np.ndarray = vectors) -> None:
            for q in queries:
                scores = v @ q
                np.argpartition(-scores, 5)[:5]

        numpy_ms = median_ms(brute, 3) / len(queries)
        truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
        recall = np.mean([len({round(n.similarity, 4) for n in index.search(q, 5)}
                              & {round(float(vectors[t] @ q), 4) for t in row}) / 5
                          for q, row in zip(queries, truth, strict=True)])
        path = work / f"knn-{size}.usearch"
        with timed() as saving:
            index.save(path)
        with timed() as loading:
            UsearchIndex.load(path, dim, index.categories)
        mode = "exact" if index.exact else "graph"
        row(f"kNN {size // 1000}k x {dim}: photosorter ({mode}) / numpy query",
            f"{ours_ms:7.3f} ms / {numpy_ms:7.3f} ms  recall@5 {recall:.3f}")
        row(f"kNN {size // 1000}k x {dim}: memory",
            f"{grown:6.1f} MB (RSS growth), numpy {vectors.nbytes / 1e6:6.1f} MB")
        row(f"kNN {size // 1000}k x {dim}: build / save / load",
            f"{build[0]:6.2f} s / {saving[0] * 1000:6.1f} ms / {loading[0] * 1000:6.1f} ms")


def state_lookup(count: int, work: Path) -> None:
    state = SqliteState(work / "state.sqlite3")
    shas = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(count)]
    with timed() as filling, state._tx() as db:  # bulk fill: the benchmark is about the lookups
        now = time.time()
        db.executemany("INSERT INTO photos (sha256, size, source_path, status, created, updated) "
                       "VALUES (?, 1, '', 'placed', ?, ?)", [(s, now, now) for s in shas])
    with timed() as checking:
        known = sum(bool(state.photos_with_sha(s)) for s in shas)
    state.close()
    assert known == count
    row(f"state: check {count // 1000}k known photos by sha256",
        f"{checking[0]:6.2f} s ({checking[0] / count * 1e6:.0f} us each; fill {filling[0]:.1f} s)")
    assets = IcloudAssets(work / "state.sqlite3")  # how an iCloud sync asks "have I seen this one?"
    ids = [f"AY{i:08d}-{shas[i][:24]}" for i in range(count)]
    with timed() as filling:
        assets._db.execute("BEGIN")
        assets._db.executemany("INSERT INTO icloud_assets (asset_id, filename, fetched) VALUES (?, 'IMG.HEIC', 0)",
                               [(i,) for i in ids])
        assets._db.execute("COMMIT")
    with timed() as checking:
        known = sum(assets.known(i) for i in ids)
    assets.close()
    assert known == count
    row(f"state: check {count // 1000}k known iCloud asset ids",
        f"{checking[0]:6.2f} s ({checking[0] / count * 1e6:.0f} us each; fill {filling[0]:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=Path, default=ROOT / ".." / "shared" / "eval" / "photos")
    parser.add_argument("--model", type=Path, default=ROOT / ".." / "shared" / "models" / "mobilenet-v2")
    parser.add_argument("--big", type=int, default=24, help="12 MP JPEGs to make")
    parser.add_argument("--heic", type=int, default=12, help="12 MP HEICs to make")
    parser.add_argument("--faces", default=str(ROOT / ".." / "shared" / "models" / "faces"),
                        help="face models folder for the face stage rows, or off")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:CORES]))
    photos = sorted(args.photos.rglob("*.jpg"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"photosorter benchmark: {CORES} cores of {cpu}, onnxruntime {ort.__version__}, "
          f"{len(photos)} eval photos from {args.photos}")
    big, heic = (4, 2) if args.quick else (args.big, args.heic)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jpegs = make_12mp(photos[::7], big, work / "jpeg-src", heic=False)
        heics = make_12mp(photos[3::7], heic, work / "heic-src", heic=True)
        faces = args.faces if args.faces == "off" or Path(args.faces).is_dir() else "off"
        compare_sort(f"12 MP JPEG ({len(jpegs)})", jpegs, args.model, work / "jpeg", faces)
        compare_sort(f"12 MP HEIC ({len(heics)})", heics, args.model, work / "heic", faces)
        compare_sort(f"eval set ({len(photos)}, <=1280 px)", photos, args.model, work / "eval", faces)
        screens = make_screenshots(photos[5::7], 4 if args.quick else 24, work / "screen-src")
        compare_sort(f"PNG screenshots ({len(screens)})", screens, args.model, work / "screens")
        model_latency(args.model)
        knn(512, (1000, 10_000) if args.quick else (1000, 10_000, 100_000), work)
        state_lookup(10_000 if args.quick else 100_000, work)


if __name__ == "__main__":
    main()

"""Sorting speed and memory on 2 cores: photosorter's pipeline against a naive baseline, same process.

    .venv/bin/python bench/bench_sort.py [--photos DIR] [--model DIR] [--big N]

The naive baseline decodes each photo at full size, resizes, runs the model and copies it, one photo
after another. The product decodes small (JPEG draft mode), overlaps decoding with inference, and
journals every move. Besides the shared eval photos (<= 1280 px), ``--big`` N phone-sized copies
(4032x3024) are made, where decoding dominates. Prints photos/second, the ratio and peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photosorter.adapters.state import SqliteState  # noqa: E402
from photosorter.cli.library import build_sorter  # noqa: E402
from photosorter.config import load_settings  # noqa: E402


def naive(photos: list[Path], model: Path, out: Path) -> float:
    session = ort.InferenceSession(str(model / "model.onnx"), providers=["CPUExecutionProvider"])
    started = time.perf_counter()
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        width, height = image.size
        scale = 256 / min(width, height)
        image = image.resize((round(width * scale), round(height * scale)), Image.Resampling.BILINEAR)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        pixels = np.asarray(image.crop((left, top, left + 224, top + 224)))[None]
        session.run(["feat", "logits"], {"input": pixels})
        shutil.copy(photo, out / photo.name)
    return time.perf_counter() - started


def product(photos: list[Path], model: Path, work: Path) -> float:
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    for photo in photos:
        shutil.copy(photo, inbox / photo.name)
    settings = load_settings({"library": str(work / "library"), "data": str(work / "data"), "model": str(model),
                              "log_level": "warning"}, environ={}, dotenv_path=Path("/nonexistent"))
    state = SqliteState(settings.library.data / "state.sqlite3")
    sorter = build_sorter(settings, state)
    started = time.perf_counter()
    report = sorter.sort_folder(inbox)
    elapsed = time.perf_counter() - started
    state.close()
    assert report.handled == len(photos), report
    return elapsed


def make_big(photos: list[Path], count: int, folder: Path) -> list[Path]:
    folder.mkdir()
    made = []
    for i, photo in enumerate(photos[:count]):
        target = folder / f"big_{i:03d}.jpg"
        Image.open(photo).convert("RGB").resize((4032, 3024)).save(target, "JPEG", quality=90)
        made.append(target)
    return made


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=Path, default=ROOT / ".." / "shared" / "eval" / "photos")
    parser.add_argument("--model", type=Path, default=ROOT / ".." / "shared" / "models" / "mobilenet-v2")
    parser.add_argument("--big", type=int, default=24)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    photos = sorted(p for p in args.photos.rglob("*.jpg"))
    print(f"cores: {os.cpu_count()}, photos: {len(photos)} from {args.photos}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big = make_big(photos, args.big, work / "big")
        for name, batch in (("eval photos (<=1280 px)", photos), (f"phone-size photos (4032x3024, {len(big)})", big)):
            (work / name[:4]).mkdir()
            base = naive(batch, args.model, work / name[:4])
            ours = product(batch, args.model, work / f"{name[:4]}-product")
            print(f"{name}: naive {len(batch) / base:6.1f} photos/s, photosorter {len(batch) / ours:6.1f} photos/s, "
                  f"ratio {base / ours:.2f}x")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

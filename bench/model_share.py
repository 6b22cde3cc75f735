"""How close end to end comes to the model alone, measured so a shared machine cannot fake it.

Wall rates taken minutes apart are not comparable on a box where other jobs come and go (load 1-4), so
each row alternates short blocks in the same run: the model alone (the sorter's own embedder, run as the
sorter runs it: one call per photo on its two decode workers, on pixels prepared beforehand), then the
whole sort of the same photos, then the model again, and so on. Each row reports the medians of both
rates, their ratio (goal: >= 0.80, decoding hidden behind inference) and, as a check that hardly moves
with the neighbours, the model's share of the sort's process CPU time.

    .venv/bin/python bench/model_share.py             # CLIP-shaped and MobileNetV2, 12 MP JPEG/HEIC, PNG
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, row, use_cores
from bench.sorting import product
from photosorter.adapters.state import SqliteState
from photosorter.cli.build import build_sorter
from photosorter.config import load_settings
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.runtime import cpu_name

GOAL = 0.80


def sorters_embedder(model: Path, work: Path, cores: int) -> OnnxEmbedder:
    """The embedder exactly as the sorter builds it (threads per session, graph choice)."""
    settings = load_settings({"library": str(work / "library"), "data": str(work / "data"), "model": str(model),
                              "log_level": "warning", "model_threads": cores},
                             environ={}, dotenv_path=Path("/nonexistent"))
    sorter = build_sorter(settings, SqliteState(settings.library.data / "state.sqlite3"))
    embedder = sorter.embedder
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


def model_only(embedder: OnnxEmbedder, count: int, workers: int) -> tuple[float, float]:
    """(seconds, process CPU seconds) for ``count`` photos through the model alone, on ``workers`` threads
    as the sorter's decode workers call it (one photo per call)."""
    size = embedder.spec.preprocess.size
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    embedder.embed_images([pixels])  # loaded and warm, as the sorter's is after its first photo
    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda _: embedder.embed_images([pixels]), range(count)))
    return time.perf_counter() - started, time.process_time() - cpu_started


def share_rows(label: str, rows: list[tuple[str, list[Path], bool]], model: Path, work: Path, cores: int,
               blocks: int = 3) -> list[float]:
    """For each (name, photos, from iCloud's rendition): ``blocks`` model-only / end-to-end pairs,
    alternated. Returns the ratios (end-to-end rate / model-only rate, medians)."""
    embedder = sorters_embedder(model, work / "embedder", cores)
    ratios = []
    for number, (name, photos, previews) in enumerate(rows):
        alone, whole, alone_cpu, whole_cpu = [], [], [], []
        for block in range(blocks):
            seconds, cpu = model_only(embedder, len(photos), workers=2)
            alone.append(len(photos) / seconds)
            alone_cpu.append(cpu / len(photos))
            seconds, cpu = product(photos, model, work / f"{number}-{block}", cores, previews=previews)
            whole.append(len(photos) / seconds)
            whole_cpu.append(cpu / len(photos))
        ratio = statistics.median(whole) / statistics.median(alone)
        ratios.append(ratio)
        cpu_share = statistics.median(alone_cpu) / statistics.median(whole_cpu)
        row(f"{label}, {name}: model only / end to end",
            f"{statistics.median(alone):6.1f} / {statistics.median(whole):6.1f} photos/s  ratio {ratio:4.2f} "
            f"({'>=' if ratio >= GOAL else '<'} {GOAL:.2f})  CPU {statistics.median(alone_cpu) * 1000:4.0f} / "
            f"{statistics.median(whole_cpu) * 1000:4.0f} ms/photo, model {cpu_share:4.0%}")
    embedder.lifetime.release_all()
    return ratios


def source_rows(jpegs: list[Path], heics: list[Path], screens: list[Path]) -> list[tuple[str, list[Path], bool]]:
    """Each kind of photo from the original and from iCloud's ~2048 px rendition."""
    rows = []
    for name, photos in ((f"12 MP JPEG ({len(jpegs)})", jpegs), (f"12 MP HEIC ({len(heics)})", heics),
                         (f"PNG screenshots ({len(screens)})", screens)):
        rows += [(name, photos, False), (f"{name} from iCloud's rendition", photos, True)]
    return rows


def main() -> None:
    from bench.clipshaped import clip_models, prompt_rows
    from bench.sorting import make_12mp, make_screenshots

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=24, help="12 MP JPEGs and screenshots (half as many HEICs)")
    parser.add_argument("--blocks", type=int, default=3, help="model-only / end-to-end pairs per row")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    use_cores(args.cores)
    shared = ROOT / ".." / "shared"
    photos = sorted((shared / "eval" / "photos").rglob("*.jpg"))
    print(f"model share: {args.cores} cores of {cpu_name()}, {args.blocks} alternated blocks per row, "
          f"load {' '.join(Path('/proc/loadavg').read_text(encoding='ascii').split()[:3])}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = source_rows(make_12mp(photos[::7], args.count, work / "jpeg-src", heic=False),
                           make_12mp(photos[3::7], max(1, args.count // 2), work / "heic-src", heic=True),
                           make_screenshots(photos[5::7], args.count, work / "screen-src"))
        clip, _ = clip_models(photos)
        prompt_rows(clip, work / "prompts")
        share_rows("CLIP-shaped", rows, clip, work / "clip", args.cores, args.blocks)
        share_rows("MobileNetV2", rows, shared / "models" / "mobilenet-v2", work / "mnv2", args.cores, args.blocks)


if __name__ == "__main__":
    main()

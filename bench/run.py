"""photosorter's benchmark: one table, measured in one run on the same photos, on 2 CPU cores (``--cores``).

    .venv/bin/python bench/run.py            # the full table, by hand (15-25 minutes; exports the CLIP-shaped
                                             # model once, about 3 minutes, with the export virtualenv)
    .venv/bin/python bench/run.py --quick    # every kind of row at small sizes, under a minute (CI runs it)
    .venv/bin/python bench/run.py --cores 1  # a Raspberry Pi's view: one core, model_threads 1

1. ``sort`` end to end (list, read, hash, decode, embed, classify, journal, move) on 12 MP JPEGs, 12 MP
   HEICs (with the 320 px thumbnail phones embed), the shared eval photos and PNG phone screenshots;
   12 MP and screenshots also from the ~2048 px JPEG rendition iCloud serves beside every original, as
   the iCloud source hands it to the sorter. Each against a naive baseline run here too (full decode,
   the float32 graph with onnxruntime's defaults, one call per photo, copy, nothing overlapped):
   photos/s, peak RSS, the ratio, and for the CLIP-shaped model how close each row comes to the
   model-only rate. MobileNetV2 (``--model``) and a CLIP with ViT-B/32's exact shapes (bench/clipshaped.py).
   End to end against the model alone, alternated in short blocks so a shared machine hits both alike
   (bench/model_share.py): both rates, their ratio (goal >= 0.80) and the model's share of the CPU time.
2. Model only: int8 vs float32, photosorter's session settings vs onnxruntime's defaults.
3. Memory of a daemon-like process (bench/memory_probe.py): idle before work, peak during a sort, idle
   after the models were released (model_idle_minutes).
4. kNN: the product's index vs brute-force numpy at 1k, 10k, 100k labelled photos.
5. State: 100k known photos by sha256 and 100k known iCloud asset ids; a 100k-photo library's state file,
   ``status``, the daemon's status snapshot, the MQTT status publish (to a real mosquitto) and the digest.
6. The idle daemon's CPU per hour (inbox, MQTT), measured over ``--idle-s`` seconds (5 in --quick), and
   (full run only) its RSS started, after a sort and after the models were unloaded, web page off and on,
   with the model worker (the default) and without.
7. iCloud (full run only): a first sync of ``--icloud`` photos from the local fake server and an idle poll;
   by hand, ``--icloud-listing 100000``: the listing of a 100k library and the idle poll after it.

The 12 MP photos are made here by upscaling shared eval photos (nothing is downloaded). Needs
``heif-enc`` (libheif-examples) for the HEICs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pillow_heif

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.clipshaped import clip_models, prompt_rows
from bench.common import ROOT, RSS, median_ms, row, timed, use_cores
from bench.icloudlisting import icloud_listing_rows
from bench.icloudsync import icloud_rows
from bench.idle import idle_everything_row, idle_rows, unload_row
from bench.library import library_rows, storage_agreement
from bench.model_share import share_rows, source_rows
from bench.sorting import compare_sort, make_12mp, make_screenshots, model_latency
from photosorter.adapters.icloud import IcloudAssets
from photosorter.adapters.state import SqliteState
from photosorter.ml.index import UsearchIndex
from photosorter.ml.runtime import cpu_name
from tests.servers.mosquitto import Mosquitto

pillow_heif.register_heif_opener()


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
        if size == 10_000:
            storage_agreement(f"{size // 1000}k clustered {dim}-d", vectors, queries)
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


def memory_rows(model: Path, faces: str, label: str, photos: list[Path], work: Path, cores: int) -> None:
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    for photo in photos:
        shutil.copy(photo, inbox / photo.name)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "memory_probe.py"), str(model), faces, str(inbox),
                           str(work), str(cores)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"memory probe failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    row(f"memory, {label}: idle / peak sorting {len(photos)} / idle after unload",
        f"{figures['idle_before_mb']:5.0f} / {figures['peak_mb']:5.0f} / {figures['idle_after_mb']:5.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=Path, default=ROOT / ".." / "shared" / "eval" / "photos")
    parser.add_argument("--model", type=Path, default=ROOT / ".." / "shared" / "models" / "mobilenet-v2")
    parser.add_argument("--big", type=int, default=24, help="12 MP JPEGs to make")
    parser.add_argument("--heic", type=int, default=12, help="12 MP HEICs to make")
    parser.add_argument("--faces", default=str(ROOT / ".." / "shared" / "models" / "faces"),
                        help="face models folder for the face stage rows, or off")
    parser.add_argument("--clip", choices=("on", "off"), default="on",
                        help="the CLIP-shaped rows (off in --quick: the export takes minutes)")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores (and model_threads); 1: a Pi's view")
    parser.add_argument("--icloud", type=int, default=1000, help="photos in the fake iCloud library (0: no rows)")
    parser.add_argument("--icloud-listing", type=int, default=0,
                        help="photos the fake iCloud generates for a first sync's listing and an idle poll, by hand "
                             "(100000; 0: no rows)")
    parser.add_argument("--library", type=int, default=100_000, help="photos in the state for the library rows")
    parser.add_argument("--idle-s", type=float, default=600.0, help="seconds to watch the idle daemon (0: no row)")
    parser.add_argument("--quick", action="store_true", help="every kind of row at small sizes, under a minute")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cores = args.cores
    use_cores(cores)
    photos = sorted(args.photos.rglob("*.jpg"))
    print(f"photosorter benchmark: {cores} cores of {cpu_name()}, onnxruntime {ort.__version__}, "
          f"{len(photos)} eval photos from {args.photos}{' (quick)' if args.quick else ''}")
    quick = args.quick
    big, heic, screens_n = (2, 1, 2) if quick else (args.big, args.heic, 24)
    eval_photos = photos[::10] if quick else photos
    faces = args.faces if args.faces == "off" or Path(args.faces).is_dir() else "off"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jpegs = make_12mp(photos[::7], big, work / "jpeg-src", heic=False)
        heics = make_12mp(photos[3::7], heic, work / "heic-src", heic=True)
        screens = make_screenshots(photos[5::7], screens_n, work / "screen-src")
        model_latency(args.model, "MobileNetV2", cores, 10 if quick else 100)
        compare_sort(f"12 MP JPEG ({len(jpegs)})", jpegs, args.model, work / "jpeg", cores, faces, text=True)
        compare_sort(f"12 MP HEIC ({len(heics)})", heics, args.model, work / "heic", cores, faces)
        compare_sort(f"eval set ({len(eval_photos)}, <=1280 px)", eval_photos, args.model, work / "eval", cores,
                     faces)
        compare_sort(f"PNG screenshots ({len(screens)})", screens, args.model, work / "screens", cores)
        sources = source_rows(jpegs, heics, screens)
        share_rows("MobileNetV2", sources, args.model, work / "share-mnv2", cores, blocks=1 if quick else 3)
        if args.clip == "on" and not quick:
            clip, clip_float = clip_models(photos)
            model_ms = model_latency(clip_float, "CLIP-shaped ViT-B/32", cores, 30)
            prompt_rows(clip, work / "prompts")
            for number, (name, items) in enumerate(((f"12 MP JPEG ({len(jpegs)})", jpegs),
                                                     (f"12 MP HEIC ({len(heics)})", heics),
                                                     (f"PNG screenshots ({len(screens)})", screens))):
                compare_sort(f"CLIP-shaped, {name}", items, clip, work / f"clip-{number}", cores,
                             faces if items is jpegs else "off", model_only_cpu_ms=model_ms)
            share_rows("CLIP-shaped", sources, clip, work / "share-clip", cores)
            memory_rows(clip, faces, "CLIP-shaped + faces", eval_photos[:60], work / "mem-clip", cores)
        memory_rows(args.model, "off", "MobileNetV2", eval_photos[:60], work / "mem-mnv2", cores)
        if faces != "off":
            memory_rows(args.model, faces, "MobileNetV2 + faces", eval_photos[:60], work / "mem-mnv2-faces", cores)
        knn(512, (1000, 10_000) if quick else (1000, 10_000, 100_000), work)
        state_lookup(10_000 if quick else 100_000, work)
        (work / "mqtt").mkdir()
        broker = Mosquitto(work / "mqtt", password=False)
        broker.start()
        try:
            library_rows(5_000 if quick else args.library, args.model, work / "library", broker.port)
            if args.idle_s:
                idle_rows(args.model, work / "idle", broker.port, 3.0 if quick else args.idle_s)
                if not quick:
                    idle_everything_row(args.model, work / "idle-all", broker.port, args.idle_s)
            if not quick:  # waits for model_idle_minutes (1): about two minutes each
                for number, (web, worker) in enumerate(((False, True), (True, True), (True, False))):
                    unload_row(args.model, faces, eval_photos[:20], work / f"unload-{number}", broker.port,
                               web=web, worker=worker)
        finally:
            broker.stop()
        if args.icloud and not quick:
            icloud_rows(args.icloud, work / "icloud")
        if args.icloud_listing:
            icloud_listing_rows(args.icloud_listing, work / "icloud-listing")


if __name__ == "__main__":
    main()

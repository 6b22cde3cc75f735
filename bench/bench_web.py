"""The web page on a 10,000-photo library: review queue first paint, relabel round trip, map draw, and the
daemon's memory with the page on. One run, one machine; naive baselines measured in the same process.

    .venv/bin/python bench/bench_web.py [--photos 10000] [--rounds 20] [--cold 5]

1. The daemon (``photosorter run``, no MQTT, no iCloud) on a synthetic library (``bench/web_library.py``),
   once without the page and once with ``web_port``: RSS after start, just after Chromium opened every
   screen (a map being remade after the labels may be counted), 5 s later, and the peak (VmHWM).
2. In headless Chromium, straight to the daemon's port: time to the queue drawn (the ``queue-painted``
   mark, from navigation start; cold: the first page a Chromium just started opens, ``--cold`` of them,
   warm: new contexts of a Chromium that has opened it before) and to all its thumbnails decoded; a
   relabel by key press until the card is gone (median and 90th percentile); the map fetched and drawn,
   the first time (projection made) and again.
3. In this process: the queue's query and ordering vs a naive one (each photo read by id and sorted
   in Python), and the map's projection (axes fitted on a sample) vs a full SVD of every embedding.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.web_library import build_library  # noqa: E402
from photosorter.adapters.catalog import SqliteCatalog  # noqa: E402
from photosorter.adapters.state import SqliteState  # noqa: E402
from photosorter.config import Settings  # noqa: E402
from photosorter.core.digest import DigestPhoto, pick_for_review  # noqa: E402
from photosorter.core.projection import project_2d  # noqa: E402
from photosorter.ml.download import resolve_model  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
RELABEL = """async () => {
  const card = document.querySelector('#queue .card.selected') || document.querySelector('#queue .card');
  const id = card.dataset.id; const t0 = performance.now();
  document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }));
  while (document.querySelector(`#queue .card[data-id="${id}"]`)) await new Promise((r) => setTimeout(r, 1));
  return performance.now() - t0;
}"""
THUMBS_DONE = "() => [...document.querySelectorAll('#queue img')].every((i) => i.complete && i.naturalWidth > 0)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident MB of a process now (VmRSS), or its peak since it started (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Daemon:
    def __init__(self, settings: Settings, web_port: int) -> None:
        env = {**os.environ, "PHOTOSORTER_LIBRARY": str(settings.library.path),
               "PHOTOSORTER_DATA": str(settings.library.data), "PHOTOSORTER_MODEL": settings.model.name,
               "PHOTOSORTER_FACES": "false", "PHOTOSORTER_WEB_PORT": str(web_port), "PHOTOSORTER_INBOX": ""}
        env.pop("SUPERVISOR_TOKEN", None)
        self.heartbeat = settings.library.data / "heartbeat"
        self.heartbeat.unlink(missing_ok=True)
        self.process = subprocess.Popen([sys.executable, "-m", "photosorter", "run"], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not self.heartbeat.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # settle

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def browse(url: str, rounds: int, cold: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {}
    with sync_playwright() as playwright:
        colds = []
        for _ in range(cold - 1):  # first paints in a Chromium just started (the last one is the run's below)
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(url)
            page.wait_for_selector("body[data-queue-painted]")
            colds.append(float(page.evaluate("() => Number(document.body.dataset.queuePainted)")))
            browser.close()
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
        paints, thumbs = [], []
        for attempt in range(4):  # the first with empty caches (thumbnails from disk), then warm
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("body[data-queue-painted]")
            page.wait_for_function(THUMBS_DONE)
            paints.append(float(page.evaluate("() => Number(document.body.dataset.queuePainted)")))
            thumbs.append(float(page.evaluate("() => performance.now()")))
            if attempt < 3:
                context.close()
        result["paint_ms"], result["thumbs_ms"], result["cold_ms"] = paints, thumbs, [*colds, paints[0]]
        trips = [float(page.evaluate(RELABEL)) for _ in range(rounds)]
        result["relabel_ms"] = trips
        draws = []
        for _ in range(2):  # the map is made when the page starts (and again after the labels above)
            page.goto(url + "#/")
            page.goto(url + "#/map")
            page.wait_for_selector("body[data-map-drawn]")
            draws.append(float(page.evaluate("() => Number(document.body.dataset.mapDrawn)")))
            page.evaluate("() => { delete document.body.dataset.mapDrawn; }")
        result["map_ms"] = draws
        page.goto(url + "#/library/food/1")
        page.wait_for_selector(".grid .card img")
        page.goto(url + "#/photo/100")
        page.wait_for_selector("#large")
        page.goto(url + "#/health")
        page.wait_for_selector("#problems")
        browser.close()
    return result


def in_process(settings: Settings) -> dict[str, float]:
    path = settings.library.data / "state.sqlite3"
    catalog, state = SqliteCatalog(path), SqliteState(path)
    spec = resolve_model(settings.model.name, settings.model_cache_dir, settings.model.base_url)
    started = time.perf_counter()
    catalog.review_queue(24)
    queue_s = time.perf_counter() - started
    started = time.perf_counter()  # naive: every photo read by id, ordered in Python (the digest's function)
    labelled = state.current_labels()
    photos = [state.photo(i) for i in range(1, catalog.count_embedded(spec.fingerprint) + 1)]
    pick_for_review([DigestPhoto(p.id, "", p.category or "", p.score or 0, p.margin or 0, p.status.value == "unsure")
                     for p in photos if p and p.id not in labelled], 24)
    naive_queue_s = time.perf_counter() - started
    vectors = np.concatenate([v for _, v, _, _ in catalog.library_embeddings(spec.fingerprint)])
    started = time.perf_counter()
    project_2d(vectors)
    map_s = time.perf_counter() - started
    started = time.perf_counter()  # naive: a full SVD of every embedding
    centred = vectors - vectors.mean(axis=0)
    np.linalg.svd(centred, full_matrices=False)
    naive_map_s = time.perf_counter() - started
    catalog.close()
    state.close()
    return {"queue_ms": 1000 * queue_s, "naive_queue_ms": 1000 * naive_queue_s, "map_ms": 1000 * map_s,
            "naive_map_ms": 1000 * naive_map_s, "dim": float(vectors.shape[1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cold", type=int, default=5, help="fresh Chromiums timed to the first paint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        settings = build_library(Path(tmp), args.photos)
        print(f"synthetic library of {args.photos} photos built in {time.perf_counter() - started:.0f} s")
        here = in_process(settings)
        without = Daemon(settings, 0)
        rss_without, peak_without = rss_mb(without.process.pid), rss_mb(without.process.pid, "VmHWM")
        without.stop()
        port = free_port()
        with_page = Daemon(settings, port)
        rss_start = rss_mb(with_page.process.pid)
        seen = browse(f"http://127.0.0.1:{port}/", args.rounds, max(1, args.cold))
        rss_after = rss_mb(with_page.process.pid)  # the map may still be remade after the labels above
        time.sleep(5.0)  # it is made by now (under 1 s at 10,000 photos)
        rss_settled, peak = rss_mb(with_page.process.pid), rss_mb(with_page.process.pid, "VmHWM")
        with_page.stop()
    trips = sorted(seen["relabel_ms"])
    print(f"{'':38}{'photosorter':>14}{'naive':>10}{'ratio':>8}")
    print(f"{'queue query + order (in process)':38}{here['queue_ms']:>11.1f} ms{here['naive_queue_ms']:>7.0f} ms"
          f"{here['naive_queue_ms'] / here['queue_ms']:>7.1f}x")
    what = f"map projection, {here['dim']:.0f}-d (in process)"
    print(f"{what:38}{here['map_ms']:>11.0f} ms"
          f"{here['naive_map_ms']:>7.0f} ms{here['naive_map_ms'] / here['map_ms']:>7.1f}x")
    colds = seen["cold_ms"]
    print(f"queue drawn (first paint): cold median {statistics.median(colds):.0f} ms of {len(colds)} fresh "
          f"Chromiums ({min(colds):.0f}-{max(colds):.0f} ms), warm median "
          f"{statistics.median(seen['paint_ms'][1:]):.0f} ms")
    print(f"queue with every thumbnail decoded: cold {seen['thumbs_ms'][0]:.0f} ms, warm median "
          f"{statistics.median(seen['thumbs_ms'][1:]):.0f} ms")
    print(f"relabel round trip (key press to card gone), {len(trips)} labels: median "
          f"{statistics.median(trips):.0f} ms, p90 {trips[int(0.9 * (len(trips) - 1))]:.0f} ms")
    print(f"map fetched and drawn: first visit {seen['map_ms'][0]:.0f} ms, again {seen['map_ms'][1]:.0f} ms")
    print(f"daemon RSS: {rss_without:.0f} MB without the page; with it {rss_start:.0f} MB at start, "
          f"{rss_after:.0f} MB just after every screen (+{rss_after - rss_without:.0f} MB), {rss_settled:.0f} MB "
          f"5 s later (+{rss_settled - rss_without:.0f} MB)")
    print(f"daemon peak RSS (VmHWM): {peak_without:.0f} MB without the page, {peak:.0f} MB with it "
          f"(+{peak - peak_without:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

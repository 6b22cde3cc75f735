"""Screenshots of the web page's screens for DOCS.md, taken with headless Chromium from the real page.

    .venv/bin/python bench/web_screenshots.py [--out screenshots]

Builds a synthetic library (``bench/web_library.py``: stand-in pictures, nothing from the shared photos),
serves it with ``photosorter web``'s own code under a stand-in ingress prefix, and photographs the review
queue, a library folder, a photo, the map and the health page. The daemon's status on the health page is
made up for the picture (iCloud waiting for a code, one failing part). Needs Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.web_library import build_library  # noqa: E402
from photosorter.cli.build import build_sorter, open_state  # noqa: E402
from photosorter.cli.web import start_web  # noqa: E402
from photosorter.records import AuthState, StatusSnapshot  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
SCREENS = (("review", "#/", "#queue .card img"), ("library", "#/library/food/0", ".grid .card img"),
           ("photo", "#/photo/{photo}", "#large"), ("map", "#/map", "body[data-map-drawn]"),
           ("health", "#/health", "#problems"))


def made_up_status() -> StatusSnapshot:
    return StatusSnapshot(library_counts={}, sorted_today=42, unsure=3, failed=1,
                          last_sync=dt.datetime(2026, 11, 25, 19, 45, tzinfo=dt.UTC), sync=None,
                          auth=AuthState(ok=False, message="Apple sent a code to your iPhone: type it here",
                                         method="trusted device"),
                          paused=False, problems=("replies: IMAP server imap.example.com refused the login",))


def write_runs(path: Path) -> None:
    runs = [{"date": f"2026-11-{day:02d}T09:00:00", "model": "clip-vit-b32", "zero_shot": 0.61, "knn": knn,
             "blend": blend} for day, knn, blend in ((3, 0.55, 0.66), (10, 0.64, 0.71), (17, 0.70, 0.76),
                                                     (24, 0.74, 0.79))]
    path.write_text("".join(json.dumps(run) + "\n" for run in runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    from tests.servers.ingress import IngressProxy

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = build_library(Path(tmp), 400, labelled=0.3)
        write_runs(settings.library.data / "evaluations.jsonl")
        state = open_state(settings)
        sorter = build_sorter(settings, state)
        names = settings.classify.names
        for n, record in enumerate(r for r in map(state.photo, range(1, 401)) if r and r.status.value == "unsure"):
            if n < 12:  # a few reviews done already: 4 of 12 guesses changed
                wrong = names[(names.index(record.category or "other") + 1) % len(names)]
                sorter.label_photo(record.id, wrong if n % 3 == 0 else record.category or "other", source="web")
        worker = ThreadPoolExecutor(max_workers=1)
        server = start_web(settings, sorter, worker.submit, port=0, status=made_up_status,
                           submit_code=lambda code: AuthState(ok=True))
        proxy = IngressProxy(server.port).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
                page = browser.new_page(viewport={"width": 1180, "height": 820})
                photo = min(p for p, c in state.current_labels().items() if c == "food")
                for name, route, ready in SCREENS:
                    page.goto(proxy.url + route.format(photo=photo))
                    page.wait_for_selector(ready)
                    page.wait_for_load_state("networkidle")
                    page.wait_for_timeout(300)
                    shot = Path(tmp) / f"{name}.png"
                    page.screenshot(path=str(shot), full_page=name == "health")
                    out = args.out / f"web-{name}.png"
                    Image.open(shot).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
                        out, optimize=True)
                    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
                browser.close()
        finally:
            proxy.stop()
            server.stop()
            worker.shutdown()
            state.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

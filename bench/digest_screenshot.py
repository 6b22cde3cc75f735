"""Render an example digest to PNG with headless Chromium (the screenshot DOCS.md shows).

    .venv/bin/python bench/digest_screenshot.py [--out digest-example.png]

Draws stand-in pictures (flat shapes, nothing from the shared test photos, which must never enter the
repository), builds a digest with the real renderer (predictions made up for the picture: one wrong, two
unsure), puts the thumbnails inline as data: URIs instead of cid: parts, and screenshots it. Needs
Debian's ``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photosorter.core.categories import DEFAULT_CATEGORIES  # noqa: E402
from photosorter.core.digest import Digest, DigestPhoto, number_photos, pick_for_review, render_html  # noqa: E402
from photosorter.records import Failure  # noqa: E402

# (file name, colour of the stand-in picture, category shown, score, margin, unsure): one mistake
EXAMPLE = (("IMG_0412.HEIC", (200, 170, 60), "food", 0.41, 0.03, True),
           ("IMG_0415.HEIC", (200, 120, 110), "people", 0.52, 0.06, True),
           ("IMG_0420.JPG", (190, 60, 40), "food", 0.71, 0.2, False),
           ("IMG_0431.HEIC", (70, 140, 90), "scenery", 0.83, 0.4, False),
           ("IMG_0433.PNG", (70, 110, 200), "screenshot", 0.9, 0.6, False),
           ("IMG_0440.HEIC", (150, 110, 70), "animal", 0.88, 0.5, False),
           ("IMG_0447.JPG", (120, 60, 140), "book", 0.66, 0.15, False),
           ("IMG_0452.JPG", (230, 230, 220), "text", 0.74, 0.3, False))
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def stand_in(colour: tuple[int, int, int], label: str) -> Image.Image:
    """A flat placeholder picture: a coloured field with a lighter disc and the category's name."""
    image = Image.new("RGB", (256, 256), colour)
    draw = ImageDraw.Draw(image)
    light = tuple(min(255, c + 60) for c in colour)
    draw.ellipse((48, 40, 208, 200), fill=light)
    draw.text((16, 220), label, fill=(20, 20, 20), font_size=22)
    return image


def thumbnail_data_uri(image: Image.Image) -> str:
    with tempfile.SpooledTemporaryFile() as buffer:
        image.convert("RGB").save(buffer, "JPEG", quality=70)
        buffer.seek(0)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.read()).decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "digest-example.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    photos, uris = [], {}
    for photo_id, (name, colour, category, score, margin, unsure) in enumerate(EXAMPLE, start=1):
        photos.append(DigestPhoto(photo_id, name, category, score, margin, unsure))
        uris[photo_id] = thumbnail_data_uri(stand_in(colour, category))
    picked = pick_for_review(photos)
    digest = Digest("ps-3f9a1c", dt.date(2026, 11, 25), number_photos(picked, [f"t{p.photo_id}" for p in picked]),
                    DEFAULT_CATEGORIES, {"food": 9, "scenery": 5, "screenshot": 14, "animal": 2, "book": 1, "text": 3,
                                         "_unsure": 2, "_duplicates": 1},
                    failures=(Failure("IMG_4471.HEIC", "truncated file"),),
                    attention=("iCloud login needed: type the code from your iPhone into the iCloud 2FA code entity",))
    html = render_html(digest)
    for photo in picked:
        html = html.replace(f"cid:t{photo.photo_id}", uris[photo.photo_id])
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "digest.html"
        page.write_text(html, encoding="utf-8")
        shot = Path(tmp) / "shot.png"
        subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp}/profile", "--window-size=720,1020",
                        f"--screenshot={shot}", page.as_uri()], check=True, capture_output=True, timeout=120)
        image = Image.open(shot).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A synthetic library for the web page's screenshots and benchmark: stand-in pictures (flat shapes, nothing
from the shared photos), a state file with made-up predictions and clustered embeddings of the built-in
mobilenet-v2's size, and their thumbnails already cached, as a library that has run for months looks.

Rows are written with one bulk SQL transaction (the product's one-photo-at-a-time journal would take
minutes for 10,000 photos); the schema is the product's own (``SqliteState`` creates it).
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.digest_screenshot import stand_in  # noqa: E402
from photosorter.adapters.state import SqliteState  # noqa: E402
from photosorter.adapters.thumbnails import ThumbnailFolder  # noqa: E402
from photosorter.config import Settings, load_settings  # noqa: E402
from photosorter.ml.download import resolve_model  # noqa: E402

COLOURS = {"screenshot": (70, 110, 200), "me": (220, 170, 140), "people": (200, 120, 110), "animal": (150, 110, 70),
           "scenery": (70, 140, 90), "book": (120, 60, 140), "text": (230, 230, 220), "food": (190, 60, 40),
           "myfitnesspal": (40, 120, 220), "beer": (200, 170, 60), "indoors": (160, 140, 120), "other": (110, 110, 110)}
THUMB_PX = 320


def library_settings(root: Path, **options: object) -> Settings:
    values = {"library": root / "library", "data": root / "data", "model": "mobilenet-v2", "faces": False, **options}
    return load_settings(values, environ={}, dotenv_path=root / "no.env")


def picture(category: str, rng: np.random.Generator, size: int) -> bytes:
    base = np.array(COLOURS.get(category, (128, 128, 128)))
    colour = tuple(int(v) for v in np.clip(base + rng.integers(-35, 35, 3), 0, 255))
    image = stand_in(colour, category).resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def build_library(root: Path, count: int, *, seed: int = 0, size: int = 256, labelled: float = 0.05) -> Settings:
    """``count`` photos over the default categories: about 8% in _unsure, ``labelled`` of them labelled."""
    settings = library_settings(root)
    spec = resolve_model(settings.model.name, settings.model_cache_dir, settings.model.base_url)
    names = settings.classify.names
    state_path = settings.library.data / "state.sqlite3"
    SqliteState(state_path).close()  # the product's schema
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(names), spec.embedding_dim)).astype(np.float32)
    thumbs = ThumbnailFolder(settings.library.data / "thumbs", lambda data, side: Image.open(io.BytesIO(data)))
    pictures = {name: [picture(name, rng, size) for _ in range(6)] for name in names}
    photos, embeddings, labels = [], [], []
    now = time.time()
    for i in range(count):
        ci = int(rng.integers(len(names)))
        category = names[ci]
        data = pictures[category][i % 6][:-2] + i.to_bytes(4, "big") + b"\xff\xd9"  # distinct bytes, same picture
        sha = hashlib.sha256(data).hexdigest()
        margin = float(rng.beta(2, 4))
        unsure = margin < 0.08
        folder = "_unsure" if unsure else category
        relative = f"{folder}/IMG_{i:05d}.jpg"
        path = settings.library.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        thumbs.save(thumbs.path_for(sha, THUMB_PX), data)
        created = now - (count - i) * 60.0
        photos.append((i + 1, sha, len(data), str(path), relative, category, 0.3 + 0.6 * margin + 0.1 * rng.random(),
                       margin, "unsure" if unsure else "placed", i + 1, created, created))
        vector = centres[ci] + rng.normal(scale=0.8, size=spec.embedding_dim).astype(np.float32)
        embeddings.append((i + 1, spec.fingerprint, (vector / np.linalg.norm(vector)).astype(np.float32).tobytes()))
        if not unsure and rng.random() < labelled:
            labels.append((i + 1, category, "cli", "", created))
    with sqlite3.connect(state_path) as db:
        db.executemany("INSERT INTO photos (id, sha256, size, source_path, library_path, category, score, margin, "
                       "status, near_group, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", photos)
        db.executemany("INSERT INTO embeddings (photo_id, model, vector) VALUES (?,?,?)", embeddings)
        db.executemany("INSERT INTO labels (photo_id, category, source, detail, created) VALUES (?,?,?,?,?)", labels)
    return settings

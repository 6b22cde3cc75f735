"""Small JPEG renditions of library photos for the web page, made once and kept by content hash.

``<data>/thumbs/<size>/<sha[:2]>/<sha256>.jpg``: a photo that moves keeps its thumbnail, and the same
bytes are never scaled twice. Written atomically (temp file, then rename), private to photosorter.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from pathlib import Path

from PIL import Image

from photosorter.errors import ImageError
from photosorter.ports import Decoder

log = logging.getLogger(__name__)

QUALITY = 78


class ThumbnailFolder:
    def __init__(self, folder: Path, decoder: Decoder) -> None:
        self.folder = folder
        self.decoder = decoder

    def path_for(self, sha256: str, size_px: int) -> Path:
        return self.folder / str(size_px) / sha256[:2] / f"{sha256}.jpg"

    def get(self, sha256: str, source: Path, size_px: int) -> bytes | None:
        """The photo scaled to fit ``size_px``, from the cache or made now; None when it cannot be read."""
        cached = self.path_for(sha256, size_px)
        try:
            return cached.read_bytes()
        except FileNotFoundError:
            pass
        try:
            image = self.decoder(source.read_bytes(), size_px)
            image.thumbnail((size_px, size_px), Image.Resampling.BILINEAR)
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=QUALITY)
        except (OSError, ImageError, ValueError) as exc:
            log.debug("no thumbnail for %s: %s", sha256[:12], exc)
            return None
        data = buffer.getvalue()
        self.save(cached, data)
        return data

    @staticmethod
    def save(path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".thumb-")  # 0600
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except OSError as exc:  # a full disk costs a rescale next time, nothing more
            log.debug("thumbnail not kept: %s", exc)

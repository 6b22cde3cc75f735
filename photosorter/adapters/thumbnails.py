"""Small JPEG renditions of library photos for the web page, made once and kept by content hash.

``<data>/thumbs/<size>/<sha[:2]>/<sha256>.jpg``: a photo that moves keeps its thumbnail, and the same
bytes are never scaled twice (one maker per thumbnail in this process; the first file written is kept).
Written atomically (temp file, then a link that never replaces one already there), private to photosorter.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import threading
from contextlib import suppress
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
        self._lock = threading.Lock()
        self._making: dict[Path, threading.Lock] = {}  # the page's warm-up and a request may want the same one

    def path_for(self, sha256: str, size_px: int) -> Path:
        return self.folder / str(size_px) / sha256[:2] / f"{sha256}.jpg"

    def get(self, sha256: str, source: Path, size_px: int) -> bytes | None:
        """The photo scaled to fit ``size_px``, from the cache or made now; None when it cannot be read."""
        cached = self.path_for(sha256, size_px)
        try:
            return cached.read_bytes()
        except FileNotFoundError:
            pass
        with self._lock:
            making = self._making.setdefault(cached, threading.Lock())
        try:
            with making:
                return self._make(sha256, source, size_px, cached)
        finally:
            with self._lock:
                self._making.pop(cached, None)

    def _make(self, sha256: str, source: Path, size_px: int, cached: Path) -> bytes | None:
        try:
            return cached.read_bytes()  # made by the caller this one waited for
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
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                try:
                    os.link(tmp, path)  # never replaces: another process that made it first keeps its file
                except FileExistsError:
                    pass
                except OSError:  # a file system without hard links
                    os.replace(tmp, path)
            finally:
                with suppress(FileNotFoundError):
                    os.unlink(tmp)
        except OSError as exc:  # a full disk costs a rescale next time, nothing more
            log.debug("thumbnail not kept: %s", exc)

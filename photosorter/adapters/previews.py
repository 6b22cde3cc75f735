"""Small renditions of photos waiting in the inbox, saved by a source that had them for free.

iCloud serves every photo also as a ~2 MP JPEG; decoding that instead of a 12 MP HEIC, a PNG or a RAW
the sorter cannot read is what makes classification cheap. A preview is named by the sha256 of its
original, so it is found whatever the original is called, and is removed once the photo is sorted.

What the source knows of the photo goes beside it the same way: an empty ``<sha256>.screenshot`` when
iCloud's record marks the photo a screen capture (written by ``adapters/icloud/files.py`` before the
photo appears in the inbox), so the mark survives a restart between download and sort.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from photosorter.adapters.filesystem import remove_stale
from photosorter.core.sync import SCREENSHOT_SUFFIX

log = logging.getLogger(__name__)

SUFFIX = ".jpg"


class PreviewFolder:
    """The ``Previews`` role: ``<data>/previews/<sha256>.jpg``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, sha256: str) -> Path:
        return self.folder / f"{sha256}{SUFFIX}"

    def get(self, sha256: str) -> bytes | None:
        try:
            return self.path_for(sha256).read_bytes()
        except OSError:
            return None

    def marked_screenshot(self, sha256: str) -> bool:
        """Whether the photo's source marked it a screen capture."""
        return (self.folder / f"{sha256}{SCREENSHOT_SUFFIX}").exists()

    def discard(self, sha256: str) -> None:
        for path in (self.path_for(sha256), self.folder / f"{sha256}{SCREENSHOT_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def prune(self, older_than_s: float, now: float | None = None) -> int:
        """Remove previews whose photo never arrived in the library (deleted from the inbox by hand)."""
        limit = (time.time() if now is None else now) - older_than_s
        removed = len(remove_stale(self.folder, lambda name: name.endswith((SUFFIX, SCREENSHOT_SUFFIX)), limit))
        if removed:
            log.info("removed %d previews of photos that never reached the library", removed)
        return removed

"""Durability plumbing shared by the adapters that put files on disk (the inbox, the library, downloads).

Not an adapter of its own, like ``sqlite``: a new name in a folder survives a power cut only once the
folder itself is flushed.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (a file just linked, renamed or removed in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

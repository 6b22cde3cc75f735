"""File-system plumbing shared by the adapters that write files (the inbox, the library, downloads).

Not an adapter of its own, like ``sqlite``: flushing a folder so a new name in it survives a power cut,
and sweeping away our own leftovers once they are old.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (a file just linked, renamed or removed in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale(folder: Path, ours: Callable[[str], bool], older_than: float) -> list[str]:
    """Remove the files in ``folder`` whose name is ``ours`` and whose mtime is before ``older_than``
    (seconds since the epoch); returns their names. A missing folder has nothing to remove."""
    removed = []
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if ours(entry.name) and entry.stat(follow_symlinks=False).st_mtime < older_than:
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed

"""File-system plumbing shared by the adapters that write files (the inbox, the library, downloads).

Not an adapter of its own, like ``sqlite``: flushing a folder so a new name in it survives a power cut,
sweeping away our own leftovers once they are old, and keeping the data folder private.
"""

from __future__ import annotations

import contextlib
import os
import stat
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


PRIVATE_UMASK = 0o077  # every file photosorter writes is 0600, every folder 0700


def make_private(folder: Path) -> int:
    """Create ``folder`` if needed and make it and everything in it private to us (folders 0700, files
    0600): it holds faces, session tokens and thumbnails of private photos. Heals what an older version
    left readable; symlinks are not followed. Returns how many modes were changed."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed = 0
    for root, dirs, files in os.walk(folder):
        for name, mode in [(root, 0o700)] + [(os.path.join(root, d), 0o700) for d in dirs] + [
                (os.path.join(root, f), 0o600) for f in files]:
            with contextlib.suppress(FileNotFoundError):
                info = os.lstat(name)
                if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == mode:
                    continue
                os.chmod(name, mode)
                changed += 1
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    return changed

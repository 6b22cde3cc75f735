"""One writer at a time per data folder and per library: ``fcntl.flock`` on each folder itself.

A second writer (``sort`` while the add-on's daemon sorts, two ``sort`` runs, a ``label``) waits and says
who holds the lock; read-only commands (``status``, ``evaluate``) take none. The kernel drops a lock when
its process dies, so a SIGKILLed run never leaves a stale one. Locking the folder itself leaves nothing in
the library; who holds it is read from ``/proc/locks``. Within one process the locks are re-entrant.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

DAEMON_LOCK_FILE = ".photosorter-daemon.lock"

_held: dict[str, tuple[int, int]] = {}  # lock file -> (fd, depth), this process
_guard = threading.RLock()


class LockBusyError(OSError):
    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(errno.EWOULDBLOCK, f"in use by {holder}", str(path))
        self.holder = holder


def _holder(fd: int) -> str:
    """Who holds the flock on ``fd``'s file, from the kernel's lock table: ``photosorter sort (pid 12, since …)``."""
    info = os.fstat(fd)
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            pids = [int(f[4]) for f in (line.split() for line in table)
                    if len(f) > 5 and f[1] == "FLOCK" and f[5] == wanted and f[4].isdigit()]
        pid = next(p for p in pids if p != os.getpid())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        command = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a.endswith("photosorter")), "")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(f"/proc/{pid}").st_mtime))
    except (OSError, StopIteration, ValueError):
        return "another photosorter process"
    return f"photosorter {command or 'process'} (pid {pid}, since {since})"


def _take(path: Path, command: str, wait: bool, make: bool) -> bool:
    """Lock ``path`` (a folder, or a ``.lock`` file). A folder not there yet (a library before its first
    sort) is made first when ``make``, 0700, and locked, so two first writers into a new library take turns
    too; False when it is not there (nothing in it to protect) or cannot be made (the command then meets
    the error itself, and says so)."""
    key = os.path.realpath(path)
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            return True
        if path.suffix == ".lock":
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        else:
            if make:
                with contextlib.suppress(OSError):
                    path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.is_dir():
                return False
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                if not wait:
                    raise LockBusyError(path, holder) from None
                log.warning("waiting for %s, which is using %s; this %s starts when it is done", holder,
                            path if path.suffix != ".lock" else path.parent, command)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        _held[key] = (fd, 1)
        return True


def _release(path: Path) -> None:
    key = os.path.realpath(path)
    with _guard:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
        os.close(fd)  # closing the only descriptor drops the flock


@contextlib.contextmanager
def folder_locks(folders: Sequence[Path], command: str, *, wait: bool = True, name: str = "",
                 make: bool = True) -> Iterator[None]:
    """Hold the lock of every folder in ``folders`` (always taken in the order given: data, then library),
    or with ``name`` of a lock file of that name in each. ``wait=False`` raises ``LockBusyError`` (naming
    the holder) instead of waiting; ``make=False`` leaves a folder that is not there alone (and unlocked)."""
    taken: list[Path] = []
    try:
        for folder in dict.fromkeys(Path(os.path.realpath(f)) for f in folders):
            path = folder / name if name else folder
            if _take(path, command, wait, make):
                taken.append(path)
        yield
    finally:
        for path in reversed(taken):
            _release(path)


def writer_locks(data: Path, library: Path, command: str, *, wait: bool = True,
                 fills_library: bool = True) -> contextlib.AbstractContextManager[None]:
    """The locks every writer holds while it works (each command that changes the state or the library, the
    daemon's work round, a change from the web page): its data folder, then its library, made first when
    it is not there yet and the writer puts photos in it (``fills_library``; faces and the digest do not)."""
    return folder_locks([data, library], command, wait=wait, make=fills_library)

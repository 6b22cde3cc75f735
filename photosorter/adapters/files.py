"""Files on disk: listing an inbox, and atomic, never-overwriting, crash-recoverable moves.

A move is journaled by the caller before ``move_file`` runs. Within one file system the file is
hard-linked to its destination (which fails rather than overwrite) and then unlinked from the
source; across file systems it is copied to a hidden partial file beside the destination, fsynced,
linked into place and only then unlinked at the source. At every instant the photo exists at the
source, the destination, or both as the same bytes, which is what ``settle_move`` resolves after a
crash.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import hashlib
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from photosorter.adapters.filesystem import fsync_dir
from photosorter.core.companions import companions_of, extension, is_video, renamed
from photosorter.core.naming import numbered_name

log = logging.getLogger(__name__)

PARTIAL_PREFIX = ".photosorter-partial-"
CHUNK_BYTES = 1 << 20
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".heic", ".heif", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp",
                              ".avif", ".dng"})
# Larger than any photo a phone or camera makes (a 100 MP RAW is ~150 MB): a 2 GB file named .jpg is
# refused before a byte of it is read, so it never costs its size in memory.
MAX_PHOTO_BYTES = 300_000_000


def _hidden_photo(name: str) -> bool:
    """A hidden file that looks like a photo or video (``..jpg``, ``.IMG_1.HEIC``): worth a word, unlike
    macOS's ``._*`` resource forks, ``.DS_Store`` or partial files (ours and other programs')."""
    if name.startswith(("._", ".photosorter")) or name.endswith((".part", ".tmp", ".partial", ".crdownload")):
        return False
    return extension(name) in PHOTO_EXTENSIONS or is_video(name)


def list_inbox(inbox: Path, skip: tuple[Path, ...] = ()) -> Iterator[tuple[Path, str | None]]:
    """Regular files below ``inbox`` in name order; yields (path, None) or (path, why it is skipped).

    Symlinks are never followed (a link in the inbox may point anywhere); hidden files are passed over,
    silently unless they look like photos (``..jpg``).
    """
    skipped = {os.path.realpath(p) for p in skip}
    stack = [inbox]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if any(ch < 0x20 or ch == 0x7F for ch in os.fsencode(entry.name)):
                yield path, "its name holds control characters (a newline, ESC, ...): rename it to have it sorted"
                continue
            if entry.name.startswith("."):
                if _hidden_photo(entry.name):
                    yield path, "hidden name (it starts with a dot): rename it to have it sorted"
                continue
            if entry.is_symlink():
                yield path, "symlink (not followed)"
            elif entry.is_dir(follow_symlinks=False):
                if os.path.realpath(path) not in skipped:
                    subfolders.append(path)
            elif entry.is_file(follow_symlinks=False):
                yield path, None
            else:
                yield path, "not a regular file"
        stack.extend(reversed(subfolders))


class StillChangingError(OSError):
    """The file changed (size or time) within the settle time, or while it was read or copied: someone is
    still writing it. It is left where it is for the next run."""

    def __init__(self, path: Path, settle_s: float) -> None:
        super().__init__(errno.EBUSY, f"still being written (changed within {settle_s:g} s); left for the next run",
                         str(path))


class TooLargeError(OSError):
    """A file far larger than any photo: refused before it is read."""

    def __init__(self, path: Path, size: int) -> None:
        super().__init__(errno.EFBIG, f"too large for a photo ({size / 1e6:.0f} MB; the limit is "
                         f"{MAX_PHOTO_BYTES / 1e6:.0f} MB); left in place", str(path))


@dataclass(frozen=True)
class Stamp:
    """What a file looked like when it was read: a move checks it has not changed since."""

    size: int
    mtime_ns: int
    ino: int
    sha256: str


def _changed(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino) != (
        after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino)


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading without following a symlink and without blocking (a FIFO swapped in after
    the listing would hang ``open`` forever); refuse anything but a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def wait_until_settled(fd: int, path: Path, settle_s: float, *, clock: Callable[[], float] = time.time,
                       sleep: Callable[[float], None] = time.sleep) -> os.stat_result:
    """The file's status once it has not changed for ``settle_s`` seconds (its newer of mtime and ctime:
    ``cp -p`` backdates mtime but not ctime). Waits at most ``settle_s``; raises ``StillChangingError`` if
    it changed meanwhile."""
    info = os.fstat(fd)
    age = clock() - max(info.st_mtime, info.st_ctime)
    if age >= settle_s:
        return info
    sleep(settle_s - max(age, 0.0))
    after = os.fstat(fd)
    if _changed(info, after):
        raise StillChangingError(path, settle_s)
    return after


def read_file(path: Path, settle_s: float = 0.0) -> tuple[bytes, os.stat_result]:
    """Read a regular file (not through a symlink at its last component) once it has settled, in bounded
    chunks and never more than ``MAX_PHOTO_BYTES``; returns its bytes and its status."""
    fd, info = _open_regular(path)
    try:
        if info.st_size > MAX_PHOTO_BYTES:
            raise TooLargeError(path, info.st_size)
        info = wait_until_settled(fd, path, settle_s)
        buffer = bytearray(info.st_size)
        view, done = memoryview(buffer), 0
        while done < info.st_size:
            count = os.readv(fd, [view[done:done + CHUNK_BYTES]])
            if count == 0:
                break
            done += count
        view.release()
        if done != info.st_size or os.read(fd, 1) or _changed(info, os.fstat(fd)):
            raise StillChangingError(path, settle_s)
        return bytes(buffer), info
    finally:
        os.close(fd)


def free_path(folder: Path, name: str, companions: Sequence[str] = ()) -> Path:
    """``folder/name``, or the first numbered variant that does not exist yet, with room beside it for
    the photo's ``companions`` under their new names (``IMG_1-2.HEIC`` with ``IMG_1-2.MOV``)."""
    taken: set[str] = set()
    if companions:  # a group is kept together on case-insensitive shares too: IMG_1.mov is taken by IMG_1.MOV
        with contextlib.suppress(FileNotFoundError):
            taken = {n.lower() for n in os.listdir(folder)}
    number = 1
    while True:
        candidate = numbered_name(name, number)
        wanted = [candidate] + [renamed(c, name, candidate) for c in companions]
        if not any(n.lower() in taken or os.path.lexists(folder / n) for n in wanted):
            return folder / candidate
        number += 1


def companions(photo: Path) -> list[Path]:
    """The files beside ``photo`` that travel with it (see ``core.companions``)."""
    try:
        names = [e.name for e in os.scandir(photo.parent)
                 if not e.name.startswith(".") and e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    return [photo.parent / n for n in companions_of(photo.name, names)]



def partial_path(dst: Path, move_id: int) -> Path:
    return dst.parent / f"{PARTIAL_PREFIX}{move_id}"


def move_file(src: Path, dst: Path, move_id: int, stamp: Stamp | None = None, settle_s: float = 0.0) -> None:
    """Move ``src`` to ``dst`` atomically, never overwriting; raises ``FileExistsError`` if taken.

    The file must be what was read (``stamp``) or, unread, unchanged for ``settle_s``: a file still being
    written stays where it is (``StillChangingError``). If the source cannot be removed afterwards (a
    read-only inbox), the new copy is removed again and the error raised: the photo is in one place."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, info = _open_regular(src)
    try:
        if stamp is not None:
            if (info.st_size, info.st_mtime_ns, info.st_ino) != (stamp.size, stamp.mtime_ns, stamp.ino):
                raise StillChangingError(src, settle_s)
        else:
            info = wait_until_settled(fd, src, settle_s)
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from exc
            if exc.errno == errno.EXDEV:
                _copy_into_place(fd, info, src, dst, move_id, stamp, settle_s)
            elif exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                # Same file system without hard links (some network shares): check, then rename.
                if os.path.lexists(dst):
                    raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from exc
                os.rename(src, dst)
                fsync_dir(dst.parent)
                fsync_dir(src.parent)
                return
            else:
                raise
    finally:
        os.close(fd)
    fsync_dir(dst.parent)
    _unlink_source(src, dst)


def _unlink_source(src: Path, dst: Path) -> None:
    """The photo is at both places now: remove the source, or if that is refused take the copy back."""
    try:
        os.unlink(src)
    except OSError:
        os.unlink(dst)
        fsync_dir(dst.parent)
        raise
    fsync_dir(src.parent)


def _copy_into_place(fd: int, info: os.stat_result, src: Path, dst: Path, move_id: int, stamp: Stamp | None,
                     settle_s: float) -> None:
    """Across file systems: copy to a partial file, verify it (size; the hash of what was read), fsync,
    then link it into place. A source that changed meanwhile leaves nothing behind at the destination."""
    partial = partial_path(dst, move_id)
    digest = hashlib.sha256()
    copied = 0
    try:
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600),
                       "wb") as writer:
            while block := os.read(fd, CHUNK_BYTES):
                writer.write(block)
                digest.update(block)
                copied += len(block)
            writer.flush()
            os.fsync(writer.fileno())
            written = os.fstat(writer.fileno()).st_size
        if (copied != info.st_size or written != copied or _changed(info, os.fstat(fd))
                or (stamp is not None and digest.hexdigest() != stamp.sha256)):
            raise StillChangingError(src, settle_s)
        shutil.copystat(src, partial, follow_symlinks=False)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    try:
        os.link(partial, dst)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            partial.unlink()
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from exc
        if os.path.lexists(dst):
            raise
        os.rename(partial, dst)
    else:
        partial.unlink()


def settle_move(src: Path, dst: Path, move_id: int) -> bool:
    """Finish or roll back a move a crash interrupted. True: the photo is at ``dst`` only."""
    partial = partial_path(dst, move_id)
    if partial.exists():
        partial.unlink()  # an unfinished copy; the source is intact
    src_there, dst_there = os.path.lexists(src), os.path.lexists(dst)
    if dst_there and src_there:
        if os.path.samefile(src, dst) or filecmp.cmp(src, dst, shallow=False):
            try:
                os.unlink(src)
            except OSError as exc:  # the source cannot go (read-only inbox): take the copy back instead
                os.unlink(dst)  # if this fails too, neither end can change: the caller sets the move aside
                fsync_dir(dst.parent)
                log.warning("move %d: cannot remove %r (%s); rolled back", move_id, str(src), exc.strerror or exc)
                return False
            fsync_dir(src.parent)
            return True
        return False  # dst holds something else: leave both alone, the photo stays at src
    if dst_there:
        return True
    if not src_there:
        log.error("move %d: photo found neither at %r nor at %r", move_id, str(src), str(dst))
    return False


def library_files(library: Path, folders: Sequence[str]) -> list[str]:
    """The regular files (not hidden) in ``folders`` of the library, as paths relative to it."""
    found = []
    for folder in folders:
        if not (library / folder).is_dir():
            continue
        for path, why in list_inbox(library / folder):
            if why is None:
                found.append(path.relative_to(library).as_posix())
    return found


def file_digest(path: Path) -> str:
    """The sha256 of a regular file, read in bounded chunks."""
    fd, _ = _open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class LocalFiles:
    """The ``PhotoFiles`` role on the local file system.

    ``settle_s``: a file must be unchanged this long before it is read or moved, except in ``atomic``
    folders, where files only ever appear whole (downloads renamed into place). What was read is
    remembered (size, time, hash), and a move checks the file is still exactly that."""

    def __init__(self, settle_s: float = 0.0, atomic: tuple[Path, ...] = ()) -> None:
        self.settle_s = settle_s
        self._atomic = tuple(os.path.realpath(f) + os.sep for f in atomic)
        self._stamps: dict[Path, Stamp] = {}

    def _settle_for(self, path: Path) -> float:
        return 0.0 if os.path.realpath(path.parent).startswith(self._atomic) or not self.settle_s else self.settle_s

    def list_inbox(self, inbox: Path, skip: tuple[Path, ...] = ()) -> Iterator[tuple[Path, str | None]]:
        self._stamps.clear()  # a new listing: what was read before and not moved is read again
        return list_inbox(inbox, skip)

    def read(self, path: Path) -> bytes:
        data, info = read_file(path, self._settle_for(path))
        self._stamps[path] = Stamp(info.st_size, info.st_mtime_ns, info.st_ino, hashlib.sha256(data).hexdigest())
        return data

    def free_path(self, folder: Path, name: str, companions: Sequence[str] = ()) -> Path:
        return free_path(folder, name, companions)

    def companions(self, photo: Path) -> list[Path]:
        return companions(photo)

    def move(self, src: Path, dst: Path, move_id: int) -> None:
        move_file(src, dst, move_id, self._stamps.get(src), self._settle_for(src))
        self._stamps.pop(src, None)

    def settle(self, src: Path, dst: Path, move_id: int) -> bool:
        return settle_move(src, dst, move_id)

    def library_files(self, library: Path, folders: Sequence[str]) -> list[str]:
        return library_files(library, folders)

    def digest(self, path: Path) -> str:
        return file_digest(path)

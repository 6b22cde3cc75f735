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
import logging
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from photosorter.adapters.filesystem import fsync_dir
from photosorter.core.companions import companions_of, renamed
from photosorter.core.naming import numbered_name

log = logging.getLogger(__name__)

PARTIAL_PREFIX = ".photosorter-partial-"


def list_inbox(inbox: Path, skip: tuple[Path, ...] = ()) -> Iterator[tuple[Path, str | None]]:
    """Regular files below ``inbox`` in name order; yields (path, None) or (path, why it is skipped).

    Symlinks are never followed (a link in the inbox may point anywhere); hidden files and our
    own partial files are passed over silently.
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
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
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


def read_file(path: Path) -> bytes:
    """Read a regular file without following a symlink at its last component."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
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


def move_file(src: Path, dst: Path, move_id: int) -> None:
    """Move ``src`` to ``dst`` atomically, never overwriting; raises ``FileExistsError`` if taken."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from exc
        if exc.errno == errno.EXDEV:
            _copy_into_place(src, dst, move_id)
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
    fsync_dir(dst.parent)
    os.unlink(src)
    fsync_dir(src.parent)


def _copy_into_place(src: Path, dst: Path, move_id: int) -> None:
    """Across file systems: copy to a partial file, fsync, then link it into place."""
    partial = partial_path(dst, move_id)
    with src.open("rb") as reader, partial.open("wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copystat(src, partial)
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
            os.unlink(src)
            return True
        return False  # dst holds something else: leave both alone, the photo stays at src
    if dst_there:
        return True
    if not src_there:
        log.error("move %d: photo found neither at %r nor at %r", move_id, str(src), str(dst))
    return False


class LocalFiles:
    """The ``PhotoFiles`` role on the local file system."""

    def list_inbox(self, inbox: Path, skip: tuple[Path, ...] = ()) -> Iterator[tuple[Path, str | None]]:
        return list_inbox(inbox, skip)

    def read(self, path: Path) -> bytes:
        return read_file(path)

    def free_path(self, folder: Path, name: str, companions: Sequence[str] = ()) -> Path:
        return free_path(folder, name, companions)

    def companions(self, photo: Path) -> list[Path]:
        return companions(photo)

    def move(self, src: Path, dst: Path, move_id: int) -> None:
        move_file(src, dst, move_id)

    def settle(self, src: Path, dst: Path, move_id: int) -> bool:
        return settle_move(src, dst, move_id)

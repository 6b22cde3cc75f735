"""Putting files into the library: journaled, never overwriting, a photo's companions going with it.

Every move is written to the journal before the file moves and closed after, so a crash at any point
is settled on the next start (``recover``). A photo's companions (its live-photo movie, sidecars; see
``core.companions``) are journaled together with it, each entry naming the photo's move it follows:
if the photo reached its new folder before a crash, recovery carries its companions after it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from photosorter.core.companions import renamed
from photosorter.core.naming import printable as escape
from photosorter.core.naming import safe_name
from photosorter.errors import ConfigError, StateError
from photosorter.ports import PhotoFiles, StateStore
from photosorter.records import Move, PhotoStatus

log = logging.getLogger(__name__)

MOVE_ATTEMPTS = 5


def printable(path: Path) -> str:
    """A path for one log line (and as the state stores source paths), whatever bytes its name holds."""
    return escape(os.fsencode(path))


def check_inbox(inbox: Path, library: Path, folders: tuple[str, ...]) -> None:
    """Refuse an inbox that is the library itself or lies inside one of its ``folders`` (categories,
    _unsure, ...): every run would file the library's photos again, as duplicates of themselves."""
    real_inbox, real_library = Path(os.path.realpath(inbox)), Path(os.path.realpath(library))
    if real_inbox == real_library:
        raise ConfigError([f"inbox: {inbox} is the library itself; give a folder outside the library"])
    if real_inbox.is_relative_to(real_library):
        top = real_inbox.relative_to(real_library).parts[0]
        if top in folders:
            raise ConfigError([f"inbox: {inbox} is inside the library's {top} folder; give a folder outside it"])


class Placer:
    def __init__(self, state: StateStore, files: PhotoFiles, library: Path) -> None:
        self.state = state
        self.files = files
        self.library = library

    def recover(self) -> int:
        """Finish or roll back every move a crash interrupted; returns how many were settled."""
        pending = self.state.pending_moves()
        for move in pending:
            try:
                done = self.files.settle(move.src, move.dst, move.id)
                if not done and move.follows is not None and self.state.move_done(move.follows):
                    done = self._carry(move)
            except OSError as exc:  # neither end can be changed (read-only): one problem, not a blocked start
                self.state.set_move_aside(move)
                log.error("cannot finish or roll back interrupted move %d of %s to %s (%s); set aside as a problem,"
                          " check both places by hand", move.id, printable(move.src), printable(move.dst),
                          exc.strerror or exc)
                continue
            self.state.finish_move(move, done)
            log.info("recovered interrupted move %d: %s", move.id,
                     f"finished at {printable(move.dst)}" if done else f"rolled back to {printable(move.src)}")
        return len(pending)

    def _carry(self, move: Move) -> bool:
        """A companion left behind when its photo moved: move it now."""
        if not os.path.lexists(move.src):
            return False
        try:
            self.files.move(move.src, move.dst, move.id)
        except OSError as exc:
            log.error("cannot carry %s after its photo: %s", printable(move.src), exc.strerror or exc)
            return self.files.settle(move.src, move.dst, move.id)
        return True

    def place(self, photo_id: int | None, src: Path, folder: str, status: PhotoStatus,
              companions: list[Path] | None = None) -> Path:
        """Move ``src`` (and its companions, looked up beside it unless given) into ``library/folder``
        under a free name; returns where it went. On ``OSError`` the photo stays where it was."""
        name = safe_name(os.fsencode(src.name))
        if companions is None:
            companions = self.files.companions(src)
        tails = [safe_name(os.fsencode(c.name)) for c in companions]
        for _ in range(MOVE_ATTEMPTS):
            dst = self.files.free_path(self.library / folder, name, tails)
            move = self.state.begin_move(photo_id, src, dst, str(dst.relative_to(self.library)), status)
            followers = [self.state.begin_move(None, c, dst.parent / renamed(t, name, dst.name), None, status,
                                               follows=move.id) for c, t in zip(companions, tails, strict=True)]
            try:
                self.files.move(src, dst, move.id)
            except FileExistsError:
                self._give_up(move, followers)
                continue
            except OSError:
                try:
                    done = self.files.settle(src, dst, move.id)
                except OSError:
                    self.state.set_move_aside(move)
                    for follower in followers:
                        self.state.finish_move(follower, False)
                    raise
                self.state.finish_move(move, done)
                for follower in followers:
                    if done:
                        self._follow(follower)
                    else:
                        self.state.finish_move(follower, False)
                raise
            self.state.finish_move(move, True)
            for follower in followers:
                self._follow(follower)
            return dst
        raise StateError(f"no free name for {name} in {folder} after {MOVE_ATTEMPTS} attempts")

    def _give_up(self, move: Move, followers: list[Move]) -> None:
        self.state.finish_move(move, False)
        for follower in followers:
            self.state.finish_move(follower, False)

    def _follow(self, move: Move) -> None:
        try:
            self.files.move(move.src, move.dst, move.id)
        except OSError as exc:
            done = self.files.settle(move.src, move.dst, move.id)
            log.error("cannot move %s beside its photo: %s; it stays at %s", printable(move.src),
                      exc.strerror or exc, printable(move.dst if done else move.src))
            self.state.finish_move(move, done)
            return
        self.state.finish_move(move, True)

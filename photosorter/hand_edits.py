"""What the person changed in the library by hand, noticed before each run.

A photo moved to another category folder (a file manager, the Samba share) is a label: the person said
what it is. A photo renamed in place or moved into ``_unsure`` only changes where it lives. A photo that
is gone is remembered as removed: never placed again, never fetched from iCloud again (the iCloud
ledger keeps its asset as known). Files are matched by name first and by content (sha256) always, so a
different photo that happens to take the name is not mistaken for the moved one.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from photosorter.core.placement import UNSURE_FOLDER
from photosorter.ports import PhotoFiles, StateStore
from photosorter.records import PhotoRecord, PhotoStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandEdit:
    photo_id: int
    old_path: str
    new_path: str | None  # None: deleted
    label: str | None  # the category the person filed it under, when that is news


class HandEdits:
    def __init__(self, state: StateStore, files: PhotoFiles, library: Path, categories: tuple[str, ...]) -> None:
        self.state = state
        self.files = files
        self.library = library
        self.categories = categories

    def notice(self) -> list[HandEdit]:
        """Find photos the person moved, renamed or deleted in the category folders and ``_unsure``; record
        where they are (or that they are gone) and return the edits. Labels are for the caller to apply."""
        watched = (*self.categories, UNSURE_FOLDER)
        everything = self.state.library_records()
        missing = [r for r in everything
                   if r.library_path and r.library_path.split("/")[0] in watched
                   and r.status in (PhotoStatus.PLACED, PhotoStatus.UNSURE)
                   and not os.path.lexists(self.library / r.library_path)]
        if not missing:
            return []
        known = {r.library_path for r in everything}
        unknown = [p for p in self.files.library_files(self.library, watched) if p not in known]
        by_name: dict[str, list[str]] = defaultdict(list)
        for path in unknown:
            by_name[path.rsplit("/", 1)[-1]].append(path)
        digests: dict[str, str] = {}
        edits = []
        for record in missing:
            found = self._find(record, by_name, unknown, digests)
            edits.append(self._record(record, found))
        return edits

    def _find(self, record: PhotoRecord, by_name: dict[str, list[str]], unknown: list[str],
              digests: dict[str, str]) -> str | None:
        name = str(record.library_path).rsplit("/", 1)[-1]
        for path in [*by_name.get(name, []), *unknown]:  # same name first (moved), then any (renamed)
            if path not in digests:
                try:
                    digests[path] = self.files.digest(self.library / path)
                except OSError:
                    digests[path] = ""
            if digests[path] == record.sha256:
                unknown.remove(path)
                for paths in by_name.values():
                    if path in paths:
                        paths.remove(path)
                return path
        return None

    def _record(self, record: PhotoRecord, found: str | None) -> HandEdit:
        old = str(record.library_path)
        if found is None:
            self.state.removed_by_hand(record.id)
            log.info("%s is gone from the library (deleted or moved out by hand): remembered as removed", old)
            return HandEdit(record.id, old, None, None)
        folder = found.split("/")[0]
        status = PhotoStatus.UNSURE if folder == UNSURE_FOLDER else PhotoStatus.PLACED
        self.state.moved_by_hand(record.id, found, status, folder if folder in self.categories else record.category)
        label = folder if folder in self.categories and (folder != old.split("/")[0]) else None
        log.info("%s was moved by hand to %s%s", old, found, f": labelled {label}" if label else "")
        return HandEdit(record.id, old, found, label)

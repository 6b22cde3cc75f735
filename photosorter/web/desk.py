"""The web page's changes, each the same labelling the CLI and email use (move, kNN index, journal).

Every method here runs on the sorter's thread (the daemon's, or the one worker of ``photosorter web``),
so two tabs or a double click are serialised: each change names the version of the photo the page
showed, and a photo that changed meanwhile answers 409 with nothing done.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from photosorter.core.faces import ME
from photosorter.errors import ConfigError, PhotosorterError, RequestError
from photosorter.pipeline import Sorter
from photosorter.records import PhotoRecord, PhotoStatus

log = logging.getLogger(__name__)

WEB_SOURCE = "web"
MAX_UNDO = 500
TOP_CATEGORIES = 3
NEIGHBOURS = 6


class LabelLookup(Protocol):
    def latest_label(self, photo_id: int) -> tuple[int, str, str] | None: ...


@dataclass(frozen=True)
class Undo:
    photo_id: int
    before: PhotoRecord


def version_of(label_id: int, record: PhotoRecord) -> str:
    """What the page sends back with a change: the photo as it saw it (latest label, place)."""
    return f"{label_id}:{record.library_path or ''}"


def folder_of(record: PhotoRecord) -> str:
    return (record.library_path or "").split("/")[0]


class Desk:
    def __init__(self, sorter: Sorter, labels: LabelLookup) -> None:
        self.sorter = sorter
        self.labels = labels
        self._undo: OrderedDict[str, Undo] = OrderedDict()

    # reading ----------------------------------------------------------------------------------------
    def version(self, record: PhotoRecord) -> str:
        latest = self.labels.latest_label(record.id)
        return version_of(latest[0] if latest else 0, record)

    def describe(self, photo_id: int) -> dict[str, Any]:
        record = self._record(photo_id)
        latest = self.labels.latest_label(photo_id)
        return {"id": record.id, "folder": folder_of(record), "category": record.category,
                "score": round(record.score or 0.0, 3), "unsure": record.status is PhotoStatus.UNSURE,
                "label": latest[1] if latest else None, "version": self.version(record),
                "name": (record.library_path or "").rsplit("/", 1)[-1]}

    def details(self, photo_id: int) -> dict[str, Any]:
        """What the photo page shows: top categories, faces (and whether each is the person)."""
        described = self.describe(photo_id)
        embedding = self.sorter.state.embedding(photo_id, self.sorter.model_id)
        top: list[tuple[str, float]] = []
        if embedding is not None:
            try:
                probabilities = self.sorter.predict(embedding, None, exclude=photo_id).probabilities
                top = sorted(probabilities.items(), key=lambda kv: -kv[1])[:TOP_CATEGORIES]
            except PhotosorterError as exc:  # a classifier model needs its class outputs, not kept
                log.debug("photo %d: no fresh prediction (%s)", photo_id, exc.message)
        if not top and described["category"]:
            top = [(described["category"], described["score"])]
        described["top"] = [{"category": c, "probability": round(float(p), 3)} for c, p in top]
        described["faces"] = self._faces(photo_id)
        described["neighbours"] = [] if embedding is None else [
            {"id": n.photo_id, "category": n.category, "similarity": round(n.similarity, 3)}
            for n in self.sorter.index.search(embedding, NEIGHBOURS, exclude=photo_id)]
        return described

    def _faces(self, photo_id: int) -> list[dict[str, Any]]:
        stage = self.sorter.faces
        found = stage.faces(photo_id) if stage is not None else None
        if stage is None or found is None:
            return []
        references = {r.number: r.id for r in stage.references() if r.photo_id == photo_id}
        shown = []
        for face, vector in zip(*found, strict=True):
            verdict = stage.judge([face], np.asarray(vector)[None, :])
            shown.append({"number": face.number, "box": [round(v, 4) for v in face.box],
                          "me_score": round(verdict.me_score, 3), "me": verdict.me_score >= stage.me_threshold,
                          "reference": references.get(face.number)})
        return shown

    def references(self) -> list[dict[str, Any]]:
        """The person's reference faces (``me show``), each with the photo it came from."""
        if self.sorter.faces is None:
            return []
        return [{"id": r.id, "photo": r.photo_id, "face": r.number} for r in self.sorter.faces.references()]

    # changing ---------------------------------------------------------------------------------------
    def label(self, photo_id: int, category: str, version: str | None, *, save_index: bool = True) -> dict[str, Any]:
        """Label one photo (accepting the guess is labelling it with the guessed category)."""
        self._check_category(category)
        before = self._current(photo_id, version)
        action = secrets.token_hex(8)
        if self.sorter.label_photo(photo_id, category, source=WEB_SOURCE, detail=action,
                                   save_index=save_index) is None:
            raise RequestError(f"photo {photo_id} has no embedding and cannot be read; nothing changed", status=409)
        self._undo[action] = Undo(photo_id, before)
        while len(self._undo) > MAX_UNDO:
            self._undo.popitem(last=False)
        return {**self.describe(photo_id), "action": action}

    def label_many(self, photo_ids: list[int], category: str) -> dict[str, Any]:
        """The map's box selection: label each photo; ones gone meanwhile are counted, not fatal."""
        self._check_category(category)
        done = [self.label(photo_id, category, None, save_index=False)["action"] for photo_id in photo_ids
                if self._exists(photo_id)]
        self.sorter.index.save(self.sorter.index_path)
        return {"labelled": len(done), "missing": len(photo_ids) - len(done), "actions": done}

    def undo(self, action: str) -> dict[str, Any]:
        entry = self._undo.get(action)
        if entry is None:
            raise RequestError("nothing to undo for that action", status=404)
        if not self.sorter.unlabel(entry.photo_id, entry.before, source=WEB_SOURCE, detail=action):
            raise RequestError("that label was changed since; nothing to undo", status=409)
        del self._undo[action]
        return self.describe(entry.photo_id)

    def add_my_face(self, photo_id: int, number: int) -> dict[str, Any]:
        """``me add --face N`` for a library photo: label it me and keep face N as a reference face."""
        record = self._current(photo_id, None)
        if self.sorter.faces is None:
            raise RequestError("the face stage is off (setting faces: false)", status=400)
        try:
            labelled = self.sorter.label([self.sorter.library / (record.library_path or "")], ME, face=number)
        except ConfigError as exc:
            raise RequestError("; ".join(exc.problems), status=400) from exc
        if labelled != 1:
            raise RequestError(f"photo {photo_id} cannot be read; nothing changed", status=409)
        return self.details(photo_id)

    def remove_reference(self, reference_id: int) -> dict[str, Any]:
        if self.sorter.faces is None:
            raise RequestError("the face stage is off (setting faces: false)", status=400)
        if not self.sorter.faces.remove_reference(reference_id):
            raise RequestError(f"no reference face {reference_id}", status=404)
        return {"removed": reference_id, "references": len(self.sorter.faces.references())}

    # checks -----------------------------------------------------------------------------------------
    def _check_category(self, category: str) -> None:
        if category not in self.sorter.names:
            raise RequestError(f"{category!r} is not a category", status=400)

    def _exists(self, photo_id: int) -> bool:
        record = self.sorter.state.photo(photo_id)
        return record is not None and record.library_path is not None

    def _record(self, photo_id: int) -> PhotoRecord:
        record = self.sorter.state.photo(photo_id)
        if record is None or record.library_path is None:
            raise RequestError(f"no photo {photo_id} in the library", status=404)
        return record

    def _current(self, photo_id: int, version: str | None) -> PhotoRecord:
        record = self._record(photo_id)
        if version is not None and version != self.version(record):
            raise RequestError("this photo was changed meanwhile (another tab or a second click); nothing changed",
                               status=409)
        return record

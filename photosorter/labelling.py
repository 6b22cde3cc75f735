"""Labels: a person says what a photo is, and the sorter learns from it.

A label is recorded in the state, taught to the kNN index (and, for ``me``, to the face stage's
reference faces), and moves the photo to its category folder in the library. Labels can be taken back
(the web page's undo), relearned under a new model, and followed by sorting a category again.
Orchestration only: the sorter hands in the state, the index and its own loading, placing, analysing
and predicting; ``pipeline.Sorter`` keeps ``label``, ``label_photo``, ``unlabel``, ``resort`` and
``relearn_labels`` as its callers know them and passes them on here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from photosorter.core.faces import ME, FaceVerdict
from photosorter.core.placement import plan_folder
from photosorter.core.signals import SCREENSHOT_MARK, FileHints
from photosorter.core.similarity import dhash
from photosorter.errors import ConfigError
from photosorter.facestage import FaceStage
from photosorter.knnstage import KnnStage
from photosorter.loaded import Loaded
from photosorter.placing import printable
from photosorter.ports import Embedder, StateStore, VectorIndex
from photosorter.records import CorrectionEvent, PhotoRecord, PhotoStatus, Prediction

log = logging.getLogger(__name__)


class Predict(Protocol):
    """The sorter's classification of one embedded photo (``Sorter.predict``)."""

    def __call__(self, embedding: np.ndarray, class_probs: np.ndarray | None, *, faces: FaceVerdict | None = None,
                 hints: FileHints | None = None, image: Image.Image | None = None) -> Prediction: ...


class Labelling:
    """What a label does to the state, the index, the faces and the library; one per ``Sorter``."""

    def __init__(self, *, state: StateStore, index: VectorIndex, index_path: Path, embedder: Embedder,
                 knn: KnnStage, faces: FaceStage | None, library: Path, names: tuple[str, ...], model_id: str,
                 load: Callable[[Path], Loaded], place: Callable[[int, Path, str, PhotoStatus], Path | None],
                 analyse: Callable[[int, np.ndarray, int], None], predict: Predict) -> None:
        self.state = state
        self.index = index
        self.index_path = index_path
        self.embedder = embedder
        self.knn = knn
        self.faces = faces
        self.library = library
        self.names = names
        self.model_id = model_id
        self._load = load  # read and decode a photo (faces found, not embedded)
        self._place = place  # journal and move a photo into a library folder; None when it stays
        self._analyse = analyse  # store a photo's embedding and link it to its near-duplicate group
        self.predict = predict
        self.on_corrected: Callable[[CorrectionEvent], None] | None = None  # a person relabelled a photo

    def label(self, paths: Iterable[Path], category: str, *, source: str = "cli", detail: str = "",
              face: int | None = None) -> int:
        """Record ``category`` for each photo, teach the kNN index, move library photos; returns count.

        A ``me`` label also adds the photo's largest face (or face number ``face``) to the "me" faces.
        """
        self._check_category(category)
        count = 0
        for path in paths:
            photo_id, embedding, in_library = self._photo_for_label(path)
            if photo_id is None or embedding is None:
                continue
            if category == ME:
                self._teach_face(photo_id, path, face)
            self._apply_label(photo_id, embedding, category, source, detail, move=in_library)
            count += 1
            log.info("labelled %s as %s", printable(path), category)
        self.index.save(self.index_path)
        return count

    def label_photo(self, photo_id: int, category: str, *, source: str, detail: str = "",
                    save_index: bool = True) -> Path | None:
        """Label a photo the state knows (by id): record, teach the index, move it in the library.

        Returns its library path afterwards (None when it has no embedding under this model and its
        file cannot be read again). Used by corrections that arrive by email or MQTT.
        """
        self._check_category(category)
        record = self.state.photo(photo_id)
        if record is None:
            raise ConfigError([f"photo: no photo with number {photo_id}"])
        embedding = self.state.embedding(photo_id, self.model_id)
        if embedding is None and record.library_path:
            found, embedding, _ = self._photo_for_label(self.library / record.library_path)
            if found != photo_id:
                embedding = None
        if embedding is None:
            log.error("cannot label photo %d: no embedding and no readable file", photo_id)
            return None
        if category == ME and record.library_path:
            self._teach_face(photo_id, self.library / record.library_path, None)
        self._apply_label(photo_id, embedding, category, source, detail, move=record.library_path is not None)
        if save_index:  # a batch of labels (the map's box) saves the index once, at its end
            self.index.save(self.index_path)
        after = self.state.photo(photo_id)
        log.info("labelled photo %d as %s (%s)", photo_id, category, source)
        if self.on_corrected is not None:
            self.on_corrected(CorrectionEvent(photo_id, record.category, category, source, detail))
        return self.library / after.library_path if after and after.library_path else None

    def unlabel(self, photo_id: int, before: PhotoRecord, *, source: str, detail: str) -> bool:
        """Take back a label (the web page's undo): forget it, let the index hold the label before it (if
        any), and put the photo back as ``before`` had it. False when that label is no longer the latest."""
        if not self.state.remove_label(photo_id, source, detail):
            return False
        previous = self.state.current_labels().get(photo_id)
        embedding = self.state.embedding(photo_id, self.model_id)
        if previous is not None and embedding is not None:
            self.index.upsert(photo_id, embedding, previous)
        else:
            self.index.remove(photo_id)
        self.index.save(self.index_path)
        self.knn.labels_changed()
        self.state.record_outcome(photo_id, category=before.category, score=before.score, margin=before.margin)
        now = self.state.photo(photo_id)
        folder = (before.library_path or "").split("/")[0]
        if now and now.library_path and folder and now.library_path.split("/")[0] != folder:
            self._place(photo_id, self.library / now.library_path, folder, before.status)
        log.info("label of photo %d taken back (%s); it is in %s again", photo_id, source, folder or "place")
        return True

    def _teach_face(self, photo_id: int, path: Path, number: int | None) -> None:
        """Add a face of a photo labelled ``me`` to the person's reference faces (scanning it if needed)."""
        if self.faces is None:
            return
        if self.faces.faces(photo_id) is None:
            loaded = self._load(path)
            if loaded.faces is None:
                log.warning("photo %d: cannot read it to find its faces", photo_id)
                return
            self.faces.verdict(photo_id, loaded.faces)
        try:
            self.faces.add_reference(photo_id, number)
        except ConfigError as exc:
            if number is not None:
                raise
            log.warning("photo %d: %s, so it teaches no face", photo_id, exc.message)

    def resort(self, categories: Sequence[str]) -> dict[str, int]:
        """Classify again the photos filed under ``categories`` (except those the person labelled) and move
        each whose folder changes; stored faces are reused. Returns photos moved per folder."""
        for category in categories:
            self._check_category(category)
        labelled = self.state.current_labels()
        moved: dict[str, int] = {}
        for record in self.state.placed_in(tuple(categories)):
            if record.id in labelled or not record.library_path:
                continue
            path = self.library / record.library_path
            loaded = self._load(path)
            if loaded.pixels is None:
                log.warning("resort: cannot read %s; left where it is", record.library_path)
                continue
            if loaded.sha256 and self.state.has_mark(loaded.sha256, SCREENSHOT_MARK):  # iCloud said so at sync
                loaded.hints = replace(loaded.hints or FileHints(), source_screenshot=True)
            embeddings, probs = self.embedder.embed_images([loaded.pixels])
            verdict = self.faces.verdict(record.id, loaded.faces) if self.faces is not None else None
            prediction = self.predict(embeddings[0], probs[0] if probs is not None else None, faces=verdict,
                                      hints=loaded.hints, image=loaded.image)
            folder, status = plan_folder(prediction)
            self.state.record_outcome(record.id, category=prediction.category, score=prediction.score,
                                      margin=prediction.margin)
            if folder != record.library_path.split("/")[0] and self._place(record.id, path, folder, status):
                moved[folder] = moved.get(folder, 0) + 1
        return moved

    def _check_category(self, category: str) -> None:
        if category not in self.names:
            raise ConfigError([f"category: unknown category {category!r} (known: {', '.join(self.names)})"])

    def relearn_labels(self, known: set[int]) -> int:
        """Teach the index the labels made under another model (the embedded one, before the default could
        be downloaded): each labelled photo not in ``known`` (those with an embedding under this model) whose
        file is still there is embedded again. Labels are never lost by changing models. Returns how many."""
        missing = {pid: cat for pid, cat in self.state.current_labels().items() if pid not in known}
        learned = 0
        for photo_id, category in missing.items():
            record = self.state.photo(photo_id)
            path = (self.library / record.library_path if record and record.library_path
                    else Path(record.source_path) if record else None)
            if path is None or not path.is_file():
                continue
            found, embedding, _ = self._photo_for_label(path)
            if found == photo_id and embedding is not None:
                self.index.upsert(photo_id, embedding, category)
                learned += 1
        if learned:
            self.index.save(self.index_path)
            self.knn.labels_changed()
            log.info("learned %d of %d labels again with model %s (they were given under another model)",
                     learned, len(missing), self.embedder.spec.name)
        return learned

    def _apply_label(self, photo_id: int, embedding: np.ndarray, category: str, source: str, detail: str, *,
                     move: bool) -> None:
        record = self.state.photo(photo_id)
        filed = record.category if record and record.status in (PhotoStatus.PLACED, PhotoStatus.UNSURE) else None
        self.state.add_label(photo_id, category, source, detail, guess=filed)
        self.index.upsert(photo_id, embedding, category)
        self.knn.labels_changed()
        if move and record and record.library_path and record.library_path.split("/")[0] != category:
            self.state.record_outcome(photo_id, category=category, score=1.0, margin=1.0)
            if self._place(photo_id, self.library / record.library_path, category, PhotoStatus.PLACED):
                log.info("moved %s to %s/ (labelled %s)", record.library_path, category, category)

    def _photo_for_label(self, path: Path) -> tuple[int | None, np.ndarray | None, bool]:
        """(photo id, embedding, whether it is in the library) for a photo to be labelled."""
        resolved = Path(os.path.abspath(path))
        try:
            relative = str(resolved.relative_to(Path(os.path.abspath(self.library))))
        except ValueError:
            relative = None
        record = self.state.photo_at(relative) if relative else None
        if record is not None:
            stored = self.state.embedding(record.id, self.model_id)
            if stored is not None:
                return record.id, stored, True
        loaded = self._load(resolved)
        if loaded.unreadable or loaded.error or loaded.pixels is None:
            log.error("cannot label %s: %s", printable(path), loaded.unreadable or loaded.error)
            return None, None, False
        embeddings, _ = self.embedder.embed_images([loaded.pixels])
        if record is None:
            known = [r for r in self.state.photos_with_sha(loaded.sha256) if r.status is not PhotoStatus.DUPLICATE]
            record = known[0] if known else None
        photo_id = record.id if record else self.state.add_photo(loaded.sha256, loaded.size, resolved,
                                                                 PhotoStatus.EXAMPLE)
        assert loaded.gray is not None
        self._analyse(photo_id, embeddings[0], dhash(loaded.gray))
        if self.faces is not None:
            self.faces.verdict(photo_id, loaded.faces)  # keeps the faces found: a `me` label needs no second decode
        return photo_id, embeddings[0], record is not None and record.library_path is not None

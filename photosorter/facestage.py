"""The face stage of the sorter: scan a photo's faces, remember them, judge me / people, keep the "me" faces.

Orchestration only: the models are behind ``FaceModel`` (``ml/faces.py``), storage behind ``FaceStore``
(``adapters/state/faces.py``), the decisions in ``core/faces.py``. The person's reference faces live in a
second usearch index (keys: reference-face ids), saved beside the kNN index and rebuilt from the state
when it does not match. Face data never leaves the data folder and is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from photosorter.core.faces import FaceVerdict, adjust_distribution, judge_faces, largest_face
from photosorter.errors import ConfigError
from photosorter.ml.faces import EMBEDDING_DIM
from photosorter.ml.index import UsearchIndex
from photosorter.ports import FaceModel, FaceStore
from photosorter.records import Face, MeFace

log = logging.getLogger(__name__)

ME = "me"


class FaceStage:
    def __init__(self, *, model: FaceModel, store: FaceStore, data_dir: Path, me_threshold: float) -> None:
        self.model = model
        self.store = store
        self.me_threshold = me_threshold
        self.fingerprint = model.fingerprint
        self.index_path = data_dir / f"me-faces-{self.fingerprint}.usearch"
        references = store.me_faces(self.fingerprint)
        index = UsearchIndex.load(self.index_path, EMBEDDING_DIM, {r.id: ME for r in references})
        if index is None:
            index = UsearchIndex(EMBEDDING_DIM)
            for reference in references:
                index.upsert(reference.id, np.asarray(reference.vector), ME)
            if references:
                index.save(self.index_path)
        self.index = index

    # per photo -------------------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> tuple[list[Face], np.ndarray]:
        """Faces (numbered left to right) and their embeddings in an RGB photo; stores nothing, so it can
        run on a decode thread."""
        return self.model.analyse(image)

    def faces(self, photo_id: int) -> tuple[list[Face], np.ndarray] | None:
        """A photo's stored faces and embeddings; None when this face model has not scanned it."""
        return self.store.faces_of(photo_id, self.fingerprint)

    def scan(self, photo_id: int, image: np.ndarray) -> tuple[list[Face], np.ndarray]:
        """Find and embed the faces of a photo and store them (an empty scan is stored too)."""
        found = self.detect(image)
        self.store.save_faces(photo_id, self.fingerprint, *found)
        return found

    def verdict(self, photo_id: int, found: tuple[list[Face], np.ndarray] | None) -> FaceVerdict | None:
        """me / people / nothing for a photo: from its stored faces, else from ``found`` (then stored)."""
        stored = self.faces(photo_id)
        if stored is None:
            if found is None:
                return None
            self.store.save_faces(photo_id, self.fingerprint, *found)
            stored = found
        return self.judge(*stored)

    def judge(self, faces: Sequence[Face], vectors: np.ndarray) -> FaceVerdict:
        similarities = [self._best_match(vector) for vector in vectors]
        return judge_faces(faces, similarities, me_threshold=self.me_threshold)

    def _best_match(self, vector: np.ndarray) -> float:
        found = self.index.search(vector, 1)
        return found[0].similarity if found else -1.0

    @staticmethod
    def adjust(distribution: np.ndarray, categories: Sequence[str], verdict: FaceVerdict | None) -> np.ndarray:
        return distribution if verdict is None else adjust_distribution(distribution, categories, verdict)

    # the person's reference faces ------------------------------------------------------------------
    def add_reference(self, photo_id: int, number: int | None = None) -> Face:
        """Add face ``number`` (default: the largest) of a scanned photo to the "me" faces."""
        found = self.faces(photo_id)
        if found is None or not found[0]:
            raise ConfigError(["face: no face found in this photo"])
        faces, vectors = found
        if number is None:
            chosen = largest_face(faces)
            assert chosen is not None
        elif 1 <= number <= len(faces):
            chosen = faces[number - 1]
        else:
            raise ConfigError([f"face: the photo has {len(faces)} faces (1 to {len(faces)}, left to right), "
                               f"not {number}"])
        vector = vectors[faces.index(chosen)]
        reference = self.store.add_me_face(photo_id, chosen.number, self.fingerprint, vector)
        current = {r.id for r in self.store.me_faces(self.fingerprint)}
        for key in set(self.index.categories) - current:  # the same face added again replaced its row
            self.index.remove(key)
        self.index.upsert(reference, vector, ME)
        self.index.save(self.index_path)
        log.info("added a reference face (%d known)", len(self.index))
        return chosen

    def references(self) -> list[MeFace]:
        return self.store.me_faces(self.fingerprint)

    def remove_reference(self, reference_id: int) -> bool:
        if not self.store.remove_me_face(reference_id):
            return False
        self.index.remove(reference_id)
        self.index.save(self.index_path)
        return True

    def forget(self) -> tuple[int, int]:
        deleted = forget_faces(self.store, self.index_path.parent)
        self.index = UsearchIndex(EMBEDDING_DIM)
        return deleted


def forget_faces(store: FaceStore, data_dir: Path) -> tuple[int, int]:
    """Delete the reference faces, every stored face and the "me" index files (of every face model);
    needs no model, so it works with the face stage off. Returns (reference faces, faces) deleted."""
    deleted = store.forget_faces()
    for path in data_dir.glob("me-faces-*.usearch*"):
        path.unlink(missing_ok=True)
    return deleted

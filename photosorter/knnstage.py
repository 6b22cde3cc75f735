"""The kNN stage of the sorter: what the person's labels say about a photo.

Orchestration only: the rules are in ``core/classify.py`` (evidence, reliability, trust, blend) and
``core/similarity.py`` (the similarity scale). This keeps the two measurements they need fresh: the
model's similarity scale, measured on the model's own photos in the state (re-measured as the library
grows, until the sample is full), and each category's trust, measured from the labels (re-measured on
the next photo after a label changes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from photosorter.core.classify import blend, knn_evidence, label_reliability, label_trust
from photosorter.core.similarity import SCALE_SAMPLE, SimilarityScale, similarity_scale
from photosorter.ports import StateStore
from photosorter.records import Neighbour

log = logging.getLogger(__name__)


class KnnStage:
    def __init__(self, *, state: StateStore, model_id: str, names: Sequence[str], knn_k: int,
                 trust_labels: int) -> None:
        self.state = state
        self.model_id = model_id
        self.names = tuple(names)
        self.knn_k = knn_k
        self.trust_labels = trust_labels
        self._scale: SimilarityScale | None = None
        self._scale_photos = 0  # photos the scale was measured on
        self._seen = 0  # photos analysed since
        self._trust: np.ndarray | None = None

    def labels_changed(self) -> None:
        self._trust = None
        self._seen += 1

    def photo_analysed(self) -> None:
        self._seen += 1

    @property
    def scale(self) -> SimilarityScale:
        """Re-measured when the state holds twice the photos it was measured on (until the sample is full)."""
        if self._scale is None or (self._scale_photos < SCALE_SAMPLE and self._seen >= max(8, self._scale_photos)):
            sample = self.state.recent_embeddings(self.model_id, SCALE_SAMPLE)
            self._scale, self._scale_photos, self._seen = similarity_scale(sample), len(sample), 0
            self._trust = None
            log.debug("similarity scale from %d photos: far %.3f, near %.3f", len(sample), self._scale.far,
                      self._scale.near)
        return self._scale

    @property
    def trust(self) -> np.ndarray:
        scale = self.scale
        if self._trust is None:
            labelled = self.state.labelled_embeddings(self.model_id)
            labels = [category for _, category, _ in labelled]
            counts = np.asarray([labels.count(name) for name in self.names], dtype=np.float64)
            reliability = np.full(len(self.names), 0.5)
            if labelled:
                vectors = np.stack([vector for _, _, vector in labelled])
                reliability = label_reliability(vectors, labels, self.names, scale, self.knn_k)
            self._trust = label_trust(counts, reliability, self.trust_labels)
        return self._trust

    def distribution(self, prior: np.ndarray, neighbours: Sequence[Neighbour]) -> np.ndarray:
        if not neighbours:
            return prior
        return blend(prior, knn_evidence(neighbours, self.names, self.scale), self.trust)

"""The kNN index of labelled embeddings (usearch, cosine), one vector per labelled photo."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
from usearch.index import Index

from photosorter.records import Neighbour

log = logging.getLogger(__name__)

# Below this many vectors search is exact (brute force is microseconds here), so an index rebuilt
# from the label table answers exactly like the saved one; above it HNSW's approximation pays off.
EXACT_BELOW = 50_000


def _checksum_path(path: Path) -> Path:
    """The sha256 of the saved index, beside it: a file garbled in the middle still loads in usearch."""
    return path.with_name(path.name + ".sha256")


class UsearchIndex:
    """Keys are photo ids; each key carries the category of its latest label."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._index = Index(ndim=dim, metric="cos", dtype="f32")
        self._categories: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._categories)

    @property
    def categories(self) -> dict[int, str]:
        return dict(self._categories)

    def upsert(self, key: int, vector: np.ndarray, category: str) -> None:
        if key in self._categories:
            self._index.remove(key)
        self._index.add(key, np.asarray(vector, dtype=np.float32).reshape(self.dim))
        self._categories[key] = category

    def remove(self, key: int) -> None:
        if self._categories.pop(key, None) is not None:
            self._index.remove(key)

    def search(self, vector: np.ndarray, k: int, *, exclude: int | None = None) -> list[Neighbour]:
        """The k nearest labelled photos (optionally leaving one key out) with cosine similarity."""
        if not self._categories:
            return []
        wanted = min(k + (1 if exclude is not None else 0), len(self._categories))
        matches = self._index.search(np.asarray(vector, dtype=np.float32).reshape(self.dim), wanted,
                                     exact=len(self._categories) < EXACT_BELOW)
        found = [
            Neighbour(self._categories[int(key)], 1.0 - float(distance), int(key))
            for key, distance in zip(matches.keys, matches.distances, strict=True)
            if int(key) != exclude and int(key) in self._categories
        ]
        return found[:k]

    def compact(self) -> None:
        """Rebuild the graph from the stored vectors, dropping what removals left behind."""
        keys = sorted(self._categories)
        fresh = Index(ndim=self.dim, metric="cos", dtype="f32")
        if keys:
            fresh.add(np.asarray(keys), np.asarray(self._index.get(np.asarray(keys)), dtype=np.float32))
        self._index = fresh

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the old index or the new one, never half of one."""
        tmp = path.with_name(path.name + ".tmp")
        self._index.save(str(tmp))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        checksum = _checksum_path(path)
        checksum.with_name(checksum.name + ".tmp").write_text(digest + "\n")
        os.replace(checksum.with_name(checksum.name + ".tmp"), checksum)  # a crash between: a rebuild, no harm
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, dim: int, categories: dict[int, str]) -> UsearchIndex | None:
        """Restore a saved index if it holds exactly ``categories``' keys; None means rebuild."""
        if not path.is_file():
            return None
        checksum = _checksum_path(path)
        if checksum.is_file():
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if checksum.read_text().strip() != digest:
                log.error("kNN index %s is damaged (its checksum does not match): rebuilding it from the %d labels "
                          "in the state database", path, len(categories))
                return None
        try:
            restored = Index.restore(str(path))
        except Exception as exc:  # usearch raises plain RuntimeError/ValueError on damaged files
            log.warning("kNN index %s unreadable, rebuilding from labels: %s", path, exc)
            return None
        if restored is None or restored.ndim != dim or set(np.asarray(restored.keys).tolist()) != set(categories):
            return None
        index = cls(dim)
        index._index = restored
        index._categories = dict(categories)
        return index

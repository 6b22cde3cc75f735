"""The kNN index of labelled embeddings (cosine), one vector per labelled photo.

The vectors live in one float32 matrix. Up to ``EXACT_MAX_FLOATS`` (about 4,000 CLIP or 1,600
MobileNet vectors) every search is exact: one matrix-vector product, faster than any graph at that
size (bench/run.py: 0.13 ms at 5k x 512 against 0.12 ms for the graph) and the same answer however the
index was built. Above it a usearch HNSW graph over int8 copies of the vectors proposes candidates
and the matrix rescores them exactly, so similarities are exact and memory grows by a quarter, not
double. The graph is built in one batch (all cores) when first needed, then kept up to date one
label at a time: 100k labels build in about half a minute here instead of one insert at a time.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photosorter.records import Neighbour

if TYPE_CHECKING:
    from usearch.index import Index

log = logging.getLogger(__name__)

EXACT_MAX_FLOATS = 2_000_000  # 8 MB of float32: brute force stays within a few hundred microseconds
CONNECTIVITY = 16  # usearch's default: links per node
# Candidates kept while inserting (usearch's default is 128): 64 builds twice as fast at recall@5 0.999
# on clustered 512-d embeddings (bench/run.py); 32 drops recall to 0.95.
EXPANSION_ADD = 64
EXPANSION_SEARCH = 128  # recall@5 0.96 -> 0.98 at 100k for 0.01 ms more per query
OVERSAMPLE = 4  # the graph proposes 4k candidates; the exact rescoring keeps the best k


def _checksum_path(path: Path) -> Path:
    """The sha256 of the saved index, beside it: a file garbled in the middle may still parse."""
    return path.with_name(path.name + ".sha256")


class UsearchIndex:
    """Keys are photo ids; each key carries the category of its latest label."""

    def __init__(self, dim: int, exact_max_floats: int = EXACT_MAX_FLOATS) -> None:
        self.dim = dim
        self._exact_max = max(1, exact_max_floats // dim)  # vectors searched exactly
        self._vectors = np.zeros((0, dim), dtype=np.float32)  # capacity grows by doubling
        self._keys: list[int] = []  # row -> key
        self._rows: dict[int, int] = {}  # key -> row
        self._categories: dict[int, str] = {}
        self._graph: Index | None = None

    def __len__(self) -> int:
        return len(self._categories)

    @property
    def categories(self) -> dict[int, str]:
        return dict(self._categories)

    @property
    def exact(self) -> bool:
        """Whether searches scan every vector (small indexes) rather than walk the graph."""
        return len(self._keys) <= self._exact_max

    def _unit(self, vector: np.ndarray) -> np.ndarray:
        flat = np.asarray(vector, dtype=np.float32).reshape(self.dim)
        return np.asarray(flat / max(float(np.linalg.norm(flat)), 1e-12), dtype=np.float32)

    def upsert(self, key: int, vector: np.ndarray, category: str) -> None:
        unit = self._unit(vector)
        row = self._rows.get(key)
        if row is None:
            row = len(self._keys)
            if row == len(self._vectors):
                grown = np.zeros((max(64, 2 * row), self.dim), dtype=np.float32)
                grown[:row] = self._vectors[:row]
                self._vectors = grown
            self._keys.append(key)
            self._rows[key] = row
        elif self._graph is not None:
            self._graph.remove(key)
        self._vectors[row] = unit
        self._categories[key] = category
        if self._graph is not None:
            self._graph.add(key, unit)

    def remove(self, key: int) -> None:
        if self._categories.pop(key, None) is None:
            return
        row, last = self._rows.pop(key), len(self._keys) - 1
        moved = self._keys.pop()  # the last row fills the hole
        if row != last:
            self._vectors[row] = self._vectors[last]
            self._keys[row] = moved
            self._rows[moved] = row
        if self._graph is not None:
            self._graph.remove(key)

    def search(self, vector: np.ndarray, k: int, *, exclude: int | None = None) -> list[Neighbour]:
        """The k nearest labelled photos (optionally leaving one key out) with cosine similarity."""
        count = len(self._keys)
        if not count:
            return []
        query = self._unit(vector)
        wanted = min(k + (1 if exclude is not None else 0), count)
        if self.exact:
            rows = None
            scores = self._vectors[:count] @ query
        else:
            found = self._built_graph().search(query, min(count, OVERSAMPLE * wanted))
            rows = np.fromiter((self._rows[int(key)] for key in found.keys if int(key) in self._rows), dtype=np.int64)
            scores = self._vectors[rows] @ query  # exact similarities for the graph's candidates
        top = np.argpartition(-scores, wanted - 1)[:wanted] if wanted < len(scores) else np.arange(len(scores))
        keys = [self._keys[int(row)] for row in (top if rows is None else rows[top])]
        neighbours = sorted(zip(keys, scores[top].tolist(), strict=True), key=lambda pair: (-pair[1], pair[0]))
        return [Neighbour(self._categories[key], score, key) for key, score in neighbours if key != exclude][:k]

    def _built_graph(self) -> Index:
        if self._graph is None:
            from usearch.index import Index  # imported only for a graph: 15 MB of resident memory otherwise
            count = len(self._keys)
            graph = Index(ndim=self.dim, metric="cos", dtype="i8", connectivity=CONNECTIVITY,
                          expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
            graph.add(np.asarray(self._keys, dtype=np.uint64), self._vectors[:count], threads=0)
            self._graph = graph
            log.debug("kNN graph built over %d labels", count)
        return self._graph

    def compact(self) -> None:
        """Drop what removals left behind: the matrix shrinks to fit, the graph is rebuilt when next needed."""
        self._vectors = np.array(self._vectors[:len(self._keys)], dtype=np.float32)
        self._graph = None

    # files ----------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the old index or the new one, never half of one. The graph
        is saved too once built, so a restart at 100k labels does not build it again."""
        arrays: dict[str, np.ndarray] = {"keys": np.asarray(self._keys, dtype=np.int64),
                                         "vectors": self._vectors[:len(self._keys)]}
        if self._graph is not None and not self.exact:
            arrays["graph"] = np.frombuffer(bytes(self._graph.save() or b""), dtype=np.uint8)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        with tmp.open("rb") as handle:
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
        data = path.read_bytes()
        checksum = _checksum_path(path)
        if checksum.is_file() and checksum.read_text().strip() != hashlib.sha256(data).hexdigest():
            log.error("kNN index %s is damaged (its checksum does not match): rebuilding it from the %d labels "
                      "in the state database", path, len(categories))
            return None
        if not data.startswith(b"PK"):
            log.info("kNN index %s is in an older format: rebuilding it from the labels", path)
            return None
        try:
            with np.load(io.BytesIO(data)) as saved:
                keys, vectors = saved["keys"], saved["vectors"]
                graph = saved["graph"] if "graph" in saved.files else None
        except (ValueError, KeyError, OSError, EOFError) as exc:
            log.warning("kNN index %s unreadable, rebuilding from labels: %s", path, exc)
            return None
        if vectors.ndim != 2 or vectors.shape[1] != dim or len(keys) != len(vectors) \
                or set(keys.tolist()) != set(categories):
            return None
        index = cls(dim)
        index._vectors = np.asarray(vectors, dtype=np.float32)
        index._keys = [int(key) for key in keys]
        index._rows = {key: row for row, key in enumerate(index._keys)}
        index._categories = {key: categories[key] for key in index._keys}
        if graph is not None:
            from usearch.index import Index

            try:
                index._graph = Index.restore(bytearray(graph.tobytes()))
            except Exception as exc:  # usearch raises plain RuntimeError/ValueError; the graph can be rebuilt
                log.warning("kNN graph in %s unreadable, rebuilding it: %s", path, exc)
        return index

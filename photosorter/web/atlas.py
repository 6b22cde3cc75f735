"""The map's points: every library photo's embedding in 2D (``core.projection``), made in the background
and kept until photos or labels change; a stale map is served while the new one is made."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Protocol

import numpy as np

from photosorter.core.projection import SAMPLE_ROWS, fit_axes, project, scale_unit_square
from photosorter.ml.lifetime import trim_heap

log = logging.getLogger(__name__)

CHUNK_ROWS = 250  # embeddings read at a time (1280-d: 1.3 MB as float32)


class EmbeddingSource(Protocol):
    def library_embeddings(self, model: str, chunk: int = 1000,
                           every: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]]: ...

    def count_embedded(self, model: str) -> int: ...


class Atlas:
    def __init__(self, source: EmbeddingSource, model: str, names: tuple[str, ...], pool: Executor) -> None:
        self.source = source
        self.model = model
        self.folders = (*names, "_unsure")
        self.pool = pool
        self._lock = threading.Lock()
        self._payload: bytes | None = None
        self._stamp: tuple[int, int] | None = None
        self._task: asyncio.Future[bytes] | None = None

    def warm(self, stamp: tuple[int, int]) -> None:
        """Start making the map now (the page just started), so the first visit finds it ready."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = asyncio.ensure_future(loop.run_in_executor(self.pool, self._build, stamp))

    async def payload(self, stamp: tuple[int, int]) -> bytes:
        """The map as JSON for ``stamp`` (a cheap fingerprint of photos and labels). When a map exists but is
        older, it is returned at once and a fresh one is made in the background."""
        if self._payload is not None and self._stamp == stamp:
            return self._payload
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            self._task = asyncio.ensure_future(loop.run_in_executor(self.pool, self._build, stamp))
        if self._payload is not None:
            return self._payload
        return await asyncio.shield(self._task)

    def _build(self, stamp: tuple[int, int]) -> bytes:
        """Make the map, then hand its working memory back (glibc kept ~13 MB after each remake otherwise).
        At 10,000 photos the arrays peak at 12.9 MB: the 2,000-row sample, read 250 rows at a time."""
        payload = self._make(stamp)
        trim_heap()
        return payload

    def _make(self, stamp: tuple[int, int]) -> bytes:
        started = time.monotonic()
        every = max(1, self.source.count_embedded(self.model) // SAMPLE_ROWS)  # two passes, memory stays flat
        sample = [vectors for _, vectors, _, _ in self.source.library_embeddings(self.model, CHUNK_ROWS, every)]
        ids, points, folders, labelled = [np.zeros(0, np.int64)], [np.zeros((0, 2), np.float32)], [], \
            [np.zeros(0, bool)]
        if sample:
            mean, axes = fit_axes(sample)  # in place, chunk by chunk: the sample is the peak
            del sample
            every_photo = self.source.library_embeddings(self.model, CHUNK_ROWS)
            for chunk_ids, vectors, chunk_folders, chunk_labelled in every_photo:
                ids.append(chunk_ids)
                points.append(project(vectors, mean, axes))
                folders += chunk_folders
                labelled.append(chunk_labelled)
        scaled = scale_unit_square(np.concatenate(points))
        index = {name: i for i, name in enumerate(self.folders)}
        payload = json.dumps({
            "folders": list(self.folders),
            "ids": np.concatenate(ids).tolist(),
            "x": np.round(scaled[:, 0].astype(float), 4).tolist(),
            "y": np.round(scaled[:, 1].astype(float), 4).tolist(),
            "folder": [index.get(f, len(self.folders) - 1) for f in folders],
            "labelled": np.concatenate(labelled).astype(int).tolist(),
        }, separators=(",", ":")).encode()
        with self._lock:
            self._payload, self._stamp = payload, stamp
        log.info("map of %d photos made in %.1f s", len(folders), time.monotonic() - started)
        return payload

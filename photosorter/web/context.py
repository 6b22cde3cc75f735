"""What the web page is given by the composition root: the parts it reads and the one way it changes things."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from photosorter.records import AuthState, Category, PhotoRecord, StatusSnapshot
from photosorter.web.desk import Desk

# Runs a piece of work on the sorter's thread (``Daemon.submit``, or a one-worker pool standalone).
Submit = Callable[[Callable[[], Any]], "Future[Any]"]


class Reader(Protocol):
    """The state file, read on the page's own connection (``adapters.state.SqliteState``)."""

    def photo(self, photo_id: int) -> PhotoRecord | None: ...

    def library_counts(self) -> dict[str, int]: ...

    def label_counts(self) -> dict[str, int]: ...

    def last_run(self) -> dict[str, object] | None: ...

    def saved_attention(self, now: dt.datetime, max_age_s: float = 86400.0) -> list[str]: ...


class Catalog(Protocol):
    """The page's own questions (``adapters.catalog.SqliteCatalog``)."""

    def review_queue(self, limit: int) -> tuple[list[PhotoRecord], int]: ...

    def folder_page(self, folder: str, offset: int, limit: int) -> tuple[list[PhotoRecord], int]: ...

    def latest_label(self, photo_id: int) -> tuple[int, str, str] | None: ...

    def library_embeddings(self, model: str, chunk: int = 1000,
                           every: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]]: ...

    def count_embedded(self, model: str) -> int: ...

    def recent_labels(self, limit: int) -> list[tuple[str, str | None]]: ...

    def stamp(self) -> tuple[int, int]: ...


class Thumbnails(Protocol):
    def get(self, sha256: str, source: Path, size_px: int) -> bytes | None: ...


@dataclass
class WebContext:
    categories: tuple[Category, ...]
    desk: Desk
    submit: Submit
    reader: Reader
    catalog: Catalog
    thumbnails: Thumbnails
    library: Path
    model_id: str
    runs_log: Path
    status: Callable[[], StatusSnapshot] | None = None  # the running daemon's view (runs through ``submit``)
    submit_code: Callable[[str], AuthState] | None = None  # the 2FA code path MQTT and the CLI use
    allowed_remotes: frozenset[str] | None = None  # None: anyone who reaches the port (standalone)
    map_source: Catalog | None = None  # a connection of the map's own (it is made on a worker thread)
    sorter_wait_s: float = 30.0  # how long a change waits for a busy sorter before it is called off

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

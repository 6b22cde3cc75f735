"""Models are loaded when work arrives and let go after ``model_idle_minutes`` without use.

A CLIP image tower, its text tower and the two face models hold a few hundred MB between them; a
Home Assistant box that sorts a handful of photos every 15 minutes should not carry that all day
(Immich's machine-learning service unloads its models the same way). One ``ModelLifetime`` per
process holds every session under a key; ``hold`` loads on first use, ``release_idle`` (called by
the daemon's loop) drops each session unused for the idle time, then hands the freed memory back to
the system (glibc keeps freed arenas otherwise). ``open_session`` says where sessions run: in this
process (onnxruntime's own), or in an ``InferenceWorker``'s child, which ends when its last session is
released, taking onnxruntime and everything it allocated with it (the daemon's choice).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar, cast

from photosorter.ml.runtime import SessionOpener, open_session, release_session

log = logging.getLogger(__name__)

T = TypeVar("T")
M_ARENA_MAX = -8  # glibc's malloc.h


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once (find_library runs ldconfig)."""
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        name = ctypes.util.find_library("c")
        try:
            return ctypes.CDLL(name) if name else None
        except OSError:
            return None


def trim_heap() -> None:
    """Give freed heap pages back to the system (glibc's malloc_trim; a no-op elsewhere, e.g. musl)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def limit_heap_arenas(count: int = 2) -> None:
    """At most ``count`` malloc arenas for this process's threads (glibc's mallopt M_ARENA_MAX; a no-op
    elsewhere). glibc gives each thread that allocates its own arena, up to eight per core; what a
    sort's decode threads free there stays behind as fragments that malloc_trim cannot hand back. Two
    cut what the idle daemon kept after a sort by about 5 MB (MobileNetV2 + faces: 9.5 -> 5.1 MB)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, count)


class ModelLifetime:
    """Sessions by key, each loaded on first use and released ``idle_s`` after its last use
    (``idle_s`` None: kept for the life of the process, as a one-shot command wants)."""

    def __init__(self, idle_s: float | None = None, clock: Callable[[], float] = time.monotonic,
                 opener: SessionOpener = open_session) -> None:
        self.open_session = opener
        self.idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, object] = {}
        self._used: dict[str, float] = {}

    def hold(self, key: str, load: Callable[[], T]) -> T:
        """The session under ``key``, loading it now if it is not held (the lock makes one load, not two)."""
        with self._lock:
            if key not in self._held:
                started = time.perf_counter()
                self._held[key] = load()
                log.debug("loaded %s in %.0f ms", key, (time.perf_counter() - started) * 1000)
            self._used[key] = self._clock()
            return cast(T, self._held[key])

    def put(self, key: str, session: object) -> None:
        """Hold a session loaded elsewhere (the int8/float32 measurement loads before it knows the winner)."""
        with self._lock:
            self._held[key] = session
            self._used[key] = self._clock()

    @property
    def held(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._held)

    def next_release_s(self) -> float | None:
        """Seconds until the next session becomes idle enough to release; None when nothing will be."""
        with self._lock:
            if self.idle_s is None or not self._used:
                return None
            return max(0.0, min(self._used.values()) + self.idle_s - self._clock())

    def release_idle(self) -> tuple[str, ...]:
        """Release each session unused for the idle time; returns their keys."""
        if self.idle_s is None:
            return ()
        with self._lock:
            now = self._clock()
            idle = tuple(key for key, used in self._used.items() if now - used >= self.idle_s)
            released = [self._held.pop(key) for key in idle]
            for key in idle:
                del self._used[key]
        _close(released)
        if idle:
            trim_heap()
            log.info("models idle for %.0f min, unloaded: %s", self.idle_s / 60, ", ".join(idle))
        return idle

    def release_all(self) -> None:
        with self._lock:
            released = list(self._held.values())
            self._held.clear()
            self._used.clear()
        _close(released)
        trim_heap()


def _close(sessions: list[object]) -> None:
    for session in sessions:
        release_session(session)

"""Progress of long work: a one-line bar on a terminal, a periodic log line otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: int, what: str = "photos", *, stream: TextIO | None = None,
                 interval_s: float = 10.0) -> None:
        self.total, self.what, self.done = total, what, 0
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._interval_s = interval_s if not self._tty else 0.2
        self._start = self._last = time.monotonic()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return f"{self.done}/{self.total} {self.what}, {rate:.1f}/s, ETA {_clock(eta)}"

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last < self._interval_s and self.done < self.total:
            return
        self._last = now
        if self._tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            self._stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.line()}  ")
            self._stream.flush()
        elif self.done < self.total:
            log.info("progress: %s", self.line())

    def close(self) -> None:
        if self._tty and self.total:
            self._stream.write("\n")
            self._stream.flush()

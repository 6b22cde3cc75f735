"""Progress of long work: a one-line bar on a terminal, a periodic log line otherwise.

While a bar is on the screen, log lines go through ``BarAwareHandler``: it clears the bar's line, writes
the log line, and draws the bar again below it, so the two never print over each other.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger(__name__)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


_shown: Progress | None = None  # the bar on the terminal now, if any


class BarAwareHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that moves a progress bar on the same terminal out of a log line's way."""

    def emit(self, record: logging.LogRecord) -> None:
        bar = _shown
        if bar is None or bar.stream is not self.stream:
            super().emit(record)
            return
        self.stream.write("\r\033[K")  # clear the bar's line
        super().emit(record)
        bar.draw()


class Progress:
    def __init__(self, total: int, what: str = "photos", *, stream: TextIO | None = None,
                 interval_s: float = 10.0) -> None:
        self.total, self.what, self.done = total, what, 0
        self.stream = stream if stream is not None else sys.stderr
        self._tty = self.stream.isatty()
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
            self.draw()
        elif self.done < self.total:
            log.info("progress: %s", self.line())

    def draw(self) -> None:
        """Draw the bar on the terminal's current line."""
        global _shown
        _shown = self
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.line()}  ")
        self.stream.flush()

    def close(self) -> None:
        global _shown
        if _shown is self:
            _shown = None
        if self._tty and self.total:
            self.stream.write("\n")
            self.stream.flush()

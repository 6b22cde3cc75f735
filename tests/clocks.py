"""A ``Clock`` for the daemon whose time only moves when a test says so."""

from __future__ import annotations

import datetime as dt


class FakeClock:
    def __init__(self, wall: dt.datetime = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC)) -> None:
        self.seconds = 1000.0
        self.wall = wall

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> dt.datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.wall += dt.timedelta(seconds=seconds)

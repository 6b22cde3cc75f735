"""When each part of the daemon runs next: intervals, backoff after failures, a daily local time. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

MAX_BACKOFF_S = 3600.0


@dataclass(frozen=True)
class Timer:
    """A part that runs every ``interval_s``; after failures it waits ``interval_s * 2**failures``
    (at most ``MAX_BACKOFF_S``, never less than ``interval_s``) before trying again."""

    name: str
    interval_s: float
    next_at: float = 0.0  # monotonic-style seconds; 0 means "run at once"
    failures: int = 0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def succeeded(self, now: float) -> Timer:
        return replace(self, next_at=now + self.interval_s, failures=0)

    def failed(self, now: float) -> Timer:
        failures = self.failures + 1
        return replace(self, next_at=now + backoff_s(self.interval_s, failures), failures=failures)

    def run_now(self, now: float) -> Timer:
        return replace(self, next_at=now)


def backoff_s(base_s: float, failures: int, cap_s: float = MAX_BACKOFF_S) -> float:
    """Exponential backoff: base, 2·base, 4·base … capped (but never below the base interval)."""
    return float(max(base_s, min(cap_s, base_s * 2.0 ** min(failures, 30))))


def parse_clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def next_daily(after: dt.datetime, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The first moment strictly after ``after`` when the local wall clock in ``zone`` shows ``at``.

    On a spring-forward day a time inside the gap (02:30 when clocks jump 02:00 -> 03:00) happens an
    hour later by the new clock (03:30); on a fall-back day an ambiguous time happens once (its first
    occurrence). Returned in UTC.
    """
    local = after.astimezone(zone)
    day = local.date()
    for offset in range(0, 3):
        candidate = _resolve(dt.datetime.combine(day + dt.timedelta(days=offset), at), zone)
        if candidate > after:
            return candidate.astimezone(dt.UTC)
    raise AssertionError("unreachable: a daily time always recurs within two days")


def _resolve(naive: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A wall-clock time in ``zone`` as a real instant (PEP 495, fold=0): a time inside a spring-forward
    gap is read with the offset before the jump (02:30 -> 03:30 summer time); an ambiguous autumn time
    is its first occurrence."""
    return naive.replace(tzinfo=zone, fold=0)


def local_day_start(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Midnight (local) of the day ``now`` falls in, as an aware datetime."""
    local = now.astimezone(zone)
    return _resolve(dt.datetime.combine(local.date(), dt.time(0, 0)), zone)

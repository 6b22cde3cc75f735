"""Daily times across daylight-saving changes, and backoff arithmetic. Pure."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from photosorter.core.schedule import backoff_s, next_daily

BERLIN = ZoneInfo("Europe/Berlin")


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


def test_digest_at_20_00_stays_at_20_00_local_across_spring_forward() -> None:
    first = next_daily(local(2026, 3, 28, 12, 0), dt.time(20, 0), BERLIN)
    second = next_daily(first, dt.time(20, 0), BERLIN)
    assert first.astimezone(BERLIN).hour == second.astimezone(BERLIN).hour == 20
    assert second - first == dt.timedelta(hours=23)


def test_digest_at_20_00_stays_at_20_00_local_across_fall_back() -> None:
    first = next_daily(local(2026, 10, 24, 12, 0), dt.time(20, 0), BERLIN)
    second = next_daily(first, dt.time(20, 0), BERLIN)
    assert second.astimezone(BERLIN).hour == 20 and second - first == dt.timedelta(hours=25)


def test_a_time_in_the_spring_gap_happens_once_an_hour_later() -> None:
    when = next_daily(local(2026, 3, 28, 12, 0), dt.time(2, 30), BERLIN)
    assert when.astimezone(BERLIN) == local(2026, 3, 29, 3, 30)


def test_an_ambiguous_autumn_time_happens_once() -> None:
    first = next_daily(local(2026, 10, 24, 12, 0), dt.time(2, 30), BERLIN)
    second = next_daily(first, dt.time(2, 30), BERLIN)
    assert second.date() - first.date() == dt.timedelta(days=1)


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
       st.times())
def test_next_daily_is_always_within_26_hours_and_after_now(now: dt.datetime, at: dt.time) -> None:
    when = next_daily(now, at.replace(tzinfo=None, fold=0), BERLIN)
    assert now < when <= now + dt.timedelta(hours=26)


def test_backoff_doubles_then_caps() -> None:
    assert [backoff_s(60, n) for n in range(1, 8)] == [120, 240, 480, 960, 1920, 3600, 3600]

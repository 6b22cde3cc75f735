"""The daemon's schedule with an injected clock: polls, backoff after failures, independence of parts."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from photosorter.adapters.state import SqliteState
from photosorter.cli import main
from photosorter.cli.build import build_sorter, open_state
from photosorter.config import Settings, load_settings
from photosorter.core.drift import DriftReport
from photosorter.daemon import Daemon
from photosorter.errors import PhotosorterError, SinkError, SourceUnavailableError
from photosorter.records import AuthState, CorrectionEvent, PhotoEvent, StatusSnapshot, SyncProgress
from tests.clocks import FakeClock
from tests.conftest import jpeg_bytes

BERLIN = ZoneInfo("Europe/Berlin")


class FakeSource:
    """An in-memory PhotoSource: each fetch delivers the photos queued for it, or fails as told."""

    def __init__(self) -> None:
        self.fetches = 0
        self.queue: list[bytes] = []
        self.fail_with: Exception | None = None
        self.fail_after_one = False  # deliver one photo, then fail (iCloud going away mid-sync)
        self.skipped: list[str] = []  # the source's own problems (skipped records, stuck downloads)
        self.auth = AuthState(ok=True)
        self.codes: list[str] = []
        self.chunk: int | None = None  # deliver at most this many per fetch, like a big first sync
        self.on_photo: Callable[[int], None] = lambda done: None

    def auth_state(self) -> AuthState:
        return self.auth

    def submit_code(self, code: str) -> AuthState:
        self.codes.append(code)
        if code == "123456":
            self.auth = AuthState(ok=True)
            return self.auth
        return AuthState(ok=False, message="wrong code, try again", method="trusted device")

    def fetch_new(self, inbox: Path, on_progress: Callable[[SyncProgress], None] | None = None,
                  stop: Callable[[], bool] | None = None) -> int:
        self.fetches += 1
        if self.fail_with is not None and not self.fail_after_one:
            raise self.fail_with
        done = 0
        while self.queue and (self.chunk is None or done < self.chunk) and not (stop and stop()):
            (inbox / f"icloud_{self.fetches}_{done}.jpg").write_bytes(self.queue.pop(0))
            done += 1
            if self.fail_with is not None:
                raise self.fail_with
            self.on_photo(done)
            if on_progress:
                on_progress(SyncProgress(done, None))
        return done

    def more_pending(self) -> bool:
        return bool(self.queue)

    def problems(self) -> list[str]:
        return list(self.skipped)


class FakeMail:
    def __init__(self) -> None:
        self.polls = 0
        self.digest_checks: list[dt.datetime] = []
        self.fail = False

    def send_digest_if_due(self, now: dt.datetime) -> bool:
        self.digest_checks.append(now)
        return False

    def poll_replies(self) -> int:
        self.polls += 1
        if self.fail:
            raise SinkError("IMAP server unreachable")
        return 0


class RecordingPublisher:
    def __init__(self) -> None:
        self.statuses: list[StatusSnapshot] = []
        self.events: list[PhotoEvent] = []
        self.corrections: list[CorrectionEvent] = []

    def publish_status(self, status: StatusSnapshot) -> None:
        self.statuses.append(status)

    def publish_event(self, event: PhotoEvent) -> None:
        self.events.append(event)

    def publish_correction(self, event: CorrectionEvent) -> None:
        self.corrections.append(event)

    def close(self) -> None:
        pass


@pytest.fixture
def settings(tmp_path: Path, tiny_model: Path) -> Settings:
    return load_settings({"library": str(tmp_path / "lib"), "data": str(tmp_path / "data"), "model": str(tiny_model),
                          "inbox": str(tmp_path / "inbox"), "icloud_poll_minutes": 10, "inbox_poll_minutes": 5,
                          "settle_seconds": 0},
                         environ={}, dotenv_path=tmp_path / "none")


def make_daemon(settings: Settings, clock: FakeClock, source: FakeSource | None = None,
                mail: FakeMail | None = None) -> tuple[Daemon, SqliteState, RecordingPublisher]:
    (settings.library.data).mkdir(parents=True, exist_ok=True)
    Path(settings.library.inbox).mkdir(parents=True, exist_ok=True)
    state = open_state(settings)
    sorter = build_sorter(settings, state)
    publisher = RecordingPublisher()
    daemon = Daemon(settings=settings, sorter=sorter, state=state, clock=clock, zone=BERLIN, source=source,
                    publisher=publisher, mail=mail)
    return daemon, state, publisher


def test_icloud_is_polled_on_its_interval_and_new_photos_are_sorted(settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.queue = [jpeg_bytes((220, 20, 20), noise_seed=1)]
    daemon, state, publisher = make_daemon(settings, clock, source)
    daemon.run_due_parts()
    assert source.fetches == 1 and [e.category for e in publisher.events] == ["food"]
    clock.advance(599)
    daemon.run_due_parts()
    assert source.fetches == 1
    clock.advance(1)
    daemon.run_due_parts()
    assert source.fetches == 2
    state.close()


def test_a_big_first_sync_is_fetched_and_sorted_chunk_by_chunk_without_waiting_for_the_poll(
        settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.queue = [jpeg_bytes((220, 20, 20), noise_seed=i) for i in range(5)]
    source.chunk = 2
    daemon, state, publisher = make_daemon(settings, clock, source)
    inbox_sizes = []
    for _ in range(3):
        daemon.run_due_parts()  # the daemon's loop; no time passes
        inbox_sizes.append(len(list(daemon.incoming.iterdir())))
    assert source.fetches == 3 and len(publisher.events) == 5
    assert inbox_sizes == [0, 0, 0]  # each chunk was sorted before the next was fetched
    daemon.run_due_parts()
    assert source.fetches == 3  # done: back to the poll interval
    state.close()


def test_photos_that_arrived_before_icloud_failed_are_sorted_at_once(settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.queue = [jpeg_bytes((220, 20, 20), noise_seed=i) for i in range(3)]
    source.fail_with, source.fail_after_one = SourceUnavailableError("iCloud answered HTTP 503"), True
    daemon, state, publisher = make_daemon(settings, clock, source)
    daemon.run_due_parts()
    assert len(publisher.events) == 1 and not list(daemon.incoming.iterdir())  # was: waiting unsorted
    assert "icloud: iCloud answered HTTP 503" in daemon.status().problems
    state.close()


def test_photos_the_source_skipped_are_problems_on_mqtt_and_in_the_digest(settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.skipped = ["iCloud photo ABC-123 could not be read (its CPLMaster record is malformed); skipped"]
    daemon, state, publisher = make_daemon(settings, clock, source)
    daemon.run_due_parts()
    assert publisher.statuses[-1].problems == tuple(source.skipped)
    assert daemon.attention() == source.skipped
    state.close()


def test_a_correction_by_email_is_published_as_an_event(settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.queue = [jpeg_bytes((220, 20, 20), noise_seed=1)]
    daemon, state, publisher = make_daemon(settings, clock, source)
    daemon.run_due_parts()
    photo = publisher.events[0].photo_id
    daemon.sorter.label_photo(photo, "beer", source="email", detail="<reply@example.com>")  # as MailFlow does
    assert publisher.corrections == [CorrectionEvent(photo, "food", "beer", "email", "<reply@example.com>")]
    state.close()


def test_the_drift_found_by_the_daily_check_is_in_the_status(settings: Settings) -> None:
    daemon, state, _ = make_daemon(settings, FakeClock())
    assert daemon.status().drift == ""
    daemon.drift = DriftReport(drifting=True, reasons=("unsure share 0.40 vs 0.10",), days=(),
                               message="your photos look different lately: please label a few")
    assert daemon.status().drift == "your photos look different lately: please label a few"
    state.close()


def test_sigterm_during_a_first_sync_stops_between_photos(settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.queue = [jpeg_bytes((220, 20, 20), noise_seed=i) for i in range(5)]
    daemon, state, _ = make_daemon(settings, clock, source)
    source.on_photo = lambda done: daemon.stop() if done == 2 else None
    daemon.run_due_parts()
    assert len(list(daemon.incoming.iterdir())) == 2 and source.queue  # the rest waits in iCloud
    state.close()


def test_failures_back_off_exponentially_and_success_resets(settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.fail_with = SourceUnavailableError("iCloud answered 503")
    daemon, state, _ = make_daemon(settings, clock, source)
    attempts = []
    for _ in range(24 * 60):  # one simulated day, minute by minute
        before = source.fetches
        daemon.run_due_parts()
        if source.fetches > before:
            attempts.append(clock.seconds)
        clock.advance(60)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[:3] == [1200, 2400, 3600] and set(gaps[3:]) == {3600}  # 2x, 4x the 10-minute poll, capped at 1 h
    assert "icloud: iCloud answered 503" in daemon.status().problems
    source.fail_with = None
    clock.advance(3600)
    daemon.run_due_parts()
    assert daemon.status().problems == () and daemon.parts["icloud"].timer.failures == 0
    state.close()


def test_a_failing_part_does_not_stop_the_others(settings: Settings) -> None:
    clock, mail = FakeClock(), FakeMail()
    mail.fail = True
    daemon, state, publisher = make_daemon(settings, clock, mail=mail)
    (Path(settings.library.inbox) / "a.jpg").write_bytes(jpeg_bytes((20, 220, 20)))
    daemon.run_due_parts()
    assert mail.polls == 1 and [e.category for e in publisher.events] == ["scenery"]
    assert any(p.startswith("replies: IMAP server unreachable") for p in daemon.status().problems)
    state.close()


def test_login_needed_pauses_icloud_until_a_code_arrives(settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.auth = AuthState(ok=False, message="enter the code sent to your iPhone", method="trusted device")
    daemon, state, _ = make_daemon(settings, clock, source)
    daemon.run_due_parts()
    assert source.fetches == 0 and daemon.status().auth.message == "enter the code sent to your iPhone"
    assert daemon.submit_icloud_code("000000").ok is False
    assert daemon.submit_icloud_code("123456").ok is True
    daemon.run_due_parts()  # the accepted code asked for a sync at once
    assert source.fetches == 1 and daemon.status().auth.ok
    state.close()


def first_poll(settings: Settings, auth: AuthState, caplog: pytest.LogCaptureFixture,
               ) -> tuple[Daemon, SqliteState, FakeSource, FakeClock, list[str]]:
    """A daemon whose iCloud source is in ``auth``, after its first round; and what the daemon logged."""
    clock, source = FakeClock(), FakeSource()
    source.auth = auth
    daemon, state, _ = make_daemon(settings, clock, source)
    caplog.set_level(logging.INFO, "photosorter.daemon")
    daemon.run_due_parts()
    return daemon, state, source, clock, [r.getMessage() for r in caplog.records if r.name == "photosorter.daemon"]


def test_a_pending_code_is_logged_as_awaited_not_as_retried(settings: Settings,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    auth = AuthState(ok=False, message="enter the code sent to your iPhone", method="trusted device")
    _, state, _, _, logged = first_poll(settings, auth, caplog)
    said = [line for line in logged if "enter the code" in line]
    assert said == ["icloud: waiting for the 2FA code (nothing is sent to Apple meanwhile): enter the code sent "
                    "to your iPhone"]
    state.close()


def test_an_icloud_out_of_reach_is_retried_as_an_outage_not_shown_as_a_login(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    auth = AuthState(ok=False, message="iCloud could not be reached (timeout)", reachable=False)
    daemon, state, source, clock, logged = first_poll(settings, auth, caplog)
    status = daemon.status()
    assert source.fetches == 0 and not status.auth.login_needed
    assert not any("login needed" in line for line in daemon.attention(status))
    assert any(p.startswith("icloud: iCloud could not be reached") for p in status.problems)
    said = [line for line in logged if "could not be reached" in line]
    assert len(said) == 1 and said[0].startswith("icloud failed: ") and "retrying in" in said[0]
    source.auth = AuthState(ok=True)  # back: the next due sync runs
    clock.advance(3600)
    daemon.run_due_parts()
    assert source.fetches == 1 and daemon.status().problems == ()
    state.close()


def test_a_blocked_account_is_logged_as_waiting_for_the_person_not_as_retried(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    auth = AuthState(ok=False, message="This Apple ID signs in with a security key only.", method="security key",
                     blocked=True)
    daemon, state, _, _, logged = first_poll(settings, auth, caplog)
    said = [line for line in logged if "security key only" in line]
    assert said == ["icloud: waiting for you (nothing is sent to Apple meanwhile): This Apple ID signs in with a "
                    "security key only."]
    assert daemon.status().auth.login_needed
    state.close()


def test_paused_sorting_leaves_photos_in_the_inbox(settings: Settings) -> None:
    clock = FakeClock()
    daemon, state, _ = make_daemon(settings, clock)
    daemon.set_paused(True)
    (Path(settings.library.inbox) / "a.jpg").write_bytes(jpeg_bytes((20, 220, 20)))
    daemon.run_due_parts()
    assert (Path(settings.library.inbox) / "a.jpg").exists() and daemon.status().paused
    daemon.set_paused(False)
    daemon.run_due_parts()
    assert not (Path(settings.library.inbox) / "a.jpg").exists()
    state.close()


def test_digest_check_gets_the_current_time(settings: Settings) -> None:
    clock, mail = FakeClock(), FakeMail()
    daemon, state, _ = make_daemon(settings, clock, mail=mail)
    daemon.run_due_parts()
    clock.advance(60)
    daemon.run_due_parts()
    assert mail.digest_checks == [clock.wall - dt.timedelta(seconds=60), clock.wall]
    state.close()


def test_a_digest_sent_by_hand_lists_what_the_running_daemon_sees(settings: Settings, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    clock, source = FakeClock(), FakeSource()
    clock.wall = dt.datetime.now(dt.UTC)
    source.auth = AuthState(ok=False, message="enter the code sent to your iPhone", method="trusted device")
    daemon, state, _ = make_daemon(settings, clock, source)
    daemon.run_due_parts()
    state.close()
    monkeypatch.setenv("PHOTOSORTER_MAIL_TO", "me@example.com")
    out = tmp_path / "eml"
    assert main(["digest", "--dry-run", "--out", str(out), "--library", str(settings.library.path),
                 "--data", str(settings.library.data), "--model", str(settings.model.name)]) == 0
    [eml] = out.glob("*.eml")
    text = eml.read_text(errors="replace")
    assert "iCloud login needed: enter the code sent to your iPhone" in text


def test_new_mail_reads_replies_at_once_instead_of_at_the_next_poll(settings: Settings) -> None:
    clock, mail = FakeClock(), FakeMail()
    daemon, state, _ = make_daemon(settings, clock, mail=mail)
    for _ in range(2):
        daemon.run_due_parts()
    assert mail.polls == 1  # the next poll is minutes away
    daemon.request_replies()  # what the IMAP IDLE watcher calls
    daemon.run_due_parts()
    assert mail.polls == 2
    state.close()


def test_daily_upkeep_runs_once_a_day_at_night(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()  # 2026-03-28 13:00 in Berlin; upkeep is due at 04:15 local
    daemon, state, _ = make_daemon(settings, clock)
    with caplog.at_level("INFO", logger="photosorter.daemon"):
        for _ in range(2 * 24 * 60):  # two simulated days, minute by minute
            daemon.run_due_parts()
            clock.advance(60)
    upkeep = [r for r in caplog.records if r.getMessage().startswith("daily upkeep")]
    assert len(upkeep) == 2
    state.close()


def test_a_change_from_the_web_page_runs_on_the_daemons_thread_between_two_photos(settings: Settings) -> None:
    clock, source = FakeClock(), FakeSource()
    source.queue = [jpeg_bytes((220, 20, 20), noise_seed=i) for i in range(4)]
    daemon, state, _ = make_daemon(settings, clock, source)
    asked: list[Future[tuple[int, int]]] = []
    fetched: list[int] = []

    def during_sync(done: int) -> None:
        fetched.append(done)
        if done == 1:  # the page asks while the sync is under way
            asked.append(daemon.submit(lambda: (threading.get_ident(), len(fetched))))

    source.on_photo = during_sync
    daemon.run_due_parts()
    thread, photos_fetched_then = asked[0].result(timeout=0)
    assert thread == threading.get_ident() and photos_fetched_then == 1  # at the next photo, not after all 4
    daemon.stop()
    with pytest.raises(PhotosorterError, match="stopping"):
        daemon.submit(lambda: None).result(timeout=0)
    state.close()

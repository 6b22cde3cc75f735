"""``photosorter run``: one process that syncs, sorts, publishes, reads replies and mails the digest.

Each part is optional and independent. A part that fails is logged once per failure streak, shown as
a problem in the status, and retried with exponential backoff; the others keep their own schedule.
The loop sleeps until the next part is due or a person asks for something (Sync now, a 2FA code,
the pause switch, SIGTERM), and touches a heartbeat file that the container's HEALTHCHECK reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from photosorter.config import HEARTBEAT_FILE, Settings
from photosorter.core.drift import DriftReport
from photosorter.core.schedule import Timer, local_day_start, next_daily
from photosorter.errors import AuthRequiredError, PhotosorterError, SourceUnavailableError
from photosorter.ml.lifetime import ModelLifetime
from photosorter.pipeline import Sorter
from photosorter.ports import Clock, MailWork, PhotoSource, Publisher, StateStore
from photosorter.records import AuthState, CorrectionEvent, PhotoEvent, RunReport, StatusSnapshot, SyncProgress

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SLEEP_S = 30.0
REPLY_POLL_S = 300.0
DIGEST_CHECK_S = 60.0
MAINTENANCE_AT = dt.time(4, 15)
PREVIEW_MAX_AGE_S = 7 * 86400.0  # previews of photos that never reached the library (deleted from the inbox)


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class Part:
    timer: Timer
    work: Callable[[], bool | None]  # True: more is waiting, run again at once
    problem: str = ""


class Daemon:
    """Owns the schedule; implements ``Controls`` for MQTT and the CLI."""

    def __init__(self, *, settings: Settings, sorter: Sorter, state: StateStore, clock: Clock, zone: ZoneInfo,
                 source: PhotoSource | None = None, publisher: Publisher | None = None,
                 mail: MailWork | None = None, incoming: Path | None = None,
                 drift_check: Callable[[], DriftReport] | None = None, models: ModelLifetime | None = None,
                 work_lock: Callable[[], AbstractContextManager[bool]] | None = None) -> None:
        self.settings = settings
        # Held while the daemon works (not while it sleeps), so `photosorter sort` run by hand takes turns
        # with it; yields False when another process holds it (the work waits for the next wake).
        self.work_lock = work_lock or (lambda: contextlib.nullcontext(True))
        self.sorter = sorter
        self.state = state
        self.clock = clock
        self.zone = zone
        self.source = source
        self.publisher = publisher
        self.mail = mail
        self.incoming = incoming or settings.library.data / "incoming"
        sorter.on_sorted = self.on_sorted
        sorter.on_corrected = self.on_corrected
        self.drift_check = drift_check
        self.models = models  # loaded when work arrives, unloaded here after model_idle_minutes
        self.drift: DriftReport | None = None  # the latest daily drift check, for MQTT and the digest
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._paused = False
        self._auth = AuthState(ok=True)
        self._sync: SyncProgress | None = None
        self._last_sync: dt.datetime | None = None
        self._last_status: StatusSnapshot | None = None
        self._attention_saved: list[str] | None = None
        self._next_maintenance = next_daily(clock.now(), MAINTENANCE_AT, zone)
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self.parts: dict[str, Part] = {}
        if source is not None:
            self.parts["icloud"] = Part(Timer("icloud", settings.icloud.poll_minutes * 60.0), self._sync_icloud)
        if settings.library.inbox:
            self.parts["inbox"] = Part(Timer("inbox", settings.library.inbox_poll_minutes * 60.0), self._sort_inbox)
        if mail is not None:
            self.parts["replies"] = Part(Timer("replies", REPLY_POLL_S), self._poll_replies)
            self.parts["digest"] = Part(Timer("digest", DIGEST_CHECK_S), self._send_digest)
        self.parts["maintenance"] = Part(Timer("maintenance", DIGEST_CHECK_S), self._maintain)

    # Controls ---------------------------------------------------------------------------------------
    def request_sync(self) -> None:
        log.info("sync requested")
        now = self.clock.monotonic()
        for name in ("icloud", "inbox"):
            if name in self.parts:
                self.parts[name].timer = self.parts[name].timer.run_now(now)
        self._wake.set()

    def request_replies(self) -> None:
        """New mail may have arrived (IMAP IDLE said so): read the replies now, not at the next poll."""
        if "replies" in self.parts:
            self.parts["replies"].timer = self.parts["replies"].timer.run_now(self.clock.monotonic())
            self._wake.set()

    def submit_icloud_code(self, code: str) -> AuthState:
        if self.source is None:
            return AuthState(ok=False, message="iCloud is not configured")
        self._auth = self.source.submit_code(code)
        if self._auth.ok:
            log.info("iCloud login completed")
            self.request_sync()
        self._wake.set()
        return self._auth

    def set_paused(self, paused: bool) -> None:
        if paused != self._paused:
            log.info("sorting %s", "paused" if paused else "resumed")
        self._paused = paused
        if not paused:
            self.request_sync()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Run ``work`` on the daemon's thread, at once when idle, else between two photos of a sort or
        sync: a label from the web page uses the sorter's state connection and kNN index, which only
        this thread touches."""
        future: Future[T] = Future()
        if self._stop.is_set():
            future.set_exception(PhotosorterError("photosorter is stopping; try again when it is back"))
            return future
        self._requests.put((work, future))
        self._wake.set()
        return future

    def _run_requests(self) -> None:
        while True:
            try:
                work, future = self._requests.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except Exception as exc:  # handed to whoever asked (the web page answers with it)
                future.set_exception(exc)

    def _between_photos(self) -> bool:
        """The stop check of a sort or sync: also the moment to run what the web page asked for."""
        self._run_requests()
        return self._stop.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # the loop ---------------------------------------------------------------------------------------
    def run(self) -> int:
        log.info("photosorter running: %s", ", ".join(self.parts))
        with self.work_lock() as free:
            if free:
                self.sorter.recover()
        if self.source is not None:
            self._auth = self.source.auth_state()
            if self._auth.login_needed:
                log.warning("iCloud login needed: %s", self._auth.message)
            elif not self._auth.ok:
                log.warning("%s; trying again at the next sync", self._auth.message)
        self._publish_status()
        while not self._stop.is_set():
            self.run_due_parts()
            self._heartbeat()
            now = self.clock.monotonic()
            wait = min((p.timer.next_at for p in self.parts.values()), default=now + MAX_SLEEP_S) - now
            release_s = self.models.next_release_s() if self.models is not None else None
            wait = min(wait, release_s) if release_s is not None else wait
            self._wake.wait(max(0.05, min(MAX_SLEEP_S, wait)))
            self._wake.clear()
        self._run_requests()
        log.info("stopping")
        return 0

    def run_due_parts(self) -> None:
        """Run every part whose time has come, then share the status (MQTT, and the state file for the
        digest command)."""
        with self.work_lock() as free:
            if free:
                self._run_requests()
                self._run_parts()
                self._run_requests()
        status = self.status()  # one look at the state for both
        self._publish_status(status)
        self._remember_attention(status)
        if self.models is not None:
            self.models.release_idle()

    def _run_parts(self) -> None:
        for name, part in self.parts.items():
            if self._stop.is_set():
                return
            now = self.clock.monotonic()
            if not part.timer.due(now):
                continue
            try:
                again = part.work()
            except AuthRequiredError as exc:
                if self._auth.ok:  # a session that ended mid-sync; else keep the source's own state (method, blocked)
                    self._auth = AuthState(ok=False, message=exc.message)
                part.timer = part.timer.failed(now)
                self._report(name, part, exc.message, waiting_for=self._waiting_for())
            except PhotosorterError as exc:
                part.timer = part.timer.failed(now)
                self._report(name, part, exc.message)
            except Exception as exc:  # a bug must not stop the other parts; log it in full once
                part.timer = part.timer.failed(now)
                if not part.problem:
                    log.exception("%s failed unexpectedly", name)
                self._report(name, part, f"unexpected error: {exc.__class__.__name__}")
            else:
                if part.problem:
                    log.info("%s works again", name)
                part.problem = ""
                part.timer = part.timer.succeeded(self.clock.monotonic())
                if again:
                    part.timer = part.timer.run_now(self.clock.monotonic())

    def _waiting_for(self) -> str:
        """What the iCloud part waits for, if a person must act first (nothing is tried with Apple meanwhile)."""
        if self._auth.awaiting_code:
            return "the 2FA code"
        return "you" if self._auth.waits_for_person else ""

    def _report(self, name: str, part: Part, message: str, *, waiting_for: str = "") -> None:
        retry_s = part.timer.next_at - self.clock.monotonic()
        if message != part.problem and waiting_for:  # nothing is retried with Apple until the person acts
            log.warning("%s: waiting for %s (nothing is sent to Apple meanwhile): %s", name, waiting_for, message)
        elif message != part.problem:
            log.warning("%s failed: %s (retrying in %.0f s)", name, message, retry_s)
        part.problem = message

    # parts ------------------------------------------------------------------------------------------
    def _sync_icloud(self) -> bool:
        """Fetch what is new and sort it; True while a first sync has more chunks to fetch."""
        assert self.source is not None
        self._auth = self.source.auth_state()
        if not self._auth.reachable:  # an outage: retried like one, not shown as a login to do
            raise SourceUnavailableError(self._auth.message)
        if not self._auth.ok:
            raise AuthRequiredError(self._auth.message or "iCloud login needed")
        self.incoming.mkdir(parents=True, exist_ok=True)
        try:
            fetched = self.source.fetch_new(self.incoming, self._on_sync_progress, self._between_photos)
        except PhotosorterError:
            if not self._paused:  # what arrived before the failure is sorted now, not after the next success
                self._sort(self.incoming)
            raise
        more = self.source.more_pending()
        if not more:
            self._sync = None
        self._last_sync = self.clock.now()
        if fetched:
            log.info("iCloud: %d new photos", fetched)
        if not self._paused:
            self._sort(self.incoming)
        return more and not self._paused

    def _on_sync_progress(self, progress: SyncProgress) -> None:
        self._sync = progress
        self._publish_status()

    def _sort_inbox(self) -> None:
        if not self._paused:
            self._sort(Path(self.settings.library.inbox))
            self._last_sync = self._last_sync or self.clock.now()

    def _sort(self, folder: Path) -> RunReport:
        report = self.sorter.sort_folder(folder, stop=self._between_photos)
        if report.handled:
            log.info("sorted %d photos from %s: %s; unsure %d, duplicates %d, failed %d", report.handled, folder,
                     ", ".join(f"{k} {v}" for k, v in sorted(report.placed.items())) or "none placed",
                     report.unsure, report.duplicates, len(report.failed))
        return report

    def _poll_replies(self) -> None:
        assert self.mail is not None
        self.mail.poll_replies()

    def _send_digest(self) -> None:
        assert self.mail is not None
        self.mail.send_digest_if_due(self.clock.now())

    def _maintain(self) -> None:
        if self.clock.now() < self._next_maintenance:
            return
        log.info("daily upkeep: compacting the state database and the kNN index")
        self.state.compact()
        self.sorter.index.compact()
        self.sorter.index.save(self.sorter.index_path)
        if self.sorter.previews is not None:
            self.sorter.previews.prune(PREVIEW_MAX_AGE_S)
        self._next_maintenance = next_daily(self.clock.now(), MAINTENANCE_AT, self.zone)
        if self.drift_check is not None:
            self.drift = self.drift_check()

    # status -----------------------------------------------------------------------------------------
    def on_sorted(self, event: PhotoEvent) -> None:
        if self.publisher is not None:
            self.publisher.publish_event(event)

    def on_corrected(self, event: CorrectionEvent) -> None:
        """A person's correction (an email reply) was applied: an event for automations."""
        if self.publisher is not None:
            self.publisher.publish_correction(event)

    def status(self) -> StatusSnapshot:
        counts = self.state.library_counts()
        today = local_day_start(self.clock.now(), self.zone).timestamp()
        problems = tuple(f"{name}: {p.problem}" for name, p in self.parts.items() if p.problem)
        if self.source is not None:
            problems += tuple(self.source.problems())
        return StatusSnapshot(
            library_counts={name: counts.get(name, 0) for name in self.settings.classify.names},
            sorted_today=self.state.sorted_since(today), unsure=counts.get("_unsure", 0),
            failed=counts.get("_failed", 0), last_sync=self._last_sync, sync=self._sync, auth=self._auth,
            paused=self._paused, problems=problems, drift=self._drift_message())

    def _drift_message(self) -> str:
        if self.drift is None or not self.drift.drifting:
            return ""
        return self.drift.message or "; ".join(self.drift.reasons)

    def attention(self, status: StatusSnapshot | None = None) -> list[str]:
        """What needs the person (the digest's "Needs your attention"): iCloud login, drift, failing parts."""
        status = status or self.status()
        lines = [f"iCloud login needed: {status.auth.message}"] if status.auth.login_needed else []
        if status.drift:
            lines.append(f"model drift: {status.drift}")
        return lines + list(status.problems)

    def _remember_attention(self, status: StatusSnapshot) -> None:
        """Keep the attention lines in the state file, so `photosorter digest --send-now` lists them too."""
        lines = self.attention(status)
        if lines != self._attention_saved:
            self.state.save_attention(lines, self.clock.now())
            self._attention_saved = lines

    def _publish_status(self, snapshot: StatusSnapshot | None = None) -> None:
        if self.publisher is None:
            return
        snapshot = snapshot or self.status()
        if snapshot != self._last_status:
            self.publisher.publish_status(snapshot)
            self._last_status = snapshot

    def _heartbeat(self) -> None:
        path = self.settings.library.data / HEARTBEAT_FILE
        try:
            path.touch()
        except OSError as exc:
            log.debug("heartbeat not written: %s", exc)

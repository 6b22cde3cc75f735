"""A ``Controls`` that records what MQTT asked of it, and status snapshots to publish (MQTT tests)."""

from __future__ import annotations

import datetime as dt
import threading

from photosorter.records import AuthState, StatusSnapshot, SyncProgress

GOOD_CODE = "123456"


class RecordingControls:
    """Stands in for the daemon: accepts GOOD_CODE, refuses any other code."""

    def __init__(self) -> None:
        self.syncs = 0
        self.codes: list[str] = []
        self.paused: list[bool] = []
        self.changed = threading.Event()

    def request_sync(self) -> None:
        self.syncs += 1
        self.changed.set()

    def submit_icloud_code(self, code: str) -> AuthState:
        self.codes.append(code)
        self.changed.set()
        return AuthState(ok=True) if code == GOOD_CODE else AuthState(False, "That code was not accepted.", "sms")

    def set_paused(self, paused: bool) -> None:
        self.paused.append(paused)
        self.changed.set()


def snapshot(**changes: object) -> StatusSnapshot:
    values: dict[str, object] = {
        "library_counts": {"food": 12, "beer": 3, "_unsure": 2},
        "sorted_today": 7, "unsure": 2, "failed": 1,
        "last_sync": dt.datetime(2026, 11, 25, 8, 30, tzinfo=dt.UTC),
        "sync": SyncProgress(250, 1000, downloaded=240, per_s=4.1666, eta_s=180.0),
        "auth": AuthState(False, "Enter the code sent to your iPhone.", "trusted device"),
        "paused": False,
    }
    values.update(changes)
    return StatusSnapshot(**values)  # type: ignore[arg-type]

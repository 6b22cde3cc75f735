"""``photosorter sync`` end to end against the fake iCloud, the code drop to a running daemon, and
the pure sync decisions."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from photosorter.cli import main
from photosorter.cli.icloud import watch_codes
from photosorter.core import sync
from photosorter.records import AuthState
from tests.conftest import settings_env, shared_path
from tests.servers.fake_icloud import FakeICloud

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeICloud]:
    shared_path("icloud-recorded", "listing_photos.yml")
    server = FakeICloud(tmp_path, two_factor="none").start()
    yield server
    server.stop()


def test_icloud_sync_fetches_and_sorts_into_the_library(fake: FakeICloud, tmp_path: Path, tiny_model: Path) -> None:
    fake.load_recording(limit=6)
    env = {**os.environ, **settings_env(tmp_path / "library", tmp_path / "data", tiny_model),
           "APPLE_ID": fake.apple_id, "APPLE_PASSWORD": fake.password, "PHOTOSORTER_ICLOUD_SERVER": fake.url,
           "REQUESTS_CA_BUNDLE": str(fake.cert), "CURL_CA_BUNDLE": str(fake.cert), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "photosorter", "sync"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "iCloud: 6 new files" in result.stdout
    sorted_files = [p for p in (tmp_path / "library").rglob("*") if p.is_file() and "videos" not in p.parts]
    assert len(sorted_files) >= 1
    assert fake.password not in result.stdout + result.stderr
    again = subprocess.run([sys.executable, "-m", "photosorter", "sync"], cwd=tmp_path, env=env,  # short name
                           capture_output=True, text=True, timeout=120)
    assert "iCloud: 0 new files" in again.stdout


class Recorder:
    def __init__(self) -> None:
        self.codes: list[str] = []

    def request_sync(self) -> None:
        pass

    def set_paused(self, paused: bool) -> None:
        pass

    def submit_icloud_code(self, code: str) -> AuthState:
        self.codes.append(code)
        return AuthState(ok=code == "123456", message="ok" if code == "123456" else "Wrong code: enter it again.")


def test_icloud_code_reaches_the_running_daemon_and_prints_its_answer(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    controls, stop = Recorder(), threading.Event()
    watch_codes(data, controls, stop)
    try:
        assert main(["icloud", "code", "654321", "--data", str(data)]) == 1
        assert "Wrong code" in capsys.readouterr().out
        assert main(["icloud", "code", "123456", "--data", str(data)]) == 0
    finally:
        stop.set()
    assert controls.codes == ["654321", "123456"]
    assert (data / "icloud-code.reply").stat().st_mode & 0o077 == 0


def test_local_names_never_escape_the_folder() -> None:
    assert sync.local_name("../../etc/passwd", "id1") == "._etc_passwd" or "/" not in sync.local_name("../../x", "i")
    for raw in ("i/n v:a\x00l*i?d\\p<a>t\"h|.JPEG", "..", "\x07\x1b", "a/../b.jpg"):
        name = sync.local_name(raw, "AY6c+BsE0jja")
        assert name and "/" not in name and ".." not in name and name.isprintable(), name


def test_a_walk_resumes_before_its_saved_rank_and_stops_after_known_runs_once_complete() -> None:
    assert sync.plan_walk(known_assets=0, backfill_done=False, saved_rank=0) == sync.WalkPlan(False, 0)
    assert sync.plan_walk(known_assets=500, backfill_done=False, saved_rank=500).backfill_from == 400
    assert sync.plan_walk(known_assets=500, backfill_done=True, saved_rank=500) == sync.WalkPlan(True, None)
    assert not sync.listing_needed("t1", "t1", True) and sync.listing_needed("t1", "t1", False)


def test_backoff_doubles_to_a_cap_and_honours_retry_after() -> None:
    assert [sync.backoff_s(n) for n in (1, 2, 3)] == [60.0, 120.0, 240.0]
    assert sync.backoff_s(20) == sync.BACKOFF_CAP_S
    assert sync.backoff_s(1, retry_after_s=900) == 900.0

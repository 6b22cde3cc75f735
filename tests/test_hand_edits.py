"""What a person does in the library by hand is taken in: a move to another category folder is a label, a
rename is followed, a deletion is remembered (and iCloud never brings the photo back); by a sort, a sync and
the running daemon alike."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from photosorter.adapters.state import SqliteState
from photosorter.cli import main
from photosorter.cli.build import build_sorter, open_state
from photosorter.cli.icloud import open_source
from photosorter.config import load_settings
from photosorter.daemon import Daemon
from photosorter.records import PhotoStatus
from tests.clocks import FakeClock
from tests.conftest import settings_env, write_photo
from tests.servers.fake_icloud import FakeICloud

ROOT = Path(__file__).resolve().parents[1]


def sort(tmp_path: Path, model: Path) -> None:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    assert main(["sort", str(tmp_path / "inbox"), "--library", str(tmp_path / "library"), "--data",
                 str(tmp_path / "data"), "--model", str(model)]) == 0


def test_moving_renaming_and_deleting_in_the_library_is_taken_in_on_the_next_run(tmp_path: Path,
                                                                                tiny_model: Path) -> None:
    for i in range(3):
        write_photo(tmp_path / "inbox", f"red{i}.jpg", (220, 20, 20), noise_seed=i)
    sort(tmp_path, tiny_model)
    food, beer = tmp_path / "library" / "food", tmp_path / "library" / "beer"
    beer.mkdir()
    os.rename(food / "red0.jpg", beer / "red0.jpg")  # the person says: that is beer
    os.rename(food / "red1.jpg", food / "lunch.jpg")
    (food / "red2.jpg").unlink()
    sort(tmp_path, tiny_model)
    state = SqliteState(tmp_path / "data" / "state.sqlite3")
    try:
        by_path = {r.library_path: r for r in state.library_records()}
        assert sorted(by_path) == ["beer/red0.jpg", "food/lunch.jpg"]
        assert state.current_labels() == {by_path["beer/red0.jpg"].id: "beer"}
        assert len(state.labelled_embeddings(next((tmp_path / "data").glob("knn-*.usearch")).name[4:-8])) == 1
        assert [state.photo(i).status for i in (1, 2, 3)].count(PhotoStatus.REMOVED) == 1  # type: ignore[union-attr]
        assert state.library_counts() == {"beer": 1, "food": 1}
    finally:
        state.close()
    sort(tmp_path, tiny_model)  # nothing new: the same state, no second label
    state = SqliteState(tmp_path / "data" / "state.sqlite3")
    try:
        assert len(state.current_labels()) == 1 and state.library_counts() == {"beer": 1, "food": 1}
    finally:
        state.close()


def test_a_photo_deleted_from_the_library_is_never_downloaded_again(fake_icloud: FakeICloud, tmp_path: Path,
                                                                   tiny_model: Path) -> None:
    fake = fake_icloud
    fake.load_recording(limit=4)
    env = {**os.environ, **settings_env(tmp_path / "library", tmp_path / "data", tiny_model),
           "APPLE_ID": fake.apple_id, "APPLE_PASSWORD": fake.password, "PHOTOSORTER_ICLOUD_SERVER": fake.url,
           "REQUESTS_CA_BUNDLE": str(fake.cert), "CURL_CA_BUNDLE": str(fake.cert), "PYTHONPATH": str(ROOT),
           "PHOTOSORTER_FACES": "false"}

    def sync() -> list[Path]:
        done = subprocess.run([sys.executable, "-m", "photosorter", "sync"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return sorted(p for p in (tmp_path / "library").rglob("*") if p.is_file() and "videos" not in p.parts)

    first = sync()
    assert first
    first[0].unlink()
    assert sync() == first[1:]
    assert sync() == first[1:]



def test_the_running_daemon_takes_a_move_as_a_label_and_never_fetches_a_deleted_photo_again(
        fake_icloud: FakeICloud, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_icloud
    fake.load_recording(limit=4)
    monkeypatch.setenv("PHOTOSORTER_ICLOUD_SERVER", fake.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.cert))
    settings = load_settings({"library": str(tmp_path / "library"), "data": str(tmp_path / "data"),
                              "model": str(tiny_model), "apple_id": fake.apple_id, "apple_password": fake.password,
                              "icloud_poll_minutes": 10, "faces": False, "settle_seconds": 0},
                             environ={}, dotenv_path=tmp_path / "none")
    state, source, clock = open_state(settings), open_source(settings), FakeClock()
    assert source is not None
    daemon = Daemon(settings=settings, sorter=build_sorter(settings, state), state=state, clock=clock,
                    zone=ZoneInfo("UTC"), source=source)
    library = settings.library.path

    def photos() -> dict[str, str]:  # content hash -> place in the library (photos, not their live videos)
        return {hashlib.sha256(p.read_bytes()).hexdigest(): p.relative_to(library).as_posix()
                for p in library.rglob("*") if p.is_file() and p.suffix.lower() not in (".mov", ".mp4")}

    def downloads(sha: str) -> int:  # how often the fake iCloud served the original with these bytes
        key = next(k for k, body in fake.contents.items() if hashlib.sha256(body).hexdigest() == sha)
        return fake.count(f"/content/B/{key}/")

    try:
        daemon.run_due_parts()  # the daemon's first round: four items (three photos, a video) come in, sorted
        first = photos()
        filed = sorted((place, sha) for sha, place in first.items() if not place.startswith("_"))
        assert len(first) == 3 and len(filed) >= 2, first
        (moved_from, moved), (deleted_at, deleted) = filed[0], filed[1]
        target = "beer" if not moved_from.startswith("beer/") else "food"
        (library / target).mkdir(exist_ok=True)
        os.rename(library / moved_from, library / target / Path(moved_from).name)  # the person: that is beer
        (library / deleted_at).unlink()  # the person: not this one
        fake.add_new_photo(index=0)  # iCloud has news, so the next round lists the library again
        for _ in range(2):  # the next rounds, ten minutes apart
            clock.advance(600)
            daemon.run_due_parts()
        now = photos()
        assert deleted not in now and downloads(deleted) == 1
        assert now[moved] == f"{target}/{Path(moved_from).name}" and len(now) == 3  # 3 - 1 deleted + 1 new
        photo_id = next(r.id for r in state.library_records() if r.library_path == now[moved])
        assert state.current_labels() == {photo_id: target}
    finally:
        source.close()
        state.close()

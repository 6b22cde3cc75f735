"""What a person does in the library by hand is taken in: a move to another category folder is a label, a
rename is followed, a deletion is remembered (and iCloud never brings the photo back)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from photosorter.adapters.state import SqliteState
from photosorter.cli import main
from photosorter.records import PhotoStatus
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

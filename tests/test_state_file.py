"""The state database: only its owner may read it (it holds face data); work redone after a crash is not doubled."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from photosorter.adapters.icloud import IcloudAssets
from photosorter.adapters.mailstate import SqliteMailLedger
from photosorter.adapters.state import SqliteState


@pytest.mark.parametrize("opener", [SqliteState, SqliteMailLedger, IcloudAssets])
def test_a_new_state_file_is_private_to_its_owner(tmp_path: Path, opener: type) -> None:
    path = tmp_path / "data" / "state.sqlite3"
    opener(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    SqliteState(path).close()  # the others' tables live beside the state's, in the same file


def test_the_same_label_applied_again_after_a_crash_adds_nothing(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state.sqlite3")
    photo = state.add_photo("0" * 64, 1, tmp_path / "a.jpg")
    for _ in range(2):  # a reply labelled the photo, then the process died before recording it: applied again
        state.add_label(photo, "food", "email", "<reply@example.com>")
    state.add_label(photo, "beer", "email", "<later@example.com>")
    state.add_label(photo, "food", "cli")
    rows = state._db.execute("SELECT category, source FROM labels ORDER BY id").fetchall()
    assert rows == [("food", "email"), ("beer", "email"), ("food", "cli")]
    state.close()

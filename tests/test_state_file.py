"""The state database holds face data: whichever part creates it, only its owner may read it."""

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

"""The library counts the daemon reads every loop are remembered between changes, and follow every change:
this connection's own writes and other connections' commits (another process, the iCloud table)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from photosorter.adapters.state import SqliteState
from photosorter.records import PhotoStatus


def place(state: SqliteState, name: str, category: str) -> None:
    photo = state.add_photo(name * 32, 10, Path(f"/inbox/{name}.jpg"))
    state.record_outcome(photo, category=category)
    move = state.begin_move(photo, Path(f"/inbox/{name}.jpg"), Path(f"/lib/{category}/{name}.jpg"),
                            f"{category}/{name}.jpg", PhotoStatus.PLACED)
    state.finish_move(move, True)


def test_counts_follow_this_connections_writes(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state.sqlite3")
    place(state, "a", "food")
    assert state.library_counts() == {"food": 1} and state.sorted_since(0) == 1
    place(state, "b", "food")
    assert state.library_counts() == {"food": 2} and state.sorted_since(0) == 2
    state.close()


def test_counts_follow_another_connections_commits(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state.sqlite3")
    place(state, "a", "food")
    assert state.library_counts() == {"food": 1}
    other = sqlite3.connect(tmp_path / "state.sqlite3", isolation_level=None)
    other.execute("UPDATE photos SET category='beer'")
    other.close()
    assert state.library_counts() == {"beer": 1}
    state.close()

"""Drift: a synthetic shift in new photos raises the flag, the same mix as before does not; the daemon's
daily upkeep runs the check against the real state store."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from photosorter.adapters.state import SqliteState
from photosorter.cli.build import build_sorter, open_state
from photosorter.config import load_settings
from photosorter.core.drift import MESSAGE, Observation, detect_drift, top1_similarity
from photosorter.daemon import Daemon
from photosorter.drift import check_drift
from photosorter.records import PhotoStatus, Prediction
from tests.test_daemon import FakeClock

ZONE = ZoneInfo("Europe/Berlin")
TODAY = dt.date(2026, 3, 28)
DIM = 16
CATEGORIES = ("food", "animal", "scenery")


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def centres() -> np.ndarray:
    return unit(np.random.default_rng(1).normal(size=(len(CATEGORIES), DIM)))


def photos(rng: np.random.Generator, day: dt.date, count: int, *, shifted: bool = False, unsure: float = 0.1,
           mix: tuple[float, ...] = (0.4, 0.3, 0.3), start_id: int = 0) -> list[Observation]:
    made = []
    noon = dt.datetime.combine(day, dt.time(12), ZONE).timestamp()
    for i in range(count):
        category = int(rng.choice(len(CATEGORIES), p=mix))
        direction = rng.normal(size=DIM) if shifted else centres()[category] * 4 + rng.normal(size=DIM)
        made.append(Observation(start_id + i, noon + i, bool(rng.random() < unsure), CATEGORIES[category],
                                start_id + i, unit(direction).astype(np.float32)))
    return made


def history(rng: np.random.Generator, recent: dict[str, object]) -> list[Observation]:
    made: list[Observation] = []
    for back in range(30, -1, -1):
        day = TODAY - dt.timedelta(days=back)
        options = recent if back < 3 else {}
        made += photos(rng, day, 8, start_id=len(made) + 1000, **options)  # type: ignore[arg-type]
    return made


def labelled() -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(2)
    taught = unit(np.repeat(centres(), 10, axis=0) * 4 + rng.normal(size=(30, DIM)))
    return taught.astype(np.float32), list(range(30))


def report_for(recent: dict[str, object], seed: int = 0) -> tuple[bool, tuple[str, ...]]:
    observations = history(np.random.default_rng(seed), recent)
    taught, groups = labelled()
    similarity = top1_similarity(np.stack([o.vector for o in observations]), [o.group for o in observations],
                                 taught, groups)
    report = detect_drift(observations, similarity, TODAY, ZONE)
    return report.drifting, report.reasons


@pytest.mark.parametrize("seed", range(5))
def test_no_shift_raises_no_flag(seed: int) -> None:
    assert report_for({}, seed) == (False, ())


def test_photos_unlike_the_labels_raise_the_flag() -> None:
    drifting, reasons = report_for({"shifted": True})
    assert drifting and any("similarity" in r for r in reasons)


def test_more_unsure_photos_raise_the_flag() -> None:
    drifting, reasons = report_for({"unsure": 0.6})
    assert drifting and any("unsure" in r for r in reasons)


def test_a_new_category_mix_raises_the_flag() -> None:
    drifting, reasons = report_for({"mix": (0.0, 0.05, 0.95)})
    assert drifting and any("mix" in r for r in reasons)


def test_too_few_photos_say_nothing() -> None:
    observations = photos(np.random.default_rng(0), TODAY, 5, shifted=True)
    similarity = np.zeros(len(observations))
    assert not detect_drift(observations, similarity, TODAY, ZONE).drifting


def test_a_photo_is_not_its_own_nearest_label() -> None:
    vectors = unit(np.eye(3, DIM, dtype=np.float32))
    similarity = top1_similarity(vectors, [7, 8, 9], vectors[:2], [7, 8])
    assert np.isnan(similarity[0]) or similarity[0] < 0.5
    assert similarity[2] == pytest.approx(0.0)


def add_sorted(state: SqliteState, db: Path, model: str, observations: list[Observation]) -> None:
    updates = []
    for item in observations:
        photo_id = state.add_photo(f"{item.photo_id:064x}", 1, Path(f"/in/{item.photo_id}.jpg"))
        state.save_analysis(photo_id, model, item.vector, photo_id, photo_id,
                            Prediction(item.category or "other", 0.9, 0.5, item.unsure))
        status = PhotoStatus.UNSURE if item.unsure else PhotoStatus.PLACED
        updates.append((status.value, item.created, photo_id))
    with sqlite3.connect(db) as connection:  # back-date the photos, as if sorted over the past month
        connection.executemany("UPDATE photos SET status=?, created=? WHERE id=?", updates)
    connection.close()


def test_check_drift_reads_the_state_store(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state.sqlite3")
    taught, _ = labelled()
    for i, vector in enumerate(taught):
        photo_id = state.add_photo(f"label{i:059d}", 1, Path(f"/ex/{i}.jpg"), PhotoStatus.EXAMPLE)
        state.save_analysis(photo_id, "m", vector, photo_id, photo_id)
        state.add_label(photo_id, CATEGORIES[i // 10], "cli")
    add_sorted(state, tmp_path / "state.sqlite3", "m", history(np.random.default_rng(0), {"shifted": True}))
    now = dt.datetime.combine(TODAY, dt.time(23), ZONE)
    report = check_drift(state, "m", now, ZONE)
    state.close()
    assert report.drifting and report.message == MESSAGE


def test_daily_upkeep_runs_the_drift_check(tmp_path: Path, tiny_model: Path) -> None:
    settings = load_settings({"library": str(tmp_path / "lib"), "data": str(tmp_path / "data"),
                              "model": str(tiny_model), "settle_seconds": 0}, environ={}, dotenv_path=tmp_path / "none")
    settings.library.data.mkdir(parents=True)
    state = open_state(settings)
    clock = FakeClock()
    daemon = Daemon(settings=settings, sorter=build_sorter(settings, state), state=state, clock=clock, zone=ZONE,
                    drift_check=lambda: check_drift(state, "m", clock.now(), ZONE))
    daemon.run_due_parts()
    assert daemon.drift is None  # upkeep waits for its time of day
    clock.advance(24 * 3600)
    daemon.run_due_parts()
    state.close()
    assert daemon.drift is not None and not daemon.drift.drifting

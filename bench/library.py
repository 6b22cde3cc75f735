"""A large library in the state: what the person's commands and the daemon's status cost with 100k photos.

The state is filled as sorting leaves it (a placed photo row with category, library path, perceptual
hash and an embedding of the CLIP-shaped size per photo; one in ten labelled) in one transaction, then
timed in this process: ``status``, the daemon's status snapshot (what MQTT publishes each loop), the
MQTT status publish to a real mosquitto, and the digest (``photosorter digest --dry-run``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import time
from pathlib import Path

import numpy as np

from bench.common import RSS, row, timed
from photosorter.adapters.state import SqliteState
from photosorter.cli import main as photosorter_cli
from photosorter.config import load_settings
from photosorter.records import AuthState, StatusSnapshot

EMBEDDING_DIM = 512


def fill(state: SqliteState, count: int, names: tuple[str, ...]) -> None:
    rng = np.random.default_rng(0)
    now = time.time()
    with state._tx() as db:  # bulk fill: the benchmark is about reading a state this big
        db.executemany(
            "INSERT INTO photos (id, sha256, size, source_path, library_path, category, score, margin, status, "
            "dhash, near_group, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(i, f"{i:064x}", 2_500_000, f"incoming/IMG_{i:05d}.HEIC", f"{names[i % len(names)]}/IMG_{i:05d}.HEIC",
              names[i % len(names)], 0.8, 0.3, "placed", int(rng.integers(-2**62, 2**62)), i,
              now - (count - i) * 60.0, now - (count - i) * 60.0) for i in range(1, count + 1)])
        db.executemany("INSERT INTO embeddings (photo_id, model, vector) VALUES (?,?,?)",
                       ((i, "clip", rng.standard_normal(EMBEDDING_DIM, dtype=np.float32).tobytes())
                        for i in range(1, count + 1)))
        db.executemany("INSERT INTO labels (photo_id, category, source, created) VALUES (?,?,'bench',?)",
                       [(i, names[i % len(names)], now) for i in range(1, count + 1, 10)])


def library_rows(count: int, model: Path, work: Path, mqtt_port: int | None) -> None:
    settings = load_settings({"library": str(work / "library"), "data": str(work / "data"), "model": str(model),
                              "log_level": "warning", "mqtt_host": "127.0.0.1" if mqtt_port else "",
                              "mqtt_port": mqtt_port or 1883}, environ={}, dotenv_path=Path("/nonexistent"))
    state = SqliteState(settings.library.data / "state.sqlite3")
    with timed() as filling:
        fill(state, count, settings.classify.names)
    state.compact()
    state.close()
    size = (settings.library.data / "state.sqlite3").stat().st_size
    row(f"library {count // 1000}k photos: state database", f"{size / 1e6:6.1f} MB (embeddings {EMBEDDING_DIM}-d "
        f"float32: {count * EMBEDDING_DIM * 4 / 1e6:.0f} MB of it; filled in {filling[0]:.1f} s)")
    common = ["--library", str(work / "library"), "--data", str(work / "data"), "--model", str(model)]
    with contextlib.redirect_stdout(io.StringIO()), timed() as status:  # the command, in this process
        assert photosorter_cli(["status", *common]) == 0
    logging.getLogger().setLevel(logging.WARNING)  # the command set up logging for itself
    state = SqliteState(settings.library.data / "state.sqlite3")
    with timed() as snapshot:  # what Daemon.status() reads each loop
        counts = state.library_counts()
        today = dt.datetime.now().replace(hour=0, minute=0, second=0).timestamp()
        sorted_today = state.sorted_since(today)
    with timed() as again:  # the next loop, nothing changed in between
        state.library_counts()
        state.sorted_since(today)
    row(f"library {count // 1000}k photos: status command / daemon status snapshot, first / unchanged",
        f"{status[0] * 1000:7.0f} ms / {snapshot[0] * 1000:6.1f} / {again[0] * 1000:5.2f} ms")
    if mqtt_port:
        from photosorter.cli.mqtt import open_publisher

        publisher = open_publisher(settings, None, environ={})
        assert publisher is not None
        deadline = time.monotonic() + 10
        while not publisher.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        snap = StatusSnapshot(library_counts={n: counts.get(n, 0) for n in settings.classify.names},
                              sorted_today=sorted_today, unsure=counts.get("_unsure", 0),
                              failed=counts.get("_failed", 0), last_sync=None, sync=None, auth=AuthState(ok=True),
                              paused=False, problems=(), drift="")
        with timed() as publish:
            publisher.publish_status(snap)
        publisher.close()
        row(f"library {count // 1000}k photos: MQTT status publish", f"{publish[0] * 1000:7.1f} ms")
    state.close()
    RSS.reset()
    with contextlib.redirect_stdout(io.StringIO()), timed() as digest:
        assert photosorter_cli(["digest", "--dry-run", "--out", str(work / "digests"), *common]) == 0
    row(f"library {count // 1000}k photos: digest (dry run)", f"{digest[0] * 1000:7.0f} ms  peak RSS "
                                                                f"{RSS.peak_mb:5.0f} MB")

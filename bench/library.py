"""A large library in the state: what the person's commands and the daemon's status cost with 100k photos.

The state is filled as sorting leaves it (a placed photo row with category, library path, perceptual
hash and an embedding of the CLIP-shaped size per photo under a model fingerprint; one in ten labelled) in
one transaction; its size is compared with the same state as an older version stored it (float32
embeddings, the naive layout), which is then migrated as a writer does at start. Then timed in this
process: ``status``, the daemon's status snapshot (what MQTT publishes each loop), the
MQTT status publish to a real mosquitto, and the digest (``photosorter digest --dry-run``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from bench.common import RSS, row, timed
from photosorter.adapters.state import SqliteState
from photosorter.adapters.vectors import decode, encode
from photosorter.cli import main as photosorter_cli
from photosorter.config import load_settings
from photosorter.records import AuthState, StatusSnapshot

EMBEDDING_DIM = 512
MODEL_ID = "3f9a1c0e5b7d2468"  # a model fingerprint (ModelSpec.fingerprint: 16 hex digits)


def fill(state: SqliteState, count: int, names: tuple[str, ...], *, float32: bool = False) -> None:
    """``float32``: the embeddings as versions before int8 stored them (scale NULL)."""
    rng = np.random.default_rng(0)
    now = time.time()
    with state._tx() as db:  # bulk fill: the benchmark is about reading a state this big
        db.executemany(
            "INSERT INTO photos (id, sha256, size, source_path, library_path, category, score, margin, status, "
            "dhash, near_group, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(i, f"{i:064x}", 2_500_000, f"incoming/IMG_{i:05d}.HEIC", f"{names[i % len(names)]}/IMG_{i:05d}.HEIC",
              names[i % len(names)], 0.8, 0.3, "placed", int(rng.integers(-2**62, 2**62)), i,
              now - (count - i) * 60.0, now - (count - i) * 60.0) for i in range(1, count + 1)])
        unit = (v / np.linalg.norm(v) for v in (rng.standard_normal(EMBEDDING_DIM, dtype=np.float32)
                                                for _ in range(count)))
        db.executemany("INSERT INTO embeddings (photo_id, model, vector, scale) VALUES (?,?,?,?)",
                       ((i, MODEL_ID, *((v.tobytes(), None) if float32 else encode(v)))
                        for i, v in enumerate(unit, start=1)))
        db.executemany("INSERT INTO labels (photo_id, category, source, created) VALUES (?,?,'bench',?)",
                       [(i, names[i % len(names)], now) for i in range(1, count + 1, 10)])


def storage_agreement(name: str, vectors: np.ndarray, queries: np.ndarray) -> None:
    """What storing embeddings as int8 does to the kNN: the cosine of each stored vector with its float32
    original, how often a float32 query's nearest stored photo (top 1, top 5) stays the same, and by how much
    (float32 similarity) the photo chosen instead was behind where it changed."""
    stored = np.stack([decode(*encode(v)) for v in vectors])
    cosine = (stored * vectors).sum(axis=1) / np.linalg.norm(stored, axis=1) / np.linalg.norm(vectors, axis=1)
    exact, approx = queries @ vectors.T, queries @ stored.T
    best, chosen = exact.argmax(axis=1), approx.argmax(axis=1)
    top1 = float(np.mean(best == chosen))
    lost = exact.max(axis=1) - exact[np.arange(len(queries)), chosen]
    top5 = float(np.mean([len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5
                          for a, b in zip(exact, approx, strict=True)]))
    row(f"embeddings stored int8 vs float32, {name}", f"min cosine {cosine.min():.6f}, same top-1 {top1:.4f}, "
                                                      f"top-5 {top5:.4f} (changed: behind by <= {lost.max():.5f})")


def state_rows(count: int, names: tuple[str, ...], work: Path) -> None:
    """The state file's size per 100k photos as an older version kept it (float32 embeddings) and as this
    one does (int8 + scale), and the migration from the one to the other at a writer's start."""
    path = work / "state.sqlite3"
    state = SqliteState(path)
    fill(state, count, names, float32=True)
    state._db.execute("PRAGMA user_version=0")  # as an older version left it: a new file is stamped int8 already
    state.compact()
    state.close()
    before = path.stat().st_size * 100_000 / count / 1e6
    with timed() as migrating:
        SqliteState(path).close()
    after = path.stat().st_size * 100_000 / count / 1e6
    row(f"library {count // 1000}k photos: state DB per 100k photos, float32 -> int8",
        f"{before:6.1f} -> {after:5.1f} MB ({before / after:.1f}x smaller; {EMBEDDING_DIM}-d; migration "
        f"{migrating[0]:.1f} s)")
    shutil.rmtree(work)


def library_rows(count: int, model: Path, work: Path, mqtt_port: int | None) -> None:
    settings = load_settings({"library": str(work / "library"), "data": str(work / "data"), "model": str(model),
                              "log_level": "warning", "mqtt_host": "127.0.0.1" if mqtt_port else "",
                              "mqtt_port": mqtt_port or 1883}, environ={}, dotenv_path=Path("/nonexistent"))
    state_rows(count, settings.classify.names, work / "float32")
    state = SqliteState(settings.library.data / "state.sqlite3")
    fill(state, count, settings.classify.names)
    state.compact()
    state.close()
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

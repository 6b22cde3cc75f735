"""Torture: the daemon SIGKILLed at random moments (seeded, reproducible) while photos keep arriving in its inbox,
it syncs from the local iCloud server and labels are given, restarted each time. Once it settles every photo
is in the library exactly once, no partial or temporary file is left, the state database, the kNN index and
the folders agree, and so do the counts it publishes on MQTT.

``PHOTOSORTER_TORTURE_KILLS`` (default 50) and ``PHOTOSORTER_TORTURE_SEED`` make longer or other runs.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from photosorter.adapters.files import PHOTO_EXTENSIONS
from photosorter.adapters.state import SqliteState
from photosorter.ml.index import UsearchIndex
from tests.conftest import jpeg_bytes
from tests.servers.fake_icloud import FakeICloud
from tests.servers.mosquitto import Listener, Mosquitto

KILLS = int(os.environ.get("PHOTOSORTER_TORTURE_KILLS", "50"))
SEED = int(os.environ.get("PHOTOSORTER_TORTURE_SEED", "20261202"))
DAEMON = [sys.executable, "-m", "photosorter", "run"]
COLOURS = [(220, 20, 20), (20, 220, 20), (20, 20, 220), (128, 128, 128)]


def drop_photos(inbox: Path, rng: random.Random, start: int, count: int) -> int:
    """New arrivals: photos, now and then an exact duplicate, a live photo pair, a video, a broken file."""
    for number in range(start, start + count):
        name = f"IMG_{number:04d}"
        (inbox / f"{name}.jpg").write_bytes(jpeg_bytes(COLOURS[number % 4], size=(160, 120), noise_seed=number))
        roll = rng.random()
        if roll < 0.1 and number > 0:
            (inbox / f"copy_{number:04d}.jpg").write_bytes((inbox / f"{name}.jpg").read_bytes())
        elif roll < 0.2:
            (inbox / f"{name}.MOV").write_bytes(rng.randbytes(2000))  # its live-photo movie
        elif roll < 0.25:
            (inbox / f"VID_{number:04d}.mp4").write_bytes(rng.randbytes(3000))
        elif roll < 0.3:
            (inbox / f"broken_{number:04d}.jpg").write_bytes(b"\xff\xd8\xff" + rng.randbytes(200))
    return start + count


def contents(*folders: Path) -> collections.Counter[str]:
    return collections.Counter(hashlib.sha256(p.read_bytes()).hexdigest() for folder in folders
                               for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def icloud_env(fake: FakeICloud) -> dict[str, str]:
    return {"APPLE_ID": fake.apple_id, "APPLE_PASSWORD": fake.password, "PHOTOSORTER_ICLOUD_SERVER": fake.url,
            "REQUESTS_CA_BUNDLE": str(fake.cert), "CURL_CA_BUNDLE": str(fake.cert),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def originals_of(fake: FakeICloud) -> collections.Counter[str]:
    return collections.Counter(hashlib.sha256(fake.contents[p.content_keys["resOriginal"]]).hexdigest()
                               for p in fake.photos)


def is_photo(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in PHOTO_EXTENSIONS and not path.name.startswith(".")


def start_and_kill(env: dict[str, str], cwd: Path, after_s: float) -> bool:
    """Start the daemon and SIGKILL it ``after_s`` later; True if it was still running (so it was killed)."""
    process = subprocess.Popen(DAEMON, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(after_s)
    running = process.poll() is None
    if running:
        process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) in (-signal.SIGKILL, 0), f"exit {process.returncode}"
    return running


def beating_since(data: Path, since: float) -> Callable[[], bool]:
    """True once the daemon started at ``since`` has run its loop (a killed one leaves an old heartbeat)."""
    def check() -> bool:
        try:
            return (data / "heartbeat").stat().st_mtime >= since
        except FileNotFoundError:
            return False
    return check


def test_the_daemon_killed_at_random_moments_loses_nothing_and_settles_consistent(
        tmp_path: Path, tiny_model: Path, anonymous_mosquitto: Mosquitto, fake_icloud: FakeICloud) -> None:
    rng = random.Random(SEED)  # kill times, arrivals and their bytes: the same for a seed, however a run goes
    pick = random.Random(SEED + 2)  # which placed photo gets a label: depends on what was placed by then
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    inbox.mkdir()
    fake_icloud.load_recording()  # 100 assets: stills, live photos with their movies, screenshots
    recorded = len(fake_icloud.photos)
    env = {**os.environ, "PHOTOSORTER_INBOX": str(inbox), "PHOTOSORTER_LIBRARY": str(library),
           "PHOTOSORTER_DATA": str(data), "PHOTOSORTER_MODEL": str(tiny_model), "PHOTOSORTER_FACES": "false",
           "PHOTOSORTER_MQTT_HOST": anonymous_mosquitto.host, "PHOTOSORTER_MQTT_PORT": str(anonymous_mosquitto.port),
           **icloud_env(fake_icloud)}
    arrived = drop_photos(inbox, rng, 0, 30)
    expected = contents(inbox)
    killed = labelled = 0
    started = time.monotonic()
    for trial in range(KILLS):
        killed += start_and_kill(env, tmp_path, rng.uniform(0.0, 2.5))
        if trial % 3 == 0:
            before = contents(inbox)
            arrived = drop_photos(inbox, rng, arrived, rng.randint(1, 4))
            expected += contents(inbox) - before
        if trial % 5 == 2:  # a photo taken: new in iCloud
            fake_icloud.add_new_photo(index=rng.randrange(recorded), tag=f"new{trial}")
        if trial % 10 == 9:  # a label given by hand between two kills
            placed = sorted(p for p in library.glob("[a-z]*/IMG_*.jpg"))
            if placed:
                subprocess.run([sys.executable, "-m", "photosorter", "label", str(pick.choice(placed)), "beer"],
                               env=env, cwd=tmp_path, capture_output=True, timeout=60, check=True)
                labelled += 1
    originals = originals_of(fake_icloud)
    served = {hashlib.sha256(b).hexdigest() for b in fake_icloud.contents.values()}  # all iCloud may bring
    synced_while_killed = sum(min(n, contents(library)[h]) for h, n in originals.items())
    listener = Listener(anonymous_mosquitto, "photosorter/state")
    since = time.time()  # the killed daemons are gone (waited for): a heartbeat from now on is this one's
    process = subprocess.Popen(DAEMON, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_until(beating_since(data, since), 60, "the daemon's loop")
        wait_until(lambda: not any(inbox.iterdir()), 120, "the inbox to empty")
        wait_until(lambda: not originals - contents(library), 180, "every iCloud photo in the library")
        wait_until(lambda: not [p for p in (data / "incoming").iterdir() if p.is_file()], 60, "incoming to empty")
        wait_until(lambda: listener.latest("photosorter/state") is not None, 30, "a state on MQTT")
        time.sleep(1.0)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        listener.close()
    print(f"torture: seed {SEED}, {killed} SIGKILLs of {KILLS} starts, {labelled} labels, "
          f"{sum(expected.values())} inbox files, {sum(originals.values())} iCloud originals "
          f"({synced_while_killed} in the library before the last start), {time.monotonic() - started:.0f} s")
    assert process.returncode == 0, err[-3000:]
    assert killed >= KILLS * 0.9 and labelled >= KILLS // 20

    # every file that arrived in the inbox is in the library exactly as many times as it arrived, nothing else
    # is; every iCloud original exactly once
    found = contents(inbox, library)
    assert collections.Counter({h: n for h, n in found.items() if h not in served}) == expected
    assert {h: found[h] for h in originals} == dict(originals), "an iCloud photo is missing or filed twice"
    leftovers = [p for p in [*library.rglob(".*"), *inbox.rglob(".*"), *data.rglob("*.tmp"),
                             *data.rglob("*.restoring"), *data.rglob(".photosorter-icloud-*"),
                             *data.rglob(".photosorter-partial-*")] if p.is_file()]
    assert leftovers == []

    # the state database and the folders agree, photo by photo
    state = SqliteState(data / "state.sqlite3")
    try:
        assert state.pending_moves() == []
        rows = dict(sqlite3.connect(data / "state.sqlite3").execute(
            "SELECT library_path, sha256 FROM photos WHERE library_path IS NOT NULL").fetchall())
        on_disk = {p.relative_to(library).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                   for p in library.rglob("*") if is_photo(p)}
        assert rows == on_disk
        counts = state.library_counts()
        labels = state.current_labels()
        index_files = list(data.glob("knn-*.usearch"))
        assert len(index_files) == (1 if labels else 0)
        fingerprint = index_files[0].name[len("knn-"):-len(".usearch")] if labels else ""
        labelled_vectors = state.labelled_embeddings(fingerprint)
    finally:
        state.close()
    assert len(labels) == len(labelled_vectors) == len({pid for pid, _, _ in labelled_vectors})
    if labels:  # the saved index holds exactly the labelled photos, and its checksum holds
        index = UsearchIndex.load(index_files[0], len(labelled_vectors[0][2]),
                                  {p: c for p, c, _ in labelled_vectors})
        assert index is not None and len(index) == len(labels)

    # what Home Assistant was told matches the folders
    published = listener.latest("photosorter/state")
    assert published is not None
    folders = collections.Counter(p.parent.name for p in library.rglob("*") if is_photo(p))
    assert {k: v for k, v in published.json()["library"].items() if v} == {
        k: v for k, v in folders.items() if not k.startswith("_")}
    assert counts.get("_unsure", 0) == folders.get("_unsure", 0)


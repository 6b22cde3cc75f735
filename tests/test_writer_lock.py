"""Two runs at once never trample each other: writers take turns per data folder and library, a second daemon is
refused, read-only commands still answer; an inbox that is (inside) the library is refused."""

from __future__ import annotations

import collections
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from photosorter.adapters.locks import folder_locks
from photosorter.cli import FILLERS, WRITERS, main
from tests.conftest import jpeg_bytes
from tests.test_sort_folder import files_under
from tests.test_torture import wait_until

PHOTOS = 150


def cli(*args: str | Path, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "photosorter", *map(str, args)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)  # type: ignore[call-overload]


def contents(folder: Path) -> collections.Counter[str]:
    return collections.Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
                               if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize("data_folders", [("data", "data"), ("data-a", "data-b")],
                         ids=["one data folder", "a data folder each, one library"])
def test_two_sorts_of_one_inbox_at_once_take_turns_and_file_each_photo_once(tmp_path: Path, tiny_model: Path,
                                                                            data_folders: tuple[str, str]) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(PHOTOS):
        (inbox / f"IMG_{i:04d}.jpg").write_bytes(jpeg_bytes((220, 20, 20), noise_seed=i))
    expected = contents(inbox)
    args = ("sort", inbox, "--library", tmp_path / "library", "--model", tiny_model, "--data")
    first = cli(*args, tmp_path / data_folders[0])
    time.sleep(0.3)
    second = cli(*args, tmp_path / data_folders[1])
    outputs = [p.communicate(timeout=180) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert contents(tmp_path / "library") == expected
    assert not (tmp_path / "library" / "_duplicates").exists()
    errors = "".join(err for _, err in outputs)
    assert "cannot move" not in errors
    assert f"waiting for photosorter sort (pid {first.pid}" in outputs[1][1]


@pytest.fixture
def daemon(tmp_path: Path, tiny_model: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PHOTOSORTER_INBOX": str(tmp_path / "inbox"), "PHOTOSORTER_LIBRARY": str(tmp_path / "library"),
           "PHOTOSORTER_DATA": str(tmp_path / "data"), "PHOTOSORTER_MODEL": str(tiny_model),
           "PHOTOSORTER_FACES": "false"}
    (tmp_path / "inbox").mkdir()
    process = cli("run", env=env, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "data" / "heartbeat").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate()


def test_a_second_daemon_on_one_data_folder_is_refused_naming_the_first(tmp_path: Path,
                                                                        daemon: subprocess.Popen[str]) -> None:
    second = cli("run", env={**os.environ, "PHOTOSORTER_DATA": str(tmp_path / "data"),
                             "PHOTOSORTER_LIBRARY": str(tmp_path / "library")}, cwd=tmp_path)
    try:
        _, err = second.communicate(timeout=60)
    finally:
        second.kill()
    assert second.returncode == 1
    assert f"photosorter run (pid {daemon.pid}, since" in err and "already runs on" in err


def test_the_daemon_waits_while_a_command_by_hand_holds_the_library_then_sorts(tmp_path: Path,
                                                                              tiny_model: Path) -> None:
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    inbox.mkdir()
    for i in range(3):
        (inbox / f"IMG_{i}.jpg").write_bytes(jpeg_bytes((220, 20, 20), noise_seed=i))
    library.mkdir()
    data.mkdir(mode=0o700)
    env = {**os.environ, "PHOTOSORTER_INBOX": str(inbox), "PHOTOSORTER_LIBRARY": str(library),
           "PHOTOSORTER_DATA": str(data), "PHOTOSORTER_MODEL": str(tiny_model), "PHOTOSORTER_FACES": "false"}
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        with folder_locks([data, library], "sort"):  # the locks a sort by hand holds while it works
            daemon = subprocess.Popen([sys.executable, "-m", "photosorter", "run"], env=env, cwd=tmp_path,
                                      stdout=out, stderr=subprocess.STDOUT)
            wait_until(lambda: (data / "heartbeat").exists() or daemon.poll() is not None, 60, "the daemon's loop")
            assert daemon.poll() is None, log.read_text()
            assert len(list(inbox.iterdir())) == 3 and not files_under(library)  # its first round waited
        try:
            wait_until(lambda: len(files_under(library)) == 3 or daemon.poll() is not None, 60, "the daemon's sort")
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    text = log.read_text()
    assert daemon.returncode == 0 and len(files_under(library)) == 3, text[-3000:]
    assert "is using the library: the daemon's work waits for it" in text
    assert "is done: the daemon's work goes on" in text


def test_read_only_commands_answer_while_the_daemon_runs_and_health_fails_after_it_stops(
        tmp_path: Path, daemon: subprocess.Popen[str]) -> None:
    env = {**os.environ, "PHOTOSORTER_DATA": str(tmp_path / "data"), "PHOTOSORTER_LIBRARY": str(tmp_path / "library")}
    status = cli("status", env=env, cwd=tmp_path)
    assert status.communicate(timeout=60) and status.returncode == 0
    health = cli("health", env=env, cwd=tmp_path)
    assert health.communicate(timeout=60) and health.returncode == 0
    daemon.send_signal(signal.SIGTERM)
    daemon.communicate(timeout=60)
    assert daemon.returncode == 0
    health = cli("health", env=env, cwd=tmp_path)
    out, _ = health.communicate(timeout=60)
    assert health.returncode == 1 and out.startswith("unhealthy")


@pytest.mark.parametrize(("command", "where"), [("sort", "."), ("sort", "food"), ("sort", "food/new"),
                                               ("sort", "_unsure"), ("run", "."), ("run", "food")])
def test_an_inbox_that_is_the_library_or_inside_its_folders_is_refused(tmp_path: Path, tiny_model: Path,
                                                                      capfd: pytest.CaptureFixture[str],
                                                                      command: str, where: str) -> None:
    library, data = tmp_path / "library", tmp_path / "data"
    inbox = library / where
    inbox.mkdir(parents=True)
    (inbox / "IMG_1.jpg").write_bytes(jpeg_bytes((220, 20, 20)))
    options = tmp_path / "options.json"  # the daemon's, as the add-on gives them
    options.write_text(json.dumps({"inbox": str(inbox), "library": str(library), "data": str(data),
                                   "model": str(tiny_model)}))
    args = ["sort", str(inbox), "--library", str(library), "--data", str(data), "--model", str(tiny_model)] \
        if command == "sort" else ["run", "--options", str(options)]
    assert main(args) == 1
    assert f"inbox: {inbox}" in capfd.readouterr().err
    assert (inbox / "IMG_1.jpg").exists() and not (data / "heartbeat").exists()


def test_me_forget_without_yes_and_without_a_terminal_deletes_nothing(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "photosorter", "me", "forget", "--data", str(tmp_path / "data")],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PHOTOSORTER_LIBRARY": str(tmp_path / "library")})
    assert done.returncode == 1 and "--yes" in done.stderr
    assert "forgot" not in done.stdout


WATCHED: list[Path] = []  # the library check_library_lock looks at, while a test runs a command
SEEN: list[bool] = []  # each time the command opened a database while the library existed: was it locked?


def check_library_lock(event: str, args: tuple[object, ...]) -> None:
    """An audit hook (inert while WATCHED is empty): each time the command opens a SQLite database (its
    state first), is the library there and held by another descriptor's flock?"""
    if event != "sqlite3.connect" or not WATCHED or not WATCHED[0].is_dir():
        return
    fd = os.open(WATCHED[0], os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        SEEN.append(False)
    except BlockingIOError:
        SEEN.append(True)
    finally:
        os.close(fd)  # drops our flock, if we got it


@pytest.fixture(scope="session")
def lock_watch() -> None:
    """Install check_library_lock, once: an audit hook cannot be removed, so it stays for the rest of the
    run, inert outside the tests that fill WATCHED."""
    sys.addaudithook(check_library_lock)


WRITER_ARGS = {"sort": ["sort", "{inbox}"], "label": ["label", "{photo}", "scenery"],
               "resort": ["resort", "--category", "people"], "me": ["me", "forget", "--yes"],
               "digest": ["digest", "--dry-run"], "replies": ["replies", "--once"], "sync": ["sync"]}


@pytest.mark.usefixtures("lock_watch")
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_every_writer_holds_the_library_lock_and_those_that_fill_it_make_it_first(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capfd: pytest.CaptureFixture[str], command: str) -> None:
    library = tmp_path / "nowhere" / "library"  # its parent is missing too
    (tmp_path / "inbox").mkdir()
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes((20, 220, 20)))
    for key, value in {"PHOTOSORTER_LIBRARY": library, "PHOTOSORTER_DATA": tmp_path / "data",
                       "PHOTOSORTER_MODEL": tiny_model, "PHOTOSORTER_FACES": "false"}.items():
        monkeypatch.setenv(key, str(value))
    if command == "replies":  # nothing listens there: the command fails after it took the lock
        monkeypatch.setenv("PHOTOSORTER_IMAP_HOST", "127.0.0.1")
    if command == "sync":
        fake = request.getfixturevalue("fake_icloud")  # an account with no photos
        for key, value in {"APPLE_ID": fake.apple_id, "APPLE_PASSWORD": fake.password,
                           "PHOTOSORTER_ICLOUD_SERVER": fake.url, "REQUESTS_CA_BUNDLE": str(fake.cert)}.items():
            monkeypatch.setenv(key, value)
    argv = [a.format(inbox=tmp_path / "inbox", photo=tmp_path / "photo.jpg") for a in WRITER_ARGS[command]]
    if command not in FILLERS:  # faces and the digest put nothing in a library: they do not make one
        assert main(argv) == 0 and not library.parent.exists()
        library.mkdir(parents=True, mode=0o700)
    WATCHED[:], SEEN[:] = [library], []
    try:
        status = main(argv)
    finally:
        WATCHED.clear()
    assert library.is_dir() and library.stat().st_mode & 0o777 == 0o700
    assert SEEN and all(SEEN), SEEN
    assert status == (1 if command == "replies" else 0), capfd.readouterr().err


@pytest.mark.parametrize(("argv", "said"), [
    (["sort", "{missing}"], "inbox: "),
    (["sync"], "apple_id: set an Apple ID"),
    (["replies", "--once"], "imap_host: set an IMAP server"),
    (["resort", "--category", "cars"], "category: no category 'cars'"),
])
def test_a_writer_refused_for_its_settings_leaves_no_library_behind(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        argv: list[str], said: str) -> None:
    for name in ("APPLE_ID", "PHOTOSORTER_APPLE_ID", "PHOTOSORTER_IMAP_HOST"):
        monkeypatch.delenv(name, raising=False)
    library = tmp_path / "library"
    args = [a.format(missing=tmp_path / "missing") for a in argv]
    assert main([*args, "--library", str(library), "--data", str(tmp_path / "data"), "--model", str(tiny_model)]) == 1
    assert said in capfd.readouterr().err
    assert not library.exists()

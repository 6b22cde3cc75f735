"""The daemon's models run in a child process (``model_worker``): the daemon itself never loads
onnxruntime, a killed worker costs one log line and a retry, and the worker ends with its last session."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from photosorter.errors import ModelError
from photosorter.ml.lifetime import ModelLifetime
from photosorter.ml.textread import OnnxTextReader
from photosorter.ml.worker import InferenceWorker
from tests.conftest import write_photo
from tests.daemons import running_daemon


def worker_pids(parent: int | None = None) -> list[int]:
    """Model worker processes whose parent is ``parent`` (this process by default)."""
    parent = parent or os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # ended meanwhile
        if int(stat[1]) == parent and stat[0] != "Z" and b"photosorter.ml.worker" in command:
            found.append(int(entry.name))
    return found


def wait_until_gone(pid: int) -> None:
    """Until process ``pid`` has died (a zombie or reaped): a killed process may run on for a moment."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except OSError:
            return  # reaped
        assert time.monotonic() < deadline, f"process {pid} still runs after SIGKILL"
        time.sleep(0.01)


def feed() -> dict[str, np.ndarray]:
    return {"input": np.full((1, 16, 16, 3), 120, dtype=np.uint8)}


@pytest.fixture
def worker() -> Iterator[InferenceWorker]:
    made = InferenceWorker()
    yield made
    made.stop()


def test_a_killed_worker_is_replaced_once_with_one_log_line_and_the_call_answers(
        tiny_model: Path, worker: InferenceWorker, caplog: pytest.LogCaptureFixture) -> None:
    session = worker.open_session(tiny_model / "model.onnx", 1)
    names = [output.name for output in session.get_outputs()]
    first = session.run(names, feed())
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    with caplog.at_level(logging.WARNING, logger="photosorter.ml.worker"):
        again = session.run(names, feed())
    for before, after in zip(first, again, strict=True):
        np.testing.assert_array_equal(before, after)
    assert [r.getMessage() for r in caplog.records] == [
        "inference worker ended unexpectedly (exit code -9); starting a new one and trying again"]
    session.close()


def test_callers_at_once_all_get_their_answers_when_the_worker_is_killed_under_them(
        tiny_model: Path, worker: InferenceWorker, caplog: pytest.LogCaptureFixture) -> None:
    session = worker.open_session(tiny_model / "model.onnx", 1)
    names = [output.name for output in session.get_outputs()]
    expected = session.run(names, feed())[0]
    answers: list[np.ndarray] = []
    started, dead = threading.Barrier(4), threading.Event()

    def ask() -> None:  # three callers for two channels: one of them waits for a free one
        started.wait()
        answers.extend(session.run(names, feed())[0] for _ in range(29))  # the kill lands among these
        assert dead.wait(60)  # and one call surely after it, so the death is always noticed
        answers.append(session.run(names, feed())[0])

    callers = [threading.Thread(target=ask) for _ in range(3)]
    for caller in callers:
        caller.start()
    killed = worker.pid
    assert killed is not None
    with caplog.at_level(logging.WARNING, logger="photosorter.ml.worker"):
        started.wait()
        os.kill(killed, signal.SIGKILL)
        wait_until_gone(killed)
        dead.set()
        for caller in callers:
            caller.join(60)  # a guard against a hang, not a speed check
    assert not any(caller.is_alive() for caller in callers)
    assert len(answers) == 90 and all(np.array_equal(answer, expected) for answer in answers)
    assert worker.pid not in (None, killed)  # replaced
    assert [r.getMessage() for r in caplog.records] == [  # once, however many callers saw the death
        "inference worker ended unexpectedly (exit code -9); starting a new one and trying again"]
    session.close()


def test_the_worker_ends_with_its_last_session(tiny_model: Path, worker: InferenceWorker) -> None:
    one, two = (worker.open_session(tiny_model / "model.onnx", 1) for _ in range(2))
    pid = worker.pid
    one.close()
    assert worker.pid == pid and worker_pids() == [pid]
    two.close()
    assert worker.pid is None and worker_pids() == []


def test_a_model_the_worker_cannot_load_is_a_model_error_and_no_worker_stays(
        tmp_path: Path, worker: InferenceWorker) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load model file"):
        worker.open_session(broken, 1)
    assert worker_pids() == []


def test_the_daemon_process_never_loads_onnxruntime_its_worker_sorts(tmp_path: Path, tiny_model: Path) -> None:
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"library": str(tmp_path / "library"), "data": str(tmp_path / "data"),
                                   "inbox": str(tmp_path / "inbox"), "model": str(tiny_model),
                                   "settle_seconds": 0, "faces": False}))
    write_photo(tmp_path / "inbox", "a.jpg", (200, 20, 20))
    with running_daemon(options, tmp_path) as daemon:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "library").rglob("a.jpg")) and time.monotonic() < deadline:
            assert daemon.poll() is None, daemon.communicate()[0]
            time.sleep(0.1)
        assert list((tmp_path / "library").rglob("a.jpg"))
        assert len(worker_pids(daemon.pid)) == 1  # the model stays loaded in it until model_idle_minutes
        assert "onnxruntime" not in Path(f"/proc/{daemon.pid}/maps").read_text()


def test_a_worker_session_carries_the_model_metadata(worker: InferenceWorker) -> None:
    here = OnnxTextReader(threads=1).characters()  # the recogniser's alphabet lives in its metadata
    through_worker = OnnxTextReader(threads=1, lifetime=ModelLifetime(opener=worker.open_session))
    assert len(here) > 1000 and through_worker.characters() == here
    through_worker.model.lifetime.release_all()
    assert worker.pid is None

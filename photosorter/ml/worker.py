"""Model sessions in a child process that lives only while they are held: the daemon's choice.

onnxruntime is the largest library the daemon would otherwise keep between runs (36 MB resident once
imported, and freed sessions leave tens of MB of heap the allocator cannot hand back). Here the
daemon never imports it: an ``InferenceWorker`` starts ``python -m photosorter.ml.worker`` when the
first session is opened, runs every call there (small decoded arrays in, embeddings out), and ends
the child when the last session is released (``ModelLifetime`` does that after ``model_idle_minutes``).

The protocol is pickled tuples over socket pairs (``multiprocessing.connection``), one pair per
thread that may call at once (the sorter's two decode workers), each served by its own thread in the
child. The child opens a session the first time a call names it. When the child dies (killed, out of
memory), the call that noticed logs one line, starts a new child and tries once more; a second failure
is a ``ModelError``, which stops the sort and leaves the photo in the inbox for the next round.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from photosorter.errors import ModelError

log = logging.getLogger(__name__)

CHANNELS = 2  # calls that may run at once: the sorter's two decode workers
STOP_WAIT_S = 10.0


@dataclass(frozen=True)
class NodeName:
    name: str


@dataclass(frozen=True)
class ModelMeta:
    custom_metadata_map: dict[str, str]


class RemoteSession:
    """A session the worker's child runs: the ``Session`` protocol, plus ``close``."""

    def __init__(self, worker: InferenceWorker, key: int, inputs: list[str], outputs: list[str],
                 metadata: dict[str, str]) -> None:
        self._worker = worker
        self.key = key
        self._inputs = [NodeName(n) for n in inputs]
        self._outputs = [NodeName(n) for n in outputs]
        self._meta = ModelMeta(metadata)

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> list[Any]:
        result: list[Any] = self._worker.call(self.key, ("run", self.key, output_names, input_feed))
        return result

    def get_inputs(self) -> Sequence[NodeName]:
        return self._inputs

    def get_outputs(self) -> Sequence[NodeName]:
        return self._outputs

    def get_modelmeta(self) -> ModelMeta:
        return self._meta

    def close(self) -> None:
        self._worker.close_session(self.key)


class _Child:
    """One running child and the parent's ends of its channels."""

    def __init__(self) -> None:
        pairs = [socket.socketpair() for _ in range(CHANNELS)]
        fds = [child.fileno() for _, child in pairs]
        self.process = subprocess.Popen(  # its stderr is the daemon's: onnxruntime's own errors stay visible
            [sys.executable, "-m", "photosorter.ml.worker", *map(str, fds)], pass_fds=fds,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.free: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()  # None: stopped
        for parent, child in pairs:
            child.close()
            self.free.put(Connection(parent.detach()))
        self.opened: set[int] = set()  # sessions the child holds
        self.stopped = False

    def exchange(self, message: tuple[Any, ...]) -> Any:
        """Send ``message`` on a free channel (waiting for one) and return the answer; EOFError or OSError
        when the child is gone or stopped, which stops it for every caller."""
        connection = self.free.get()
        if connection is None:
            self.free.put(None)  # wakes the next caller waiting for a channel
            raise EOFError("the inference worker was stopped")
        try:
            connection.send(message)
            status, value = connection.recv()
        except BaseException:
            connection.close()
            self.stop()
            raise
        if self.stopped:
            connection.close()
        else:
            self.free.put(connection)
        if status == "error":
            raise ModelError(value)
        return value

    def stop(self) -> None:
        self.stopped = True
        while True:
            try:
                connection = self.free.get_nowait()
            except queue.Empty:
                break
            if connection is not None:
                connection.close()  # the child reads end-of-file and leaves
        self.free.put(None)
        try:
            self.process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class InferenceWorker:
    """Opens sessions in a child process, started on demand and ended when no session is open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._models: dict[int, tuple[Path | bytes, int]] = {}  # open sessions: what the child needs to open them
        self._next_key = 0

    @property
    def pid(self) -> int | None:
        """The running child's process id, None when none runs."""
        with self._lock:
            return self._child.process.pid if self._child is not None else None

    def open_session(self, model: Path | bytes, threads: int) -> RemoteSession:
        with self._lock:
            self._next_key += 1
            key = self._next_key
            self._models[key] = (model, threads)
        try:
            inputs, outputs, metadata = self.call(key, ("describe", key))
        except ModelError:
            self.close_session(key)
            raise
        return RemoteSession(self, key, inputs, outputs, metadata)

    def close_session(self, key: int) -> None:
        """Drop one session; the child ends with the last one."""
        with self._lock:
            self._models.pop(key, None)
            child, last = self._child, not self._models
            if last:
                self._child = None
        if child is None:
            return
        if last:
            child.stop()
        elif key in child.opened:
            child.opened.discard(key)
            with contextlib.suppress(EOFError, OSError):  # a dead child: the next call replaces it
                child.exchange(("close", key))

    def call(self, key: int, message: tuple[Any, ...]) -> Any:
        """Send ``message`` about session ``key`` to the child and return its answer; a dead child is
        replaced once (one log line) and the call repeated there."""
        for attempt in (1, 2):
            with self._lock:
                if key not in self._models:
                    raise ModelError("the model session was released")
                child = self._child = self._child or _Child()
            try:
                return self._call_on(child, key, message)
            except (EOFError, OSError) as exc:
                with self._lock:
                    noticed = self._child is child  # a second caller on the same child says nothing more
                    if noticed:
                        self._child = None
                child.stop()
                if attempt == 2:
                    raise ModelError(f"the inference worker ended twice in a row (exit code "
                                     f"{child.process.returncode}): {exc.__class__.__name__}") from exc
                if noticed:
                    log.warning("inference worker ended unexpectedly (exit code %s); starting a new one and "
                                "trying again", child.process.returncode)
        raise AssertionError("unreachable")

    def _call_on(self, child: _Child, key: int, message: tuple[Any, ...]) -> Any:
        if key not in child.opened:
            model, threads = self._models[key]
            child.exchange(("open", key, model, threads))
            child.opened.add(key)
        return child.exchange(message)

    def stop(self) -> None:
        """End the child and forget every session (the daemon stopping)."""
        with self._lock:
            child, self._child = self._child, None
            self._models.clear()
        if child is not None:
            child.stop()


# the child ------------------------------------------------------------------------------------------------
def _serve(connection: Connection, sessions: dict[int, Any], lock: threading.Lock) -> None:
    from photosorter.ml.runtime import open_session

    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # the daemon let go (or died): nothing left to do
        try:
            kind, key = message[0], message[1]
            if kind == "open":
                with lock:
                    if key not in sessions:
                        sessions[key] = open_session(message[2], message[3])
                answer: Any = None
            elif kind == "describe":
                session = sessions[key]
                answer = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()],
                          dict(session.get_modelmeta().custom_metadata_map))
            elif kind == "run":
                answer = sessions[key].run(message[2], message[3])
            else:  # close
                with lock:
                    sessions.pop(key, None)
                answer = None
            reply: tuple[str, Any] = ("ok", answer)
        except ModelError as exc:
            reply = ("error", exc.message)
        except Exception as exc:  # onnxruntime raises its own untyped errors; the caller words them
            reply = ("error", f"{exc.__class__.__name__}: {exc}")
        try:
            connection.send(reply)
        except OSError:
            return  # the daemon went away mid-call


def main(fds: list[int]) -> None:
    sessions: dict[int, Any] = {}
    lock = threading.Lock()
    threads = [threading.Thread(target=_serve, args=(Connection(fd), sessions, lock), daemon=True) for fd in fds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    os._exit(0)  # onnxruntime's thread pools need no orderly goodbye


if __name__ == "__main__":
    main([int(fd) for fd in sys.argv[1:]])

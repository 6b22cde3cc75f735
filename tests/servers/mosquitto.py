"""A real mosquitto broker on a free loopback port (anonymous, or with a password file), and a small MQTT
client that records what the broker delivers. Registered as a pytest plugin in tests/conftest.py."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from photosorter.config import MqttSettings
from photosorter.options import Secret
from tests.servers.dovecot import self_signed

INSTALL_HINT = "mosquitto is not installed: apt-get install -y mosquitto"
USERNAME = "photosorter"
PASSWORD = "s3cret-broker-pass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Mosquitto:
    """One private broker (no persistence: a restart forgets retained messages, as a lost broker would)."""

    host = "127.0.0.1"

    def __init__(self, workdir: Path, *, password: bool, tls: bool = False) -> None:
        binary = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None)
        if binary is None:
            pytest.fail(INSTALL_HINT)
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.username = USERNAME if password else ""
        self.password = PASSWORD if password else ""
        lines = [f"user {pwd.getpwuid(os.getuid()).pw_name}", f"listener {self.port} 127.0.0.1",
                 "persistence false", "log_dest stderr", "log_type error", "log_type warning"]
        if password:
            passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            password_file = workdir / "passwords"
            subprocess.run([passwd, "-c", "-b", str(password_file), USERNAME, PASSWORD], check=True,
                           capture_output=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines += ["allow_anonymous true"]
        self.tls_port = 0
        self.ca_file: Path | None = None
        if tls:  # a second listener with a self-signed certificate (its own CA), as people run at home
            self.tls_port = free_port()
            self.ca_file, key = self_signed(workdir)
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {self.ca_file}", f"certfile {self.ca_file}",
                      f"keyfile {key}"]
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        log.close()
        if not wait_for_port(self.port) or (self.tls_port and not wait_for_port(self.tls_port)):
            self.stop()
            pytest.fail(f"mosquitto did not start on port {self.port}: {(self.workdir / 'mosquitto.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def settings(self, **changes: Any) -> MqttSettings:
        values: dict[str, Any] = {"host": self.host, "port": self.port, "username": self.username,
                                  "password": Secret(self.password), "tls": False,
                                  "discovery_prefix": "homeassistant", "base_topic": "photosorter"}
        values.update(changes)
        return MqttSettings(**values)


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Listener:
    """A test MQTT client: subscribes to everything and keeps what arrives, in order."""

    def __init__(self, broker: Mosquitto | MqttSettings, subscribe: str = "#") -> None:
        self.messages: list[Message] = []
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{uuid.uuid4().hex[:8]}")
        if broker.username:
            password = broker.password
            self.client.username_pw_set(broker.username,
                                        password.reveal() if isinstance(password, Secret) else password)
        self.client.on_connect = lambda client, *_: client.subscribe(subscribe, qos=1)
        self.client.on_subscribe = lambda *_: self._connected.set()  # subscribed, not only connected
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._connected.wait(10), "listener could not connect and subscribe"

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(Message(message.topic, bytes(message.payload), bool(message.retain)))
            self._changed.notify_all()

    def latest(self, topic: str) -> Message | None:
        with self._changed:
            return next((m for m in reversed(self.messages) if m.topic == topic), None)

    def wait_for(self, check: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                result = check()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m.topic for m in self.messages})
                    raise AssertionError(f"timed out waiting for {what or check}; topics seen: {topics}")
                self._changed.wait(min(left, 0.1))

    def wait_for_message(self, topic: str, check: Callable[[Message], bool] = lambda m: True,
                         timeout_s: float = 10.0) -> Message:
        def found() -> Message | None:
            return next((m for m in reversed(self.messages) if m.topic == topic and check(m)), None)

        return self.wait_for(found, timeout_s, f"a message on {topic}")  # type: ignore[no-any-return]

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def clear(self) -> None:
        with self._changed:
            self.messages.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _running(broker: Mosquitto) -> Iterator[Mosquitto]:
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(params=["anonymous", "password"])
def mosquitto(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A fresh broker per test, once without and once with password authentication."""
    yield from _running(Mosquitto(tmp_path_factory.mktemp(f"mosquitto-{request.param}"),
                                  password=request.param == "password"))


@pytest.fixture
def anonymous_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    yield from _running(Mosquitto(tmp_path_factory.mktemp("mosquitto"), password=False))


@pytest.fixture
def password_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    yield from _running(Mosquitto(tmp_path_factory.mktemp("mosquitto"), password=True))


@pytest.fixture
def tls_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """With a second listener on TLS, its certificate self-signed (``ca_file``)."""
    yield from _running(Mosquitto(tmp_path_factory.mktemp("mosquitto"), password=True, tls=True))


@pytest.fixture
def listen() -> Iterator[Callable[..., Listener]]:
    """Make listeners; each is closed after the test."""
    made: list[Listener] = []

    def make(broker: Mosquitto, subscribe: str = "#") -> Listener:
        listener = Listener(broker, subscribe)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.close()

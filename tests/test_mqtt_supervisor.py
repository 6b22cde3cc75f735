"""Broker settings from the Home Assistant Supervisor's services API (a local HTTP server stands in for it)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from photosorter.adapters.supervisor import resolve_broker
from photosorter.config import load_settings

TOKEN = "supervisor-token-abc123"


class FakeSupervisor(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = 200
        self.body: object = {"result": "ok", "data": {
            "host": "core-mosquitto", "port": 1884, "ssl": True, "username": "addons", "password": "broker-pw-xyz",
            "protocol": "3.1.1", "addon": "core_mosquitto"}}
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/mqtt"


class _Handler(BaseHTTPRequestHandler):
    server: FakeSupervisor

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Authorization", "")))
        body = json.dumps(self.server.body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    server = FakeSupervisor()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_inside_the_add_on_the_supervisors_broker_is_used(supervisor: FakeSupervisor,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mqtt = resolve_broker(load_settings(environ={}).mqtt, {"SUPERVISOR_TOKEN": TOKEN}, supervisor.url)
    assert (mqtt.host, mqtt.port, mqtt.username, mqtt.password.reveal(), mqtt.tls) == (
        "core-mosquitto", 1884, "addons", "broker-pw-xyz", True)
    assert mqtt.enabled
    assert supervisor.requests == [("/services/mqtt", f"Bearer {TOKEN}")]
    assert TOKEN not in caplog.text and "broker-pw-xyz" not in caplog.text


def test_the_persons_own_broker_options_win_over_the_supervisor(supervisor: FakeSupervisor) -> None:
    own = load_settings(environ={"PHOTOSORTER_MQTT_HOST": "10.0.0.5"}).mqtt
    assert resolve_broker(own, {"SUPERVISOR_TOKEN": TOKEN}, supervisor.url) == own
    assert supervisor.requests == []


def test_outside_the_add_on_without_a_host_mqtt_stays_off(supervisor: FakeSupervisor) -> None:
    mqtt = resolve_broker(load_settings(environ={}).mqtt, {}, supervisor.url)
    assert not mqtt.enabled
    assert supervisor.requests == []


def test_no_broker_app_means_mqtt_off_with_the_supervisors_reason(supervisor: FakeSupervisor,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    supervisor.status, supervisor.body = 400, {"result": "error", "message": "Service not enabled"}
    caplog.set_level(logging.INFO)
    mqtt = resolve_broker(load_settings(environ={}).mqtt, {"SUPERVISOR_TOKEN": TOKEN}, supervisor.url)
    assert not mqtt.enabled
    assert "Service not enabled" in caplog.text and TOKEN not in caplog.text


def test_an_unreachable_supervisor_means_mqtt_off(supervisor: FakeSupervisor,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    url = supervisor.url
    supervisor.shutdown()
    supervisor.server_close()
    caplog.set_level(logging.INFO)
    assert not resolve_broker(load_settings(environ={}).mqtt, {"SUPERVISOR_TOKEN": TOKEN}, url).enabled
    assert "cannot ask the Supervisor" in caplog.text


def test_a_garbled_answer_means_mqtt_off(supervisor: FakeSupervisor) -> None:
    supervisor.body = ["not", "an", "object"]
    assert not resolve_broker(load_settings(environ={}).mqtt, {"SUPERVISOR_TOKEN": TOKEN}, supervisor.url).enabled

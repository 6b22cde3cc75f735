"""``photosorter mqtt`` checks the broker settings; ``open_publisher`` leaves MQTT off without a broker."""

from __future__ import annotations

import pytest

from photosorter.cli import main
from photosorter.cli.mqtt import open_publisher
from photosorter.config import load_settings
from tests.servers.mosquitto import Mosquitto, free_port


def test_mqtt_command_lists_the_entities_and_logs_in(password_mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in {"HOST": "127.0.0.1", "PORT": str(password_mosquitto.port),
                       "USERNAME": password_mosquitto.username, "PASSWORD": password_mosquitto.password}.items():
        monkeypatch.setenv(f"PHOTOSORTER_MQTT_{key}", value)
    assert main(["mqtt"]) == 0
    out = capsys.readouterr().out
    assert "button.photosorter_sync_now" in out and "sensor.photosorter_beer_count" in out
    assert "connected as photosorter" in out
    assert password_mosquitto.password not in out


def test_mqtt_command_says_why_the_broker_refused(password_mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PHOTOSORTER_MQTT_HOST", "127.0.0.1")
    monkeypatch.setenv("PHOTOSORTER_MQTT_PORT", str(password_mosquitto.port))
    assert main(["mqtt"]) == 1
    assert "refused" in capsys.readouterr().out


def test_mqtt_command_reports_an_unreachable_broker(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PHOTOSORTER_MQTT_HOST", "127.0.0.1")
    monkeypatch.setenv("PHOTOSORTER_MQTT_PORT", str(free_port()))
    assert main(["mqtt"]) == 1
    assert "cannot reach" in capsys.readouterr().out


def test_mqtt_command_refuses_a_wildcard_base_topic(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PHOTOSORTER_MQTT_BASE_TOPIC", "photos/#")
    assert main(["mqtt"]) == 1
    assert "mqtt_base_topic" in capsys.readouterr().err


def test_without_a_broker_mqtt_is_off() -> None:
    assert open_publisher(load_settings(environ={}), None, environ={}) is None

"""The image's install steps, run here: the same virtualenv the Dockerfile builds, then the daemon in it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers.mosquitto import Listener, Mosquitto, free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """python -m venv + pip install -r requirements/runtime.txt + pip install --no-deps . (as in the Dockerfile)."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for step in (["-r", str(ROOT / "requirements" / "runtime.txt")], ["--no-deps", str(ROOT)]):
        result = subprocess.run([*pip, *step], capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
    return venv


def test_image_venv_holds_no_training_stack(image_venv: Path) -> None:
    python = str(image_venv / "bin" / "python")
    for heavy in ("torch", "optimum", "transformers"):
        found = subprocess.run([python, "-c", f"import importlib.util as u; print(u.find_spec('{heavy}'))"],
                               capture_output=True, text=True, check=True)
        assert found.stdout.strip() == "None", heavy


def test_daemon_in_the_image_venv_comes_online_and_stops_on_sigterm_within_10_s(
        image_venv: Path, tmp_path: Path, tiny_model: Path, password_mosquitto: Mosquitto,
        listen: Callable[..., Listener]) -> None:
    listener = listen(password_mosquitto)
    web_port = free_port()
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"library": str(tmp_path / "media"), "data": str(tmp_path / "data"),
                                   "inbox": str(tmp_path / "share" / "inbox"), "model": str(tiny_model),
                                   "mqtt_host": password_mosquitto.host, "mqtt_port": password_mosquitto.port,
                                   "mqtt_username": password_mosquitto.username,
                                   "mqtt_password": password_mosquitto.password, "web_port": web_port,
                                   "web_host": "127.0.0.1"}))
    (tmp_path / "share" / "inbox").mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", ""), "TZ": "Europe/Berlin", "HOME": str(tmp_path)}
    process = subprocess.Popen([str(image_venv / "bin" / "python"), "-m", "photosorter", "run", "--options",
                                str(options)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        heartbeat = tmp_path / "data" / "heartbeat"
        deadline = time.monotonic() + 60
        while not heartbeat.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert heartbeat.exists(), process.communicate(timeout=10)[0]
        listener.wait_for_message("photosorter/available", lambda m: m.payload == b"online", timeout_s=30)
        listener.wait_for_message("homeassistant/sensor/photosorter/food_count/config")  # the device is discovered
        health = subprocess.run([str(image_venv / "bin" / "python"), "-m", "photosorter", "health", "--data",
                                 str(tmp_path / "data")], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert health.returncode == 0, health.stdout
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for path, expected in (("/", b"csrf-token"), ("/static/app.js", b"review"), ("/api/queue", b"total")):
            with opener.open(f"http://127.0.0.1:{web_port}{path}", timeout=10) as answer:
                assert expected in answer.read().lower(), path  # the page's files ship in the package
    except BaseException:
        process.kill()  # never leave a daemon behind when the test fails early
        process.wait(timeout=10)
        raise
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    assert time.monotonic() - started < 10
    assert "received SIGTERM" in output and "stopped" in output
    assert listener.latest("photosorter/available").payload == b"offline"  # type: ignore[union-attr]
    assert password_mosquitto.password not in output  # the broker password never reaches the log

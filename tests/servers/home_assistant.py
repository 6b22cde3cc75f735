"""A real Home Assistant core 2024.3.3 on a free loopback port, onboarded, with an MQTT config entry that
points at a test broker; talked to through its REST API. Installed by tests/servers/install_home_assistant.sh."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.servers.mosquitto import Mosquitto, free_port, wait_for_port

VERSION = "2024.3.3"
INSTALLER = "tests/servers/install_home_assistant.sh"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def home_assistant_venv() -> Path:
    """Where the installer puts Home Assistant (the same rule as the script)."""
    if os.environ.get("PHOTOSORTER_HA_VENV"):
        return Path(os.environ["PHOTOSORTER_HA_VENV"])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "photosorter" / f"home-assistant-{VERSION}"


CONFIGURATION = """\
homeassistant:
  name: photosorter test
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
logger:
  default: warning
"""


class HomeAssistant:
    def __init__(self, config_dir: Path, extra_config: str = "") -> None:
        venv = home_assistant_venv()
        self.hass = venv / "bin" / "hass"
        if not (venv / f".installed-{VERSION}").exists() or not self.hass.exists():
            pytest.fail(f"Home Assistant {VERSION} is not installed in {venv}: run `bash {INSTALLER}` "
                        "(or set PHOTOSORTER_HA_VENV to where it is)")
        self.config_dir = config_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.client_id = f"{self.base}/"
        self.token = ""
        self.log_mark = 0  # characters of home-assistant.log written before the part a test cares about
        (config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port) + extra_config)
        self.log_path = config_dir / "hass.out"
        self.process: subprocess.Popen[bytes] | None = None

    # process ----------------------------------------------------------------------------------------
    def start(self, timeout_s: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([str(self.hass), "-c", str(self.config_dir), "--skip-pip",
                                             "--log-no-color"], stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if not wait_for_port(self.port, timeout_s):
            self.stop()
            pytest.fail(f"Home Assistant did not start in {timeout_s:.0f} s; log:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def log_text(self) -> str:
        """Home Assistant's own log file (home-assistant.log in the config folder)."""
        log_file = self.config_dir / "home-assistant.log"
        return log_file.read_text(errors="replace") if log_file.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        log_file = self.config_dir / "home-assistant.log"
        if log_file.exists():
            text += log_file.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # REST -------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, form: bool = False,
                auth: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with _NO_PROXY.open(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: HTTP {exc.code} {exc.read()[:500]!r}") from exc
        return json.loads(raw) if raw else None

    def state(self, entity_id: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/api/states/{entity_id}")  # type: ignore[no-any-return]
        except AssertionError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise

    def wait_for_state(self, entity_id: str, check: Any = lambda s: s["state"] not in ("unavailable", "unknown"),
                       timeout_s: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.state(entity_id)
            if state is not None and check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{entity_id} is {state}; Home Assistant log:\n{self.log_tail(30)}")
            time.sleep(0.1)

    # set-up -----------------------------------------------------------------------------------------
    def onboard(self, timeout_s: float = 60) -> None:
        """Create the owner, get a token, finish the onboarding steps that stay off the internet."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.request("GET", "/api/onboarding", auth=False)
                break
            except (AssertionError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        user = self.request("POST", "/api/onboarding/users", {
            "client_id": self.client_id, "name": "Test", "username": "test", "password": "test-password-1",
            "language": "en"}, auth=False)
        token = self.request("POST", "/auth/token", {"grant_type": "authorization_code", "code": user["auth_code"],
                                                     "client_id": self.client_id}, form=True, auth=False)
        self.token = token["access_token"]
        self.request("POST", "/api/onboarding/analytics", {})
        self.request("POST", "/api/onboarding/integration", {"client_id": self.client_id,
                                                             "redirect_uri": self.client_id})

    def add_mqtt(self, broker: Mosquitto, timeout_s: float = 30) -> None:
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        answer: dict[str, Any] = {"broker": broker.host, "port": broker.port}
        if broker.username:
            answer |= {"username": broker.username, "password": broker.password}
        result = self.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", answer)
        assert result["type"] == "create_entry", result
        deadline = time.monotonic() + timeout_s
        while True:
            entries = self.request("GET", "/api/config/config_entries/entry")
            if any(e["domain"] == "mqtt" and e["state"] == "loaded" for e in entries):
                return
            assert time.monotonic() < deadline, f"MQTT entry not loaded: {entries}\n{self.log_tail()}"
            time.sleep(0.2)

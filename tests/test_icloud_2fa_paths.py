"""The 2FA paths of 2026 against the fake iCloud and its trusted-device push bridge (tests/servers/fake_push.py):
the real pyicloud client opens the bridge's websocket, posts the bridge steps and proves the typed code with
SPAKE2+. photosorter says a code was sent to the trusted devices exactly when the bridge pushed one, and the
code, typed on a terminal (or in Home Assistant: test_icloud_mqtt.py), completes the login. An account that
signs in with a security key is told so once, and nothing is sent or tried again."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from photosorter.adapters.icloud import IcloudSource
from photosorter.cli import main
from photosorter.cli.build import build_sorter, open_state
from photosorter.config import load_settings
from photosorter.core.sync import describe_security_key
from photosorter.daemon import Daemon
from photosorter.errors import AuthRequiredError
from photosorter.records import AuthState
from tests.clocks import FakeClock
from tests.conftest import settings_env
from tests.icloudfixtures import SIGNIN, open_source
from tests.servers.fake_icloud import FakeICloud

LEGACY_VERIFY = "/verify/trusteddevice/securitycode"
FULL_BRIDGE = ["step/0", "step/2", "step/4", "code/validate", "step/6"]


def bridge_requests(fake: FakeICloud) -> list[str]:
    return [path.rsplit("/bridge/", 1)[1] for _, path in fake.requests if "/bridge/" in path]


def sms_requests(fake: FakeICloud) -> int:
    return sum(1 for method, path in fake.requests if method == "PUT" and path.endswith("/verify/phone"))


def test_a_working_push_bridge_is_called_a_sent_code_and_its_code_logs_in(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "bridge"
    source = open_source(fake, tmp_path)
    state = source.auth_state()
    assert not state.ok and state.method == "trusted device"
    assert "Apple sent to your trusted Apple devices" in state.message
    assert bridge_requests(fake) == ["step/0"] and len(fake.bridge.pushes) == 1 and fake.prompts == 1
    assert sms_requests(fake) == 0  # the account has a trusted phone too: no SMS besides the push
    assert source.submit_code(fake.code).ok
    assert bridge_requests(fake) == FULL_BRIDGE and fake.count(LEGACY_VERIFY) == 0
    assert [push["nextStep"] for push in fake.bridge.pushes] == [2, 4, 6]
    assert all(len(c.acked) == 3 for c in fake.bridge.connections.values())  # every push acknowledged
    source.close()
    restarted = open_source(fake, tmp_path)
    assert restarted.auth_state().ok and fake.count(SIGNIN) == 1 and fake.prompts == 1
    print(f"\nbridge login: {len(fake.requests)} requests, bridge {bridge_requests(fake)}")


@pytest.mark.parametrize("pushed", [True, False], ids=["bridge pushes", "bridge refuses step 0"])
def test_a_code_is_said_to_be_on_the_devices_exactly_when_the_bridge_pushed_one(
        fake: FakeICloud, tmp_path: Path, pushed: bool) -> None:
    fake.two_factor = "bridge"
    if not pushed:
        fake.inject("/bridge/step/0", 503)
    source = open_source(fake, tmp_path)
    state = source.auth_state()
    source.close()  # closes the push websocket a pending code keeps open
    assert ("sent to your trusted Apple devices" in state.message) is pushed
    assert len(fake.bridge.pushes) == (1 if pushed else 0)
    assert sms_requests(fake) == (0 if pushed else 1)  # refused: pyicloud asks for an SMS, and that is said
    assert pushed or "sent by text message" in state.message
    assert fake.count(SIGNIN) == 1


def test_a_wrong_bridge_code_asks_again_and_the_right_one_logs_in(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "bridge"
    source = open_source(fake, tmp_path)
    assert not source.auth_state().ok
    wrong = source.submit_code("000000")
    assert not wrong.ok and "Wrong code" in wrong.message
    assert bridge_requests(fake) == ["step/0", "step/2"]  # the verifier's confirmation did not match: stop
    assert source.submit_code(fake.code).ok  # pyicloud 2026.10.1 checks the next code with the legacy verifier
    assert fake.count(LEGACY_VERIFY) == 1 and fake.count(SIGNIN) == 1 and fake.prompts == 1


def test_a_bridge_websocket_closed_before_the_code_is_not_called_a_wrong_code(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "bridge"
    source = open_source(fake, tmp_path)
    assert not source.auth_state().ok
    fake.bridge.hang_up()  # Apple ends the websocket while the person looks for the phone
    answer = source.submit_code(fake.code)
    assert not answer.ok and "not a wrong code" in answer.message  # was: "Wrong code"
    assert source.submit_code(fake.code).ok
    assert fake.count(SIGNIN) == 1 and fake.prompts == 1


def test_a_hanging_bridge_step_times_out_and_no_code_is_claimed(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "bridge"
    fake.inject("/bridge/step/0", 200, delay_s=30)
    data = tmp_path / "data"
    source = IcloudSource(fake.apple_id, fake.password, data_dir=data, state_path=data / "state.sqlite3",
                          server=fake.url, timeout_s=1.0)
    state = source.auth_state()  # was: 30 s for the step, 30 more for a push, then an SMS
    assert not state.ok and "no code was requested" in state.message
    assert sms_requests(fake) == 0 and fake.bridge.pushes == []
    source.close()


def test_icloud_login_on_a_terminal_takes_the_pushed_code(fake: FakeICloud, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    fake.two_factor = "bridge"
    for key, value in {**settings_env(tmp_path / "library", tmp_path / "data", tmp_path / "model.onnx"),
                       "APPLE_ID": fake.apple_id, "APPLE_PASSWORD": fake.password,
                       "PHOTOSORTER_ICLOUD_SERVER": fake.url}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{fake.code}\n"))
    monkeypatch.chdir(tmp_path)
    assert main(["icloud", "login", "--data", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "Apple sent to your trusted Apple devices" in out and "iCloud login complete" in out
    assert bridge_requests(fake) == FULL_BRIDGE and fake.prompts == 1
    assert fake.password not in out


def test_a_security_key_account_is_told_once_and_nothing_is_sent_or_tried_again(
        fake: FakeICloud, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake.two_factor = "security_key"  # the auth page also offers the push bridge and a phone: neither is used
    caplog.set_level(logging.INFO, "photosorter")
    source = open_source(fake, tmp_path)
    for _ in range(5):  # the daemon's checks and syncs
        state = source.auth_state()
        with pytest.raises(AuthRequiredError, match="security key"):
            source.fetch_new(tmp_path / "inbox")
    assert state.method == "security key" and state.message == describe_security_key(["YubiKey 5C"])
    assert "no code was sent" in state.message and "Remove All Security Keys" in state.message
    assert source.submit_code(fake.code) == state  # a code typed anyway never reaches Apple
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"iCloud: {state.message}"]
    assert fake.count(SIGNIN) == 1 and fake.prompts == 0 and fake.count("/securitycode") == 0
    assert fake.bridge.connections == {} and sms_requests(fake) == 0 and bridge_requests(fake) == []


def test_a_security_key_message_names_the_keys_cleanly() -> None:
    assert "(YubiKey 5C, Backup)" in describe_security_key(["YubiKey 5C", "Back\x1bup"])
    assert "only:" in describe_security_key(None) and "()" not in describe_security_key(["\n"])


def test_the_daemon_shows_a_security_key_account_as_one_problem_and_never_signs_in_again(
        fake: FakeICloud, tmp_path: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake.two_factor = "security_key"
    settings = load_settings({"library": str(tmp_path / "library"), "data": str(tmp_path / "data"),
                              "model": str(tiny_model), "inbox": str(tmp_path / "inbox"), "icloud_poll_minutes": 10},
                             environ={}, dotenv_path=tmp_path / "none")
    state = open_state(settings)
    clock = FakeClock()
    daemon = Daemon(settings=settings, sorter=build_sorter(settings, state), state=state, clock=clock,
                    zone=ZoneInfo("UTC"), source=open_source(fake, tmp_path))
    caplog.set_level(logging.INFO, "photosorter")
    for _ in range(6):  # six polls, an hour apart
        daemon.run_due_parts()
        clock.advance(3600)
    said = describe_security_key(["YubiKey 5C"])
    # the MQTT state
    assert daemon.status().auth == AuthState(ok=False, message=said, method="security key", blocked=True)
    assert daemon.attention()[0] == f"iCloud login needed: {said}"  # health and the digest
    logged = [(r.levelname, r.name) for r in caplog.records if said in r.getMessage()]
    assert logged == [("ERROR", "photosorter.adapters.icloud"), ("WARNING", "photosorter.daemon")]  # once each
    assert fake.count(SIGNIN) == 1 and fake.prompts == 0 and fake.bridge.connections == {}
    state.close()

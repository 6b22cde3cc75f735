"""The iCloud 2FA text entity end to end: codes on a real mosquitto reach the real pyicloud client, which
talks to the fake iCloud HTTPS server. Apple hears of a code only while one is pending, a few times an
hour, and never again of a rejected password."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from photosorter.adapters.icloud import IcloudSource
from photosorter.adapters.mqtt import MqttPublisher
from photosorter.config import load_settings
from photosorter.core.sync import CODE_TRIES, describe_security_key
from photosorter.records import AuthState, StatusSnapshot
from tests.icloudfixtures import SIGNIN, open_source
from tests.servers.fake_icloud import FakeICloud
from tests.servers.mosquitto import Listener, Mosquitto

VERIFY = "/securitycode"
CATEGORIES = load_settings(environ={}).classify.categories


class SourceControls:
    """What the daemon does with MQTT commands, reduced to the iCloud part."""

    def __init__(self, source: IcloudSource) -> None:
        self.source = source
        self.answers: list[AuthState] = []

    def request_sync(self) -> None:
        pass

    def set_paused(self, paused: bool) -> None:
        pass

    def submit_icloud_code(self, code: str) -> AuthState:
        answer = self.source.submit_code(code)
        self.answers.append(answer)
        return answer


def shown_states(listener: Listener) -> list[dict[str, str]]:
    """The iCloud part of every state message the listener got, in order."""
    return [m.json()["icloud"] for m in listener.messages if m.topic == "photosorter/state"]


def send_codes(broker: Mosquitto, listen: Callable[..., Listener], controls: SourceControls,
               codes: list[str]) -> Listener:
    """Type ``codes`` into the text entity, with the source's state shown on the state topic (retained).
    The publisher shows the state once at the start (the listener gets it retained) and again after each code:
    1 + len(codes) state messages, all received before the publisher leaves."""
    publisher = MqttPublisher(broker.settings(), CATEGORIES, controls).start()  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 10
        while not publisher.connected:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        publisher.publish_status(StatusSnapshot({}, 0, 0, 0, None, None, controls.source.auth_state(), False))
        listener = listen(broker)
        for code in codes:
            listener.publish("photosorter/icloud_code/set", code)
        while len(controls.answers) < len(codes):
            assert time.monotonic() < deadline + 20, f"{len(controls.answers)} of {len(codes)} codes handled"
            time.sleep(0.05)
        listener.wait_for(lambda: len(shown_states(listener)) >= 1 + len(codes), 20,
                          f"{1 + len(codes)} state messages")
    finally:
        publisher.close()
    return listener


def test_codes_after_a_rejected_password_never_sign_in_again(
        fake: FakeICloud, tmp_path: Path, anonymous_mosquitto: Mosquitto, listen: Callable[..., Listener]) -> None:
    source = open_source(fake, tmp_path, password="wrong password")
    assert "rejected" in source.auth_state().message
    controls = SourceControls(source)
    send_codes(anonymous_mosquitto, listen, controls, [f"{n:06d}" for n in range(10)])
    assert fake.count(SIGNIN) == 1 and fake.prompts == 0  # was 11 sign-ins
    assert all(not a.ok and "rejected" in a.message for a in controls.answers)


def test_a_pending_code_is_checked_with_apple_a_few_times_an_hour_at_most(
        fake: FakeICloud, tmp_path: Path, anonymous_mosquitto: Mosquitto, listen: Callable[..., Listener]) -> None:
    source = open_source(fake, tmp_path)
    assert not source.auth_state().ok
    controls = SourceControls(source)
    send_codes(anonymous_mosquitto, listen, controls, ["000000"] * 30)
    assert fake.count(VERIFY) == CODE_TRIES  # was 30
    assert "Try again in 60 min" in controls.answers[-1].message
    assert fake.count(SIGNIN) == 1 and fake.prompts == 1


def test_a_code_with_none_pending_never_reaches_apple(
        fake: FakeICloud, tmp_path: Path, anonymous_mosquitto: Mosquitto, listen: Callable[..., Listener]) -> None:
    fake.two_factor = "none"
    source = open_source(fake, tmp_path)
    assert source.auth_state().ok
    signins = fake.count(SIGNIN)
    controls = SourceControls(source)
    send_codes(anonymous_mosquitto, listen, controls, ["123456"] * 5)
    assert fake.count(SIGNIN) == signins and fake.count(VERIFY) == 0
    assert all(a.ok for a in controls.answers)


def test_a_code_the_push_bridge_showed_completes_the_login_from_home_assistant(
        fake: FakeICloud, tmp_path: Path, anonymous_mosquitto: Mosquitto, listen: Callable[..., Listener]) -> None:
    fake.two_factor = "bridge"  # Apple's 2026 trusted-device push (tests/servers/fake_push.py)
    source = open_source(fake, tmp_path)
    state = source.auth_state()
    assert "Apple sent to your trusted Apple devices" in state.message and len(fake.bridge.pushes) == 1
    controls = SourceControls(source)
    listener = send_codes(anonymous_mosquitto, listen, controls, [fake.code])
    assert controls.answers[-1].ok and source.auth_state().ok
    listener.wait_for_message("photosorter/state", lambda m: m.json()["icloud"]["login_needed"] == "OFF")
    shown = shown_states(listener)
    assert [s["login_needed"] for s in shown] == ["ON", "OFF"] and "trusted Apple devices" in shown[0]["message"]
    assert [p.rsplit("/bridge/", 1)[1] for _, p in fake.requests if "/bridge/" in p] == [
        "step/0", "step/2", "step/4", "code/validate", "step/6"]
    assert fake.count(SIGNIN) == 1 and fake.prompts == 1 and fake.count(VERIFY) == 0


def test_a_security_key_account_is_shown_on_mqtt_and_its_codes_never_reach_apple(
        fake: FakeICloud, tmp_path: Path, anonymous_mosquitto: Mosquitto, listen: Callable[..., Listener]) -> None:
    fake.two_factor = "security_key"  # the auth page also offers the push bridge and a phone: neither is used
    source = open_source(fake, tmp_path)
    controls = SourceControls(source)
    listener = send_codes(anonymous_mosquitto, listen, controls, ["123456", "654321"])
    said = describe_security_key(["YubiKey 5C"])  # the key's name as Apple lists it
    shown = {"login_needed": "ON", "message": said, "method": "security key"}
    assert shown_states(listener) == [shown] * 3  # at the start (retained), then after each of the two codes
    assert all(a.message == said for a in controls.answers)
    assert fake.count(SIGNIN) == 1 and fake.count(VERIFY) == 0 and fake.prompts == 0
    assert fake.bridge.connections == {} and fake.count("/verify/phone") == 0

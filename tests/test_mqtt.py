"""MqttPublisher against a real mosquitto on loopback (anonymous and with a password)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from photosorter.adapters.mqtt import MqttPublisher
from photosorter.config import MqttSettings, load_settings
from photosorter.options import Secret
from photosorter.records import AuthState, CorrectionEvent, PhotoEvent, StatusSnapshot
from tests.mqtt_controls import GOOD_CODE, RecordingControls, snapshot
from tests.servers.mosquitto import Listener, Message, Mosquitto, free_port

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = load_settings(environ={}).classify.categories
ENTITIES = len(CATEGORIES) + 12

MakePublisher = Callable[..., MqttPublisher]


@pytest.fixture
def publisher() -> Iterator[MakePublisher]:
    """Make started publishers (reconnecting after 1 s); each is closed after the test."""
    made: list[MqttPublisher] = []

    def make(settings: MqttSettings, controls: RecordingControls | None = None,
             categories: tuple[object, ...] = CATEGORIES) -> MqttPublisher:
        made.append(MqttPublisher(settings, categories, controls, version="9.9.9",  # type: ignore[arg-type]
                                  reconnect_delay_s=(1, 2)).start())
        return made[-1]

    yield make
    for item in made:
        item.close()


def wait_connected(publisher: MqttPublisher, timeout_s: float = 10, *, with_state: bool = False) -> None:
    """Until the publisher is connected and what it sends on connecting has reached the broker."""
    deadline = time.monotonic() + timeout_s
    while not publisher.connected:
        assert time.monotonic() < deadline, "publisher did not connect"
        time.sleep(0.02)
    probe = Listener(publisher.settings)
    try:
        probe.wait_for(lambda: len({m.topic for m in probe.messages if m.payload} & set(publisher.discovery))
                       == len(publisher.discovery), timeout_s, "discovery")
        if with_state:
            probe.wait_for_message(publisher.topics.state, timeout_s=timeout_s)
    finally:
        probe.close()


def controlled(broker: Mosquitto, publisher: MakePublisher,
               status: StatusSnapshot | None = None) -> RecordingControls:
    """A started publisher whose commands reach recorded controls; connected, and with ``status`` (when
    given) published and arrived at the broker."""
    controls = RecordingControls()
    sender = publisher(broker.settings(), controls)
    if status is not None:
        sender.publish_status(status)
    wait_connected(sender, with_state=status is not None)
    return controls


def discovery_configs(listener: Listener) -> dict[str, Message]:
    return {m.topic: m for m in listener.messages
            if m.topic.startswith("homeassistant/") and m.topic.endswith("/config")}


def test_discovery_and_state_arrive_retained_and_well_formed(
        mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    sender = publisher(mosquitto.settings())
    sender.publish_status(snapshot())
    wait_connected(sender, with_state=True)
    listener = listen(mosquitto)  # connects afterwards: everything it gets was retained
    listener.wait_for(lambda: len(discovery_configs(listener)) == ENTITIES, what="every discovery config")
    state = listener.wait_for_message("photosorter/state")
    assert state.retain
    assert state.json()["library"]["food"] == 12
    assert listener.wait_for_message("photosorter/last_sync").payload == b"2026-11-25T08:30:00+00:00"
    assert listener.wait_for_message("photosorter/available").payload == b"online"
    for message in discovery_configs(listener).values():
        assert message.retain
        config = message.json()
        assert config["device"]["identifiers"] == ["photosorter"]
        assert config["origin"]["sw_version"] == "9.9.9"


def test_the_sync_button_requests_a_sync(
        mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    controls = controlled(mosquitto, publisher)
    listen(mosquitto).publish("photosorter/sync/set", "PRESS")
    assert controls.changed.wait(5)
    assert controls.syncs == 1


def test_the_2fa_text_entity_submits_the_code_and_shows_the_result(
        mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener],
        caplog: pytest.LogCaptureFixture) -> None:
    controls = controlled(mosquitto, publisher, snapshot())
    listener = listen(mosquitto)
    caplog.set_level(logging.DEBUG, "photosorter")
    listener.publish("photosorter/icloud_code/set", "123 456")
    state = listener.wait_for_message("photosorter/state", lambda m: m.json()["icloud"]["login_needed"] == "OFF")
    assert controls.codes == [GOOD_CODE]
    assert state.json()["icloud"]["message"] == ""
    assert "123" not in caplog.text


def test_a_refused_2fa_code_keeps_the_problem_on_with_the_new_message(
        anonymous_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    controlled(anonymous_mosquitto, publisher, snapshot())
    listener = listen(anonymous_mosquitto)
    listener.publish("photosorter/icloud_code/set", "654321")
    state = listener.wait_for_message("photosorter/state",
                                      lambda m: m.json()["icloud"]["message"] == "That code was not accepted.")
    assert state.json()["icloud"]["login_needed"] == "ON"


def test_a_code_sent_when_no_login_is_due_raises_no_problem(
        anonymous_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    controls = controlled(anonymous_mosquitto, publisher, snapshot(auth=AuthState(ok=True)))
    listener = listen(anonymous_mosquitto, "photosorter/state")
    listener.publish("photosorter/icloud_code/set", "654321")
    assert controls.changed.wait(5)
    time.sleep(0.3)
    assert all(m.json()["icloud"]["login_needed"] == "OFF" for m in listener.messages)


def test_the_paused_switch_pauses_and_resumes_sorting(
        anonymous_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    controls = controlled(anonymous_mosquitto, publisher, snapshot())
    listener = listen(anonymous_mosquitto)
    listener.publish("photosorter/paused/set", "ON")
    listener.wait_for_message("photosorter/state", lambda m: m.json()["paused"] == "ON")
    listener.clear()
    listener.publish("photosorter/paused/set", "OFF")
    listener.wait_for_message("photosorter/state", lambda m: m.json()["paused"] == "OFF")
    assert controls.paused == [True, False]


def test_junk_command_payloads_are_logged_and_ignored(
        anonymous_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener],
        caplog: pytest.LogCaptureFixture) -> None:
    controls = controlled(anonymous_mosquitto, publisher)
    listener = listen(anonymous_mosquitto)
    caplog.set_level(logging.INFO, "photosorter")
    junk = [("photosorter/sync/set", b"\xff\xfe"), ("photosorter/sync/set", b"x" * 5000),
            ("photosorter/paused/set", b"maybe"), ("photosorter/icloud_code/set", b"my-password-99"),
            ("photosorter/icloud_code/set", "１２３４５６".encode()),  # full-width digits, which \d matches
            ("photosorter/icloud_code/set", "١٢٣٤٥٦".encode())]  # Arabic-Indic digits
    for topic, payload in junk:
        listener.publish(topic, payload)
    listener.publish("photosorter/sync/set", "PRESS")  # still listening after the junk
    assert controls.changed.wait(5)
    assert (controls.syncs, controls.codes, controls.paused) == (1, [], [])
    ignored = [r for r in caplog.records if "ignored a message" in r.getMessage()]
    assert len(ignored) == len(junk)
    assert "my-password-99" not in caplog.text


def test_photo_and_correction_events_are_published_once_each(
        mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    sender = publisher(mosquitto.settings())
    wait_connected(sender)
    listener = listen(mosquitto, "photosorter/event")
    sender.publish_event(PhotoEvent(3, "beer", 0.87, 0.3, False, "IMG_0042.HEIC", "beer/IMG_0042.HEIC"))
    sender.publish_correction(CorrectionEvent(3, "beer", "food", "email"))
    listener.wait_for(lambda: len(listener.messages) == 2, what="two events")
    first, second = (m.json() for m in listener.messages)
    assert first == {"event_type": "sorted", "photo_id": 3, "category": "beer", "score": 0.87, "margin": 0.3,
                     "unsure": False, "filename": "IMG_0042.HEIC", "library_path": "beer/IMG_0042.HEIC"}
    assert second["event_type"] == "corrected" and second["category"] == "food"
    assert not any(m.retain for m in listener.messages)


CHILD = """
import sys, time
from photosorter.adapters.mqtt import MqttPublisher
from photosorter.config import MqttSettings, load_settings
from photosorter.options import Secret
from tests.mqtt_controls import snapshot
settings = MqttSettings("127.0.0.1", int(sys.argv[1]), sys.argv[2], Secret(sys.argv[3]), False, "homeassistant",
                        "photosorter")
publisher = MqttPublisher(settings, load_settings(environ={}).classify.categories).start()
publisher.publish_status(snapshot())
while not publisher.connected:
    time.sleep(0.02)
print("connected", flush=True)
time.sleep(120)
"""


def test_availability_goes_offline_when_the_process_is_killed(
        mosquitto: Mosquitto, listen: Callable[..., Listener]) -> None:
    listener = listen(mosquitto, "photosorter/available")
    with subprocess.Popen([sys.executable, "-c", CHILD, str(mosquitto.port), mosquitto.username,
                           mosquitto.password], cwd=ROOT, stdout=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == b"connected\n"
            listener.wait_for_message("photosorter/available", lambda m: m.payload == b"online")
            child.send_signal(signal.SIGKILL)
            child.wait(5)
            listener.wait_for_message("photosorter/available", lambda m: m.payload == b"offline")
        finally:
            child.kill()


def test_a_clean_close_says_offline(
        anonymous_mosquitto: Mosquitto, listen: Callable[..., Listener]) -> None:
    sender = MqttPublisher(anonymous_mosquitto.settings(), CATEGORIES).start()
    wait_connected(sender)
    sender.close()
    listener = listen(anonymous_mosquitto, "photosorter/available")
    assert listener.wait_for_message("photosorter/available").payload == b"offline"


def test_a_broker_restart_is_survived_and_only_the_latest_state_is_sent_again(
        mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "photosorter")
    sender = publisher(mosquitto.settings())
    sender.publish_status(snapshot(sorted_today=1))
    wait_connected(sender, with_state=True)
    mosquitto.stop()  # no persistence: the restarted broker has forgotten every retained message
    deadline = time.monotonic() + 10
    while sender.connected:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    for count in (2, 3, 4):
        sender.publish_status(snapshot(sorted_today=count))
    sender.publish_event(PhotoEvent(1, "food", 0.9, 0.5, False, "a.jpg", "food/a.jpg"))
    # Publishing never waits for the broker: a publish that did would wait out paho's connect attempt (seconds);
    # 5 s for four publishes holds on a CPU ten times slower than this one (measured here: under 1 ms).
    assert time.monotonic() - started < 5
    time.sleep(1.5)
    mosquitto.start()
    listener = listen(mosquitto)
    listener.wait_for(lambda: len(discovery_configs(listener)) == ENTITIES, timeout_s=15, what="rediscovery")
    state = listener.wait_for_message("photosorter/state")
    assert state.json()["sorted_today"] == 4
    assert [m.json()["sorted_today"] for m in listener.messages if m.topic == "photosorter/state"] == [4]
    assert listener.latest("photosorter/available").payload == b"online"  # type: ignore[union-attr]
    assert listener.latest("photosorter/event") is None
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost the connection" in m for m in messages) == 1
    assert sum("connected to" in m for m in messages) == 2
    assert not any("cannot reach" in m for m in messages)  # the loss was said once; retries are quiet


def discovered(mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> Listener:
    """A connected publisher that has published its state, and a listener that has seen its discovery."""
    sender = publisher(mosquitto.settings())
    sender.publish_status(snapshot())
    wait_connected(sender, with_state=True)
    listener = listen(mosquitto)
    listener.wait_for(lambda: len(discovery_configs(listener)) == ENTITIES, what="discovery")
    return listener


def test_home_assistant_coming_online_triggers_rediscovery(
        anonymous_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    listener = discovered(anonymous_mosquitto, publisher, listen)
    listener.clear()
    listener.publish("homeassistant/status", "online")
    listener.wait_for(lambda: len(discovery_configs(listener)) == ENTITIES, what="rediscovery")
    listener.wait_for_message("photosorter/state")
    assert not any(m.retain for m in listener.messages)  # sent again live, not replayed


def test_a_flood_of_home_assistant_birth_messages_is_answered_once(
        anonymous_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    listener = discovered(anonymous_mosquitto, publisher, listen)
    for _ in range(100):
        listener.publish("homeassistant/status", "online")
    listener.clear()
    listener.wait_for(lambda: len(discovery_configs(listener)) == ENTITIES, what="rediscovery")
    time.sleep(2.5)  # a second round would have come by now
    ours = [m for m in listener.messages if m.topic != "homeassistant/status"]
    assert len(ours) <= ENTITIES + 3  # one round: discovery, availability, state, last sync (was 2,732)


def test_a_retained_command_is_ignored(
        anonymous_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "photosorter")
    listener = listen(anonymous_mosquitto)
    listener.publish("photosorter/paused/set", "ON", retain=True)  # left by some automation long ago
    listener.publish("photosorter/icloud_code/set", "123456", retain=True)
    controls = controlled(anonymous_mosquitto, publisher)
    listener.publish("photosorter/sync/set", "PRESS")  # a live command still works
    assert controls.changed.wait(5)
    time.sleep(0.3)
    assert (controls.syncs, controls.paused, controls.codes) == (1, [], [])
    assert sum("retained" in r.getMessage() for r in caplog.records) == 2


def test_the_entity_of_a_removed_category_is_deleted(
        anonymous_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    old = publisher(anonymous_mosquitto.settings())
    wait_connected(old)
    old.close()
    without_beer = tuple(c for c in CATEGORIES if c.name != "beer")
    wait_connected(publisher(anonymous_mosquitto.settings(), categories=without_beer))
    listener = listen(anonymous_mosquitto, "homeassistant/#")
    listener.wait_for(lambda: len(discovery_configs(listener)) >= ENTITIES - 1, what="current discovery")
    time.sleep(0.3)
    beer = listener.latest("homeassistant/sensor/photosorter/beer_count/config")
    assert beer is None or beer.payload == b""


def test_a_wrong_password_is_logged_once_and_never_shown(
        password_mosquitto: Mosquitto, publisher: MakePublisher, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sender = publisher(password_mosquitto.settings(password=Secret("wrong-horse-battery")))
    time.sleep(3.5)  # a few retries
    assert not sender.connected
    refused = [r for r in caplog.records if "refused the connection" in r.getMessage()]
    assert len(refused) == 1 and "mqtt_password" in refused[0].getMessage()
    assert "wrong-horse-battery" not in caplog.text


def test_sorting_goes_on_when_no_broker_answers(
        publisher: MakePublisher, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "photosorter")
    settings = MqttSettings("127.0.0.1", free_port(), "", Secret(""), False, "homeassistant", "photosorter")
    sender = publisher(settings)
    started = time.monotonic()
    for count in range(50):
        sender.publish_status(snapshot(sorted_today=count))
        sender.publish_event(PhotoEvent(count, "food", 0.9, 0.5, False, "a.jpg", "food/a.jpg"))
    assert time.monotonic() - started < 5  # never blocked by the missing broker (measured here: a few ms)
    time.sleep(2.5)
    assert sum("cannot reach broker" in r.getMessage() for r in caplog.records) == 1


# paho leaves the socket of a failed TLS handshake to the garbage collector (a ResourceWarning, not ours)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_self_signed_broker_is_reached_over_tls_with_its_ca_file_and_refused_without(
        tls_mosquitto: Mosquitto, publisher: MakePublisher, listen: Callable[..., Listener]) -> None:
    assert tls_mosquitto.ca_file is not None
    listener = listen(tls_mosquitto)  # the plain listener of the same broker
    over_tls = tls_mosquitto.settings(host="localhost", port=tls_mosquitto.tls_port, tls=True)
    untrusted = publisher(over_tls)
    trusted = publisher(replace(over_tls, ca_file=str(tls_mosquitto.ca_file)))
    listener.wait_for(lambda: trusted.connected, what="a TLS connection with the broker's CA")
    assert listener.wait_for_message("photosorter/available").payload == b"online"
    assert not untrusted.connected  # the system CAs do not know a self-signed broker

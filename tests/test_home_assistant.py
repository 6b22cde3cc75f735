"""A real Home Assistant core (2024.3.3) discovers photosorter over MQTT: entities, states and controls.

Run alone with ``pytest -m home_assistant``. Home Assistant is installed into its own virtualenv by
tests/servers/install_home_assistant.sh (``.ci/run`` does it); without it these tests fail and say so.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from photosorter.adapters.mqtt import MqttPublisher
from photosorter.config import load_settings
from photosorter.records import PhotoEvent
from tests.mqtt_controls import GOOD_CODE, RecordingControls, snapshot
from tests.servers.home_assistant import HomeAssistant
from tests.servers.mosquitto import Listener, Mosquitto

pytestmark = pytest.mark.home_assistant

CATEGORIES = load_settings(environ={}).classify.categories
ROOT = Path(__file__).resolve().parents[1]
NOTIFICATIONS = "notifications.txt"
# DOCS.md's example automation runs as written; its notify.notify writes to a file here.
AUTOMATION_CONFIG = f"""\
automation: !include automations.yaml
notify:
  - platform: file
    name: notify
    filename: {NOTIFICATIONS}
"""


def docs_automation() -> str:
    """The example automation in DOCS.md's MQTT section."""
    docs = (ROOT / "DOCS.md").read_text()
    section = docs[docs.index("## MQTT and Home Assistant"):]
    match = re.search(r"```yaml\n(alias: Beer photo arrived\n.*?)```", section, flags=re.S)
    assert match, "DOCS.md has no beer automation example"
    return match.group(1).rstrip("\n")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path_factory.mktemp("ha-mosquitto"), password=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def birth_listener(broker: Mosquitto) -> Iterator[Listener]:
    """Watches Home Assistant's birth message and what photosorter sends after it."""
    listener = Listener(broker, "homeassistant/#")
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def home_assistant(broker: Mosquitto, birth_listener: Listener,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeAssistant]:
    config_dir = tmp_path_factory.mktemp("ha-config")
    (config_dir / "automations.yaml").write_text("- " + docs_automation().replace("\n", "\n  ") + "\n")
    hass = HomeAssistant(config_dir, AUTOMATION_CONFIG)
    hass.start()
    try:
        hass.onboard()
        hass.add_mqtt(broker)
        # The automation started before MQTT was set up (its trigger failed): turn it off and on again to
        # attach the trigger (a reload keeps unchanged automations), and judge the log from here on.
        automation = {"entity_id": "automation.beer_photo_arrived"}
        hass.request("POST", "/api/services/automation/turn_off", automation)
        hass.wait_for_state(automation["entity_id"], lambda s: s["state"] == "off")
        hass.request("POST", "/api/services/automation/turn_on", automation)
        hass.wait_for_state(automation["entity_id"], lambda s: s["state"] == "on")
        hass.log_mark = len(hass.log_text())
        yield hass
    finally:
        hass.stop()


@pytest.fixture(scope="module")
def controls() -> RecordingControls:
    return RecordingControls()


@pytest.fixture(scope="module")
def photosorter(home_assistant: HomeAssistant, broker: Mosquitto,
                controls: RecordingControls) -> Iterator[MqttPublisher]:
    publisher = MqttPublisher(broker.settings(), CATEGORIES, controls, version="0.1.0", reconnect_delay_s=(1, 2))
    publisher.publish_status(snapshot())
    publisher.start()
    yield publisher
    publisher.close()


def test_home_assistant_shows_the_published_counts(home_assistant: HomeAssistant,
                                                   photosorter: MqttPublisher) -> None:
    food = home_assistant.wait_for_state("sensor.photosorter_food_count")
    assert food["state"] == "12"
    assert food["attributes"]["friendly_name"] == "Photosorter Food"
    assert food["attributes"]["state_class"] == "total"
    expected = {"sensor.photosorter_beer_count": "3", "sensor.photosorter_screenshot_count": "0",
                "sensor.photosorter_sorted_today": "7", "sensor.photosorter_unsure": "2",
                "sensor.photosorter_failed": "1", "sensor.photosorter_icloud_sync_progress": "25.0",
                "switch.photosorter_paused": "off", "text.photosorter_icloud_code": "",
                "binary_sensor.photosorter_model_drift": "off"}
    for entity_id, state in expected.items():
        assert home_assistant.wait_for_state(entity_id, lambda s: True)["state"] == state, entity_id
    last_sync = home_assistant.wait_for_state("sensor.photosorter_last_sync")
    assert dt.datetime.fromisoformat(last_sync["state"]) == dt.datetime(2026, 11, 25, 8, 30, tzinfo=dt.UTC)
    progress = home_assistant.wait_for_state("sensor.photosorter_icloud_sync_progress")
    assert (progress["attributes"]["done"], progress["attributes"]["total"]) == (250, 1000)
    assert (progress["attributes"]["downloaded"], progress["attributes"]["eta_seconds"]) == (240, 180)


def test_home_assistant_shows_that_an_icloud_login_is_needed(home_assistant: HomeAssistant,
                                                             photosorter: MqttPublisher) -> None:
    problem = home_assistant.wait_for_state("binary_sensor.photosorter_icloud_login_needed")
    assert problem["state"] == "on"
    assert problem["attributes"]["device_class"] == "problem"
    assert problem["attributes"]["message"] == "Enter the code sent to your iPhone."


def test_home_assistant_shows_the_daemons_problems(home_assistant: HomeAssistant,
                                                  photosorter: MqttPublisher) -> None:
    home_assistant.wait_for_state("binary_sensor.photosorter_problem", lambda s: s["state"] == "off")
    photosorter.publish_status(snapshot(problems=("inbox: folder not found",)))
    problem = home_assistant.wait_for_state("binary_sensor.photosorter_problem", lambda s: s["state"] == "on")
    assert problem["attributes"]["problems"] == ["inbox: folder not found"]
    photosorter.publish_status(snapshot())
    home_assistant.wait_for_state("binary_sensor.photosorter_problem", lambda s: s["state"] == "off")


def test_pressing_sync_now_in_home_assistant_requests_a_sync(home_assistant: HomeAssistant,
                                                             photosorter: MqttPublisher,
                                                             controls: RecordingControls) -> None:
    home_assistant.wait_for_state("button.photosorter_sync_now", lambda s: s["state"] != "unavailable")
    before = controls.syncs
    home_assistant.request("POST", "/api/services/button/press", {"entity_id": "button.photosorter_sync_now"})
    deadline = time.monotonic() + 10
    while controls.syncs == before:
        assert time.monotonic() < deadline, "the button press never reached photosorter"
        time.sleep(0.05)
    assert controls.syncs == before + 1


def test_a_2fa_code_typed_in_home_assistant_reaches_the_icloud_source(home_assistant: HomeAssistant,
                                                                      photosorter: MqttPublisher,
                                                                      controls: RecordingControls) -> None:
    home_assistant.wait_for_state("text.photosorter_icloud_code", lambda s: s["state"] != "unavailable")
    home_assistant.request("POST", "/api/services/text/set_value",
                           {"entity_id": "text.photosorter_icloud_code", "value": GOOD_CODE})
    home_assistant.wait_for_state("binary_sensor.photosorter_icloud_login_needed", lambda s: s["state"] == "off")
    assert controls.codes == [GOOD_CODE]
    assert home_assistant.wait_for_state("text.photosorter_icloud_code", lambda s: True)["state"] == ""


def test_the_sorting_paused_switch_in_home_assistant_pauses_sorting(home_assistant: HomeAssistant,
                                                                    photosorter: MqttPublisher,
                                                                    controls: RecordingControls) -> None:
    home_assistant.wait_for_state("switch.photosorter_paused", lambda s: s["state"] == "off")
    home_assistant.request("POST", "/api/services/switch/turn_on", {"entity_id": "switch.photosorter_paused"})
    home_assistant.wait_for_state("switch.photosorter_paused", lambda s: s["state"] == "on")
    assert controls.paused == [True]


def test_a_sorted_photo_fires_the_event_entity(home_assistant: HomeAssistant, photosorter: MqttPublisher) -> None:
    home_assistant.wait_for_state("event.photosorter_photo", lambda s: s["state"] != "unavailable")
    photosorter.publish_event(PhotoEvent(42, "beer", 0.93, 0.5, False, "IMG_0042.JPG", "beer/IMG_0042.JPG"))
    event = home_assistant.wait_for_state("event.photosorter_photo", lambda s: s["attributes"].get("category"))
    assert event["attributes"]["event_type"] == "sorted"
    assert event["attributes"]["category"] == "beer"
    assert event["attributes"]["library_path"] == "beer/IMG_0042.JPG"


def test_the_docs_example_automation_notifies_about_beer_photos_only(home_assistant: HomeAssistant,
                                                                     photosorter: MqttPublisher) -> None:
    home_assistant.wait_for_state("automation.beer_photo_arrived", lambda s: s["state"] == "on")
    photosorter.publish_event(PhotoEvent(50, "food", 0.8, 0.5, False, "IMG_0050.JPG", "food/IMG_0050.JPG"))
    photosorter.publish_event(PhotoEvent(51, "beer", 0.875, 0.5, False, "IMG_0051.JPG", "beer/IMG_0051.JPG"))
    notified = home_assistant.config_dir / NOTIFICATIONS
    deadline = time.monotonic() + 10
    while "IMG_0051" not in (notified.read_text() if notified.exists() else ""):
        assert time.monotonic() < deadline, f"no notification; Home Assistant log:\n{home_assistant.log_tail(30)}"
        time.sleep(0.1)
    text = notified.read_text()
    assert "New beer photo IMG_0051.JPG (88 % sure), in beer/IMG_0051.JPG" in text
    assert "IMG_0050" not in text


def test_home_assistant_birth_makes_photosorter_send_discovery_again(birth_listener: Listener,
                                                                     photosorter: MqttPublisher) -> None:
    birth = birth_listener.wait_for_message("homeassistant/status", lambda m: m.payload == b"online", timeout_s=20)
    position = birth_listener.messages.index(birth)
    birth_listener.wait_for(
        lambda: any(m.topic.endswith("/food_count/config") for m in birth_listener.messages[position:]),
        what="discovery sent again after Home Assistant's birth message")


def test_home_assistant_logged_no_mqtt_problem(home_assistant: HomeAssistant, photosorter: MqttPublisher) -> None:
    log = home_assistant.log_text()[home_assistant.log_mark:]
    problems = [line for line in log.splitlines()
                if ("WARNING" in line or "ERROR" in line) and ("mqtt" in line.lower() or "photosorter" in line)]
    assert problems == [], "\n".join(problems)


"""Discovery payloads, state and event JSON, and command validation (pure functions, no broker)."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

from photosorter.config import load_settings
from photosorter.core.discovery import (
    Command,
    CommandKind,
    Rejected,
    Topics,
    build_correction_event,
    build_discovery,
    build_last_sync,
    build_photo_event,
    build_state,
    parse_command,
    topic_problems,
)
from photosorter.records import AuthState, CorrectionEvent, PhotoEvent, SyncProgress
from tests.mqtt_controls import snapshot

CATEGORIES = load_settings(environ={}).classify.categories
TOPICS = Topics("homeassistant", "photosorter")


def test_every_entity_has_its_own_discovery_topic_under_one_device() -> None:
    configs = build_discovery(TOPICS, CATEGORIES, "1.2.3")
    assert len(configs) == len(CATEGORIES) + 12
    for topic, config in configs.items():
        component, node_id, object_id = re.fullmatch(r"homeassistant/(\w+)/([\w-]+)/([\w-]+)/config", topic).groups()
        assert node_id == "photosorter"
        assert config["unique_id"] == f"photosorter_{object_id}"
        assert config["object_id"] == f"photosorter_{object_id}"
        assert config["default_entity_id"] == f"{component}.photosorter_{object_id}"
        assert config["device"]["name"] == "Photosorter"
        assert config["origin"]["name"] == "photosorter"
        assert config["availability_topic"] == "photosorter/available"
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)


def test_the_issue_entities_are_all_discovered() -> None:
    configs = build_discovery(TOPICS, CATEGORIES, "1")
    by_id = {c["default_entity_id"]: c for c in configs.values()}
    assert by_id["sensor.photosorter_food_count"]["state_class"] == "total"
    assert by_id["sensor.photosorter_last_sync"]["device_class"] == "timestamp"
    assert by_id["binary_sensor.photosorter_icloud_login_needed"]["device_class"] == "problem"
    assert by_id["binary_sensor.photosorter_problem"]["device_class"] == "problem"
    assert by_id["binary_sensor.photosorter_model_drift"]["device_class"] == "problem"
    assert by_id["button.photosorter_sync_now"]["command_topic"] == "photosorter/sync/set"
    assert by_id["text.photosorter_icloud_code"]["mode"] == "password"
    assert by_id["switch.photosorter_paused"]["command_topic"] == "photosorter/paused/set"
    assert by_id["event.photosorter_photo"]["event_types"] == ["sorted", "corrected"]
    for name in ("sorted_today", "unsure", "failed", "icloud_sync_progress"):
        assert f"sensor.photosorter_{name}" in by_id


def test_a_base_topic_with_slashes_becomes_a_valid_node_id() -> None:
    topics = Topics("ha", "home/photos")
    configs = build_discovery(topics, CATEGORIES, "1")
    assert "ha/sensor/home_photos/food_count/config" in configs
    assert configs["ha/sensor/home_photos/food_count/config"]["state_topic"] == "home/photos/state"


def test_wildcards_and_empty_topics_are_refused_with_the_option_name() -> None:
    assert topic_problems("homeassistant", "photosorter") == []
    problems = topic_problems("home#", "")
    assert [p.split(":")[0] for p in problems] == ["mqtt_discovery_prefix", "mqtt_base_topic"]


def test_state_lists_every_category_even_empty_ones() -> None:
    state = build_state(snapshot(), CATEGORIES)
    assert state["library"]["food"] == 12
    assert state["library"]["screenshot"] == 0
    assert set(state["library"]) == {c.name for c in CATEGORIES}
    assert state["icloud"] == {"login_needed": "ON", "message": "Enter the code sent to your iPhone.",
                               "method": "trusted device"}
    assert state["sync"] == {"done": 250, "total": 1000, "percent": 25.0, "downloaded": 240, "per_second": 4.17,
                             "eta_seconds": 180}
    assert state["paused"] == "OFF"
    assert state["problems"] == []
    assert build_state(snapshot(problems=("icloud: no network",)), CATEGORIES)["problems"] == ["icloud: no network"]


def test_the_drift_flag_carries_the_message_of_the_daily_check() -> None:
    assert build_state(snapshot(), CATEGORIES)["drift"] == {"flag": "OFF", "message": ""}
    message = "your photos look different lately: please label a few"
    assert build_state(snapshot(drift=message), CATEGORIES)["drift"] == {"flag": "ON", "message": message}


def test_an_icloud_out_of_reach_is_not_shown_as_a_login_to_do() -> None:
    out_of_reach = AuthState(ok=False, message="iCloud could not be reached (timeout)", reachable=False)
    assert build_state(snapshot(auth=out_of_reach), CATEGORIES)["icloud"]["login_needed"] == "OFF"
    rejected = AuthState(ok=False, message="Apple rejected the Apple ID or password.", blocked=True)
    assert build_state(snapshot(auth=rejected), CATEGORIES)["icloud"]["login_needed"] == "ON"


def test_sync_progress_is_unknown_without_a_total() -> None:
    assert build_state(snapshot(sync=SyncProgress(10)), CATEGORIES)["sync"]["percent"] is None
    assert set(build_state(snapshot(sync=None), CATEGORIES)["sync"].values()) == {None}


def test_a_naive_last_sync_time_is_sent_with_the_local_offset() -> None:
    naive = dt.datetime(2026, 11, 25, 9, 0)
    sent = build_last_sync(snapshot(last_sync=naive))
    assert sent is not None and dt.datetime.fromisoformat(sent) == naive.astimezone()
    assert build_last_sync(snapshot(last_sync=None)) is None


def test_photo_and_correction_events_carry_what_automations_need() -> None:
    sorted_event = build_photo_event(PhotoEvent(5, "beer", 0.91234, 0.4, False, "IMG_1.jpg", "beer/IMG_1.jpg"))
    assert sorted_event == {"event_type": "sorted", "photo_id": 5, "category": "beer", "score": 0.9123,
                            "margin": 0.4, "unsure": False, "filename": "IMG_1.jpg", "library_path": "beer/IMG_1.jpg"}
    corrected = build_correction_event(CorrectionEvent(5, "food", "beer", "email", "from a reply"))
    assert corrected == {"event_type": "corrected", "photo_id": 5, "category": "beer", "old_category": "food",
                         "source": "email"}


def test_commands_are_recognised() -> None:
    assert parse_command(TOPICS, "photosorter/sync/set", b"PRESS") == Command(CommandKind.SYNC)
    assert parse_command(TOPICS, "photosorter/paused/set", b"on") == Command(CommandKind.PAUSED, paused=True)
    assert parse_command(TOPICS, "photosorter/paused/set", b"OFF") == Command(CommandKind.PAUSED, paused=False)
    assert parse_command(TOPICS, "photosorter/icloud_code/set", b" 123 456\n") == Command(
        CommandKind.ICLOUD_CODE, code="123456")
    assert parse_command(TOPICS, "photosorter/icloud_code/set", b"123-456") == Command(
        CommandKind.ICLOUD_CODE, code="123456")
    assert parse_command(TOPICS, "photosorter/state", b"PRESS") is None


def test_junk_commands_are_rejected_with_a_reason() -> None:
    for topic, payload in [("photosorter/sync/set", b"please"), ("photosorter/paused/set", b"maybe"),
                           ("photosorter/icloud_code/set", b"12345"), ("photosorter/icloud_code/set", b"\xff\xfe"),
                           ("photosorter/sync/set", b"PRESS" * 100)]:
        assert isinstance(parse_command(TOPICS, topic, payload), Rejected), (topic, payload)


@given(st.sampled_from(["photosorter/sync/set", "photosorter/paused/set", "photosorter/icloud_code/set"]),
       st.binary(max_size=300))
def test_no_payload_makes_command_parsing_fail(topic: str, payload: bytes) -> None:
    result = parse_command(TOPICS, topic, payload)
    assert isinstance(result, Command | Rejected)


@given(st.text(alphabet="0123456789xyzQ#", min_size=7, max_size=40))
def test_a_rejected_2fa_payload_is_never_repeated_in_the_reason(text: str) -> None:
    result = parse_command(TOPICS, "photosorter/icloud_code/set", text.encode())
    if isinstance(result, Rejected):
        assert text.strip() not in result.reason

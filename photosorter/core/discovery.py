"""Home Assistant MQTT discovery, state and event payloads, and command validation. Pure: no I/O.

Topic tree (``<base>`` is the ``mqtt_base_topic`` option, ``<prefix>`` the ``mqtt_discovery_prefix``)::

    <base>/available            online / offline (last will), retained
    <base>/state                one JSON object with every state below, retained
    <base>/last_sync            ISO 8601 time of the last iCloud sync, retained (absent before the first)
    <base>/event                one JSON message per photo sorted or corrected, not retained
    <base>/sync/set             command: PRESS starts a sync
    <base>/icloud_code/set      command: the 6-digit iCloud 2FA code
    <base>/paused/set           command: ON pauses sorting, OFF resumes
    <prefix>/<component>/<node_id>/<object_id>/config   discovery, one per entity, retained
    <prefix>/status             Home Assistant's birth message: on ``online`` everything is sent again

Per-entity discovery topics are understood by Home Assistant 2024.x and today's; each payload carries
both ``object_id`` (older Home Assistant) and ``default_entity_id`` (newer), as zigbee2mqtt does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from photosorter.records import Category, CorrectionEvent, PhotoEvent, StatusSnapshot

ORIGIN_URL = "https://github.com/photosorter/photosorter"
ONLINE = "online"
OFFLINE = "offline"
PRESS = "PRESS"
MAX_COMMAND_BYTES = 256
_ID = re.compile(r"[^a-zA-Z0-9_-]")
_CODE = re.compile(r"[0-9]{6}")  # ASCII only: \d also takes full-width and Arabic-Indic digits


@dataclass(frozen=True)
class Topics:
    prefix: str
    base: str

    @property
    def node_id(self) -> str:
        """The discovery node id: the base topic with every character HA refuses replaced by ``_``."""
        return _ID.sub("_", self.base)

    @property
    def available(self) -> str:
        return f"{self.base}/available"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def last_sync(self) -> str:
        """Published only once there has been a sync: Home Assistant 2024 warns on an empty timestamp."""
        return f"{self.base}/last_sync"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def sync(self) -> str:
        return f"{self.base}/sync/set"

    @property
    def icloud_code(self) -> str:
        return f"{self.base}/icloud_code/set"

    @property
    def paused(self) -> str:
        return f"{self.base}/paused/set"

    @property
    def ha_status(self) -> str:
        return f"{self.prefix}/status"

    @property
    def own_configs(self) -> str:
        """Subscription matching every discovery config photosorter may have published."""
        return f"{self.prefix}/+/{self.node_id}/+/config"

    def config(self, component: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{self.node_id}/{object_id}/config"


def topic_problems(prefix: str, base: str) -> list[str]:
    """One line per option that cannot be used as an MQTT topic; empty when both are fine."""
    problems = []
    for key, value in (("mqtt_discovery_prefix", prefix), ("mqtt_base_topic", base)):
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "+#\0"):
            problems.append(f"{key}: {value!r} is not a usable MQTT topic (no +, #, leading or trailing /)")
    return problems


def _availability(topics: Topics) -> dict[str, Any]:
    return {"availability_topic": topics.available, "payload_available": ONLINE, "payload_not_available": OFFLINE}


def build_discovery(topics: Topics, categories: tuple[Category, ...], version: str) -> dict[str, dict[str, Any]]:
    """Every entity's discovery topic -> config payload, for one device "Photosorter"."""
    device = {"identifiers": [topics.node_id], "name": "Photosorter", "manufacturer": "photosorter",
              "model": "photosorter", "sw_version": version}
    origin = {"name": "photosorter", "sw_version": version, "support_url": ORIGIN_URL}
    state = topics.state
    entities: list[tuple[str, str, dict[str, Any]]] = []
    for category in categories:
        entities.append(("sensor", f"{category.name}_count", {
            "name": category.title, "icon": "mdi:image-multiple", "unit_of_measurement": "photos",
            "state_class": "total", "state_topic": state,
            "value_template": f"{{{{ value_json.library[{category.name!r}] }}}}"}))
    entities += [
        ("sensor", "sorted_today", {
            "name": "Sorted today", "icon": "mdi:image-check", "unit_of_measurement": "photos",
            "state_class": "total_increasing", "state_topic": state,
            "value_template": "{{ value_json.sorted_today }}"}),
        ("sensor", "unsure", {
            "name": "Waiting for review", "icon": "mdi:image-search", "unit_of_measurement": "photos",
            "state_class": "measurement", "state_topic": state, "value_template": "{{ value_json.unsure }}"}),
        ("sensor", "failed", {
            "name": "Failed photos", "icon": "mdi:image-broken-variant", "unit_of_measurement": "photos",
            "state_class": "measurement", "entity_category": "diagnostic", "state_topic": state,
            "value_template": "{{ value_json.failed }}"}),
        ("sensor", "last_sync", {
            "name": "Last sync", "device_class": "timestamp", "state_topic": topics.last_sync}),
        ("sensor", "icloud_sync_progress", {
            "name": "iCloud sync progress", "icon": "mdi:cloud-sync", "unit_of_measurement": "%",
            "state_class": "measurement", "state_topic": state, "value_template": "{{ value_json.sync.percent }}",
            "json_attributes_topic": state, "json_attributes_template":
                "{{ {'done': value_json.sync.done, 'total': value_json.sync.total, "
                "'downloaded': value_json.sync.downloaded, 'per_second': value_json.sync.per_second, "
                "'eta_seconds': value_json.sync.eta_seconds} | tojson }}"}),
        ("binary_sensor", "icloud_login_needed", {
            "name": "iCloud login needed", "device_class": "problem", "state_topic": state,
            "value_template": "{{ value_json.icloud.login_needed }}", "payload_on": "ON", "payload_off": "OFF",
            "json_attributes_topic": state, "json_attributes_template":
                "{{ {'message': value_json.icloud.message, 'method': value_json.icloud.method} | tojson }}"}),
        ("binary_sensor", "model_drift", {
            "name": "Model drift", "device_class": "problem", "entity_category": "diagnostic",
            "icon": "mdi:chart-bell-curve", "state_topic": state, "value_template": "{{ value_json.drift.flag }}",
            "payload_on": "ON", "payload_off": "OFF", "json_attributes_topic": state,
            "json_attributes_template": "{{ {'message': value_json.drift.message} | tojson }}"}),
        ("binary_sensor", "problem", {
            "name": "Problem", "device_class": "problem", "entity_category": "diagnostic", "state_topic": state,
            "value_template": "{{ 'ON' if value_json.problems else 'OFF' }}", "payload_on": "ON",
            "payload_off": "OFF", "json_attributes_topic": state,
            "json_attributes_template": "{{ {'problems': value_json.problems} | tojson }}"}),
        ("button", "sync_now", {
            "name": "Sync now", "icon": "mdi:sync", "command_topic": topics.sync, "payload_press": PRESS}),
        ("text", "icloud_code", {
            "name": "iCloud 2FA code", "icon": "mdi:two-factor-authentication", "mode": "password",
            "min": 0, "max": 16, "command_topic": topics.icloud_code,
            "state_topic": state, "value_template": "{{ '' }}"}),
        ("switch", "paused", {
            "name": "Sorting paused", "icon": "mdi:pause-circle", "command_topic": topics.paused,
            "payload_on": "ON", "payload_off": "OFF", "state_topic": state,
            "value_template": "{{ value_json.paused }}"}),
        ("event", "photo", {
            "name": "Photo", "icon": "mdi:image-plus", "state_topic": topics.event,
            "event_types": ["sorted", "corrected"]}),
    ]
    configs: dict[str, dict[str, Any]] = {}
    for component, object_id, config in entities:
        entity_id = f"{topics.node_id}_{object_id}"
        configs[topics.config(component, object_id)] = {
            **config, "unique_id": f"{topics.node_id}_{object_id}", "object_id": entity_id,
            "default_entity_id": f"{component}.{entity_id}", **_availability(topics),
            "device": device, "origin": origin, "qos": 1}
    return configs


def build_last_sync(status: StatusSnapshot) -> str | None:
    """The payload for ``<base>/last_sync`` (local time when the snapshot's time is naive); None: not yet."""
    moment = status.last_sync
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.astimezone()).isoformat(timespec="seconds")


def build_state(status: StatusSnapshot, categories: tuple[Category, ...]) -> dict[str, Any]:
    """The JSON published on ``<base>/state``; every category is present (0 when empty)."""
    sync = status.sync
    percent = None
    if sync is not None and sync.total:
        percent = round(100.0 * min(sync.done, sync.total) / sync.total, 1)
    return {
        "library": {c.name: int(status.library_counts.get(c.name, 0)) for c in categories},
        "sorted_today": status.sorted_today,
        "unsure": status.unsure,
        "failed": status.failed,
        "last_sync": build_last_sync(status),
        "sync": {"done": sync.done if sync else None, "total": sync.total if sync else None, "percent": percent,
                 "downloaded": sync.downloaded if sync else None,
                 "per_second": round(sync.per_s, 2) if sync and sync.per_s is not None else None,
                 "eta_seconds": round(sync.eta_s) if sync and sync.eta_s is not None else None},
        "icloud": {"login_needed": "ON" if status.auth.login_needed else "OFF", "message": status.auth.message,
                   "method": status.auth.method},
        "paused": "ON" if status.paused else "OFF",
        "drift": {"flag": "ON" if status.drift else "OFF", "message": status.drift},
        "problems": list(status.problems),
    }


def build_photo_event(event: PhotoEvent) -> dict[str, Any]:
    return {"event_type": "sorted", "photo_id": event.photo_id, "category": event.category,
            "score": round(event.score, 4), "margin": round(event.margin, 4), "unsure": event.unsure,
            "filename": event.filename, "library_path": event.library_path}


def build_correction_event(event: CorrectionEvent) -> dict[str, Any]:
    return {"event_type": "corrected", "photo_id": event.photo_id, "category": event.new_category,
            "old_category": event.old_category, "source": event.source}


class CommandKind(StrEnum):
    SYNC = "sync"
    ICLOUD_CODE = "icloud_code"
    PAUSED = "paused"


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    code: str = ""
    paused: bool = False


@dataclass(frozen=True)
class Rejected:
    """Why a command payload was ignored; never repeats a 2FA payload."""

    reason: str


def parse_command(topics: Topics, topic: str, payload: bytes) -> Command | Rejected | None:
    """The command a message on one of our command topics asks for; None for topics that are not commands."""
    kinds = {topics.sync: CommandKind.SYNC, topics.icloud_code: CommandKind.ICLOUD_CODE,
             topics.paused: CommandKind.PAUSED}
    kind = kinds.get(topic)
    if kind is None:
        return None
    if len(payload) > MAX_COMMAND_BYTES:
        return Rejected(f"{len(payload)} bytes is too long for a command")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Rejected("not UTF-8 text")
    if kind is CommandKind.SYNC:
        return Command(kind) if text.upper() == PRESS else Rejected(f"expected {PRESS}, got {text[:40]!r}")
    if kind is CommandKind.PAUSED:
        if text.upper() in ("ON", "OFF"):
            return Command(kind, paused=text.upper() == "ON")
        return Rejected(f"expected ON or OFF, got {text[:40]!r}")
    code = re.sub(r"[\s-]", "", text)
    if not _CODE.fullmatch(code):
        return Rejected(f"an iCloud code is 6 digits (got {len(text)} characters)")
    return Command(kind, code=code)

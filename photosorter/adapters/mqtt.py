"""``MqttPublisher``: photosorter as a Home Assistant device over MQTT (paho-mqtt 2.x). The only module that
imports paho.

Publishing never blocks the caller and never raises: paho's network thread connects in the background and
reconnects with backoff; while the broker is away only the newest status is kept, and it is sent (with
availability and discovery) on every (re)connect. Events that happen while the broker is away are dropped:
they are not state, and a late "photo sorted" would trigger automations at the wrong time.

Commands from Home Assistant (button, 2FA text, switch) are validated by ``core.discovery.parse_command``
and handed to ``Controls`` on a worker thread, so a slow iCloud call never stalls the MQTT connection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from photosorter import __version__
from photosorter.config import MqttSettings
from photosorter.core.discovery import (
    OFFLINE,
    ONLINE,
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
from photosorter.errors import ConfigError, PhotosorterError
from photosorter.ports import Controls
from photosorter.records import Category, CorrectionEvent, PhotoEvent, StatusSnapshot

log = logging.getLogger(__name__)

KEEPALIVE_S = 60
CLOSE_TIMEOUT_S = 3.0
BIRTH_DELAY_S = 2.0  # Home Assistant's "online" messages within this long are answered once


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _client(settings: MqttSettings, name: str) -> paho.Client:
    """A paho client (callback API 2, MQTT 3.1.1) with the broker login and TLS from the settings."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:8]}",
                         protocol=MQTTProtocolVersion.MQTTv311)
    if settings.username:
        client.username_pw_set(settings.username, settings.password.reveal() or None)
    if settings.tls:
        try:
            client.tls_set(ca_certs=settings.ca_file or None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigError([f"mqtt_ca_file: cannot use {settings.ca_file!r} ({exc.__class__.__name__})"]) from exc
    return client


class MqttPublisher:
    """A ``Publisher`` that also turns Home Assistant's button, switch and text entity into ``Controls`` calls."""

    def __init__(self, settings: MqttSettings, categories: tuple[Category, ...], controls: Controls | None = None,
                 *, version: str = __version__, reconnect_delay_s: tuple[float, float] = (1.0, 60.0),
                 birth_delay_s: float = BIRTH_DELAY_S) -> None:
        problems = topic_problems(settings.discovery_prefix, settings.base_topic)
        if problems:
            raise ConfigError(problems)
        self.settings = settings
        self.topics = Topics(settings.discovery_prefix, settings.base_topic)
        self.categories = categories
        self.controls = controls
        self.discovery = build_discovery(self.topics, categories, version)
        self._lock = threading.RLock()
        self._latest: StatusSnapshot | None = None
        self._connected = False
        self._closing = False
        self._problem: str | None = "not connected yet"  # the last connection change logged (each once)
        self._lost = False  # the connection dropped and is being retried: retries need no log line of their own
        self._commands = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqtt-command")
        self._birth_delay_s = birth_delay_s
        self._birth: threading.Timer | None = None  # a resend for Home Assistant's birth message, not yet sent
        client = _client(settings, self.topics.node_id)
        client.will_set(self.topics.available, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=max(1, round(reconnect_delay_s[0])),
                                   max_delay=max(1, round(reconnect_delay_s[1])))
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def start(self) -> MqttPublisher:
        """Connect in the background; returns at once, whether or not the broker is reachable."""
        log.info("MQTT: connecting to %s as %s", self.where, self.settings.username or "anonymous")
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        return self

    # Publisher --------------------------------------------------------------------------------------
    def publish_status(self, status: StatusSnapshot) -> None:
        with self._lock:
            self._latest = status
            if self._connected:
                self._send_state()

    def publish_event(self, event: PhotoEvent) -> None:
        self._send_event(build_photo_event(event))

    def publish_correction(self, event: CorrectionEvent) -> None:
        self._send_event(build_correction_event(event))

    def close(self) -> None:
        """Say ``offline`` (a clean stop), disconnect and stop the network thread."""
        with self._lock:
            self._closing = True
            connected = self._connected
        if connected:
            info = self._client.publish(self.topics.available, OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # not connected any more: the will says it
                info.wait_for_publish(timeout=CLOSE_TIMEOUT_S)
        with self._lock:
            if self._birth is not None:
                self._birth.cancel()
        self._client.disconnect()
        self._client.loop_stop()
        self._commands.shutdown(wait=True, cancel_futures=True)

    # sending ----------------------------------------------------------------------------------------
    def _publish(self, topic: str, payload: str, *, retain: bool, qos: int = 1) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.debug("MQTT: publish to %s failed: %s", topic, paho.error_string(info.rc))

    def _send_state(self) -> None:
        """The newest status, under the lock so that a newer one is never overtaken by an older one.

        QoS 0 on purpose: paho re-sends unacknowledged QoS 1 messages after a reconnect, *after* the ones
        published in on_connect, so a stale state could overwrite the fresh retained one. A state lost with
        the connection is sent again on reconnect anyway."""
        with self._lock:
            if self._latest is None:
                return
            self._publish(self.topics.state, _json(build_state(self._latest, self.categories)), retain=True, qos=0)
            last_sync = build_last_sync(self._latest)
            if last_sync is not None:
                self._publish(self.topics.last_sync, last_sync, retain=True, qos=0)

    def _send_everything(self) -> None:
        self._publish(self.topics.available, ONLINE, retain=True)
        for topic, config in self.discovery.items():
            self._publish(topic, _json(config), retain=True)
        self._send_state()

    def _send_event(self, payload: dict[str, Any]) -> None:
        with self._lock:
            if not self._connected:
                log.debug("MQTT: broker away, %s event for photo %s not sent", payload["event_type"],
                          payload["photo_id"])
                return
        self._publish(self.topics.event, _json(payload), retain=False)

    # paho callbacks (network thread) ----------------------------------------------------------------
    def _report(self, problem: str | None, level: int = logging.WARNING) -> None:
        """Log a connection change once, not on every retry."""
        with self._lock:
            if problem == self._problem:
                return
            self._problem = problem
        if problem is None:
            log.info("MQTT: connected to %s", self.where)
        else:
            log.log(level, "MQTT: %s", problem)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags, reason: ReasonCode,
                    properties: Properties | None) -> None:
        if reason.is_failure:
            hint = " (check mqtt_username and mqtt_password)" if reason.value in (0x86, 0x87, 4, 5) else ""
            self._report(f"broker {self.where} refused the connection: {reason.getName()}{hint}; retrying",
                         logging.ERROR)
            return
        client.subscribe([(self.topics.sync, 1), (self.topics.icloud_code, 1), (self.topics.paused, 1),
                          (self.topics.ha_status, 1), (self.topics.own_configs, 1)])
        with self._lock:
            self._connected = True
            self._lost = False
            self._send_everything()
        self._report(None)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        with self._lock:
            lost = self._lost
        if not lost:
            self._report(f"cannot reach broker {self.where}; retrying with backoff")

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, False
            closing = self._closing
            self._lost = self._lost or (was_connected and not closing)
        if was_connected and not closing:
            self._report(f"lost the connection to {self.where} ({reason.getName()}); reconnecting with backoff")

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        topic, payload = message.topic, bytes(message.payload)
        if topic == self.topics.ha_status:
            if payload.strip() == ONLINE.encode():
                self._answer_birth()
            return
        if paho.topic_matches_sub(self.topics.own_configs, topic):
            self._forget_stale(topic, payload)
            return
        command = parse_command(self.topics, topic, payload)
        if command is not None and message.retain:
            # a command kept by the broker is an old wish (a retained ON on paused/set would pause every
            # start forever), not a person pressing something now
            log.warning("MQTT: ignored a retained message on %s: commands must not be retained", topic)
        elif isinstance(command, Rejected):
            log.warning("MQTT: ignored a message on %s: %s", topic, command.reason)
        elif command is not None:
            self._commands.submit(self._run, command)

    def _answer_birth(self) -> None:
        """Home Assistant came online: send discovery and state again once, however many birth messages
        arrive within ``birth_delay_s`` (a restart loop or a flood must not multiply the publishes)."""
        with self._lock:
            if self._birth is not None or self._closing:
                return
            log.info("MQTT: Home Assistant came online; sending discovery and state again")
            self._birth = threading.Timer(self._birth_delay_s, self._send_after_birth)
            self._birth.daemon = True
            self._birth.start()

    def _send_after_birth(self) -> None:
        with self._lock:
            self._birth = None
            if self._connected and not self._closing:
                self._send_everything()

    def _forget_stale(self, topic: str, payload: bytes) -> None:
        """A retained discovery config of ours that is no longer wanted (a removed category): delete it."""
        if payload and topic not in self.discovery:
            log.info("MQTT: removing the entity of an old discovery topic %s", topic)
            self._publish(topic, "", retain=True)

    # commands (worker thread) -----------------------------------------------------------------------
    def _run(self, command: Command) -> None:
        if self.controls is None:
            log.warning("MQTT: %s ignored: nothing to control in this process", command.kind)
            return
        try:
            if command.kind is CommandKind.SYNC:
                log.info("MQTT: sync requested")
                self.controls.request_sync()
            elif command.kind is CommandKind.PAUSED:
                log.info("MQTT: sorting %s", "paused" if command.paused else "resumed")
                self.controls.set_paused(command.paused)
                self._amend(lambda s: replace(s, paused=command.paused))
            else:
                log.info("MQTT: iCloud 2FA code received; submitting it")
                auth = self.controls.submit_icloud_code(command.code)
                log.info("MQTT: iCloud code %s", "accepted" if auth.ok else f"not accepted: {auth.message}")
                self._amend(lambda s: replace(s, auth=auth) if not s.auth.ok else s)  # only while a login is due
        except PhotosorterError as exc:
            log.error("MQTT: %s failed: %s", command.kind, exc.message)
        except Exception:  # a bug in the daemon must not kill MQTT
            log.exception("MQTT: %s failed", command.kind)

    def _amend(self, change: Callable[[StatusSnapshot], StatusSnapshot]) -> None:
        """Show a command's effect at once, without waiting for the daemon's next status."""
        with self._lock:
            if self._latest is not None:
                self._latest = change(self._latest)
                if self._connected:
                    self._send_state()


def probe_broker(settings: MqttSettings, timeout_s: float = 10.0) -> str | None:
    """Connect once and leave (no will, nothing published): None when the broker accepted, else why not."""
    outcome: list[str | None] = []
    done = threading.Event()

    def on_connect(client: paho.Client, userdata: Any, flags: paho.ConnectFlags, reason: ReasonCode,
                   properties: Properties | None) -> None:
        outcome.append(f"the broker refused the connection: {reason.getName()}" if reason.is_failure else None)
        done.set()

    client = _client(settings, "photosorter-probe")
    client.on_connect = on_connect
    try:
        client.connect(settings.host, settings.port, keepalive=KEEPALIVE_S)
    except (OSError, ValueError) as exc:
        return f"cannot reach {settings.host}:{settings.port} ({exc})"
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            return f"no answer from {settings.host}:{settings.port} within {timeout_s:.0f} s"
        return outcome[0]
    finally:
        client.disconnect()
        client.loop_stop()

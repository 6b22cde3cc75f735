"""``mqtt``: check the broker settings and list what photosorter publishes; ``open_publisher`` for the daemon."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from photosorter import __version__
from photosorter.adapters.supervisor import resolve_broker
from photosorter.cli.commands import Options, described
from photosorter.config import Settings
from photosorter.core.discovery import Topics, build_discovery, topic_problems
from photosorter.errors import ConfigError

if TYPE_CHECKING:  # paho, numpy and Pillow: only when a broker is used, so --help stays quick
    from photosorter.adapters.mqtt import MqttPublisher
    from photosorter.ports import Controls

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    mqtt = commands.add_parser("mqtt", parents=options.only(), **described("mqtt"))
    mqtt.set_defaults(handler=run_mqtt)


def open_publisher(settings: Settings, controls: Controls | None,
                   environ: Mapping[str, str] | None = None) -> MqttPublisher | None:
    """A started MqttPublisher for the configured broker (or the Supervisor's); None when MQTT is off."""
    broker = resolve_broker(settings.mqtt, os.environ if environ is None else environ)
    if not broker.enabled:
        log.info("MQTT is off (no mqtt_host and no broker from the Supervisor)")
        return None
    from photosorter.adapters.mqtt import MqttPublisher  # paho: only with a broker

    return MqttPublisher(broker, settings.classify.categories, controls).start()


def run_mqtt(args: argparse.Namespace, settings: Settings) -> int:
    broker = resolve_broker(settings.mqtt, os.environ)
    problems = topic_problems(broker.discovery_prefix, broker.base_topic)
    if problems:
        raise ConfigError(problems)
    topics = Topics(broker.discovery_prefix, broker.base_topic)
    print(f"state: {topics.state}   availability: {topics.available}   events: {topics.event}")
    print(f"commands: {topics.sync} (PRESS), {topics.paused} (ON/OFF), {topics.icloud_code} (2FA code)")
    print(f"discovery under {topics.prefix}/<component>/{topics.node_id}/<object_id>/config:")
    for config in build_discovery(topics, settings.classify.categories, __version__).values():
        print(f"  {config['default_entity_id']:<48}{config['name']}")
    if not broker.enabled:
        print("MQTT is off: set mqtt_host (or run as the add-on with a broker app installed)")
        return 1
    from photosorter.adapters.mqtt import probe_broker

    problem = probe_broker(broker)
    if problem is not None:
        print(f"MQTT broker {broker.host}:{broker.port}: {problem}")
        return 1
    print(f"MQTT broker {broker.host}:{broker.port}: connected as {broker.username or 'anonymous'}")
    return 0

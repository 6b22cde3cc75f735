"""``photosorter health``: the add-on's HEALTHCHECK, run every minute, so it imports nothing heavy."""

from __future__ import annotations

import argparse
import time

from photosorter.cli.commands import Options, described
from photosorter.config import HEARTBEAT_FILE, Settings

HEALTHY_WITHIN_S = 300.0  # the daemon touches the heartbeat at least every 30 s


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    health = commands.add_parser("health", parents=options.only("data"), **described("health"))
    health.set_defaults(handler=run_health)


def run_health(args: argparse.Namespace, settings: Settings) -> int:
    heartbeat = settings.library.data / HEARTBEAT_FILE
    try:
        age = time.time() - heartbeat.stat().st_mtime
    except OSError:
        print(f"unhealthy: no heartbeat at {heartbeat}: the daemon (photosorter run) is not running")
        return 1
    if age > HEALTHY_WITHIN_S:
        print(f"unhealthy: last heartbeat {age:.0f} s ago")
        return 1
    print(f"healthy: last heartbeat {age:.0f} s ago")
    return 0

"""CPU a running daemon uses when there is nothing to do: ``photosorter run`` with the inbox watched, MQTT
(a real mosquitto) and the web page on, measured from /proc over ``seconds`` and scaled to an hour."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import row


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1000
    return 0.0


def idle_rows(model: Path, work: Path, mqtt_port: int, seconds: float) -> None:
    (work / "inbox").mkdir(parents=True)
    env = {**os.environ, "PHOTOSORTER_LIBRARY": str(work / "library"), "PHOTOSORTER_DATA": str(work / "data"),
           "PHOTOSORTER_MODEL": str(model), "PHOTOSORTER_INBOX": str(work / "inbox"),
           "PHOTOSORTER_MQTT_HOST": "127.0.0.1", "PHOTOSORTER_MQTT_PORT": str(mqtt_port),
           "PHOTOSORTER_FACES": "false", "PHOTOSORTER_LOG_LEVEL": "warning"}
    daemon = subprocess.Popen([sys.executable, "-m", "photosorter", "run"], env=env, cwd=work,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(min(20.0, seconds))  # start-up (imports, first inbox look, MQTT discovery) is not idle
        started_cpu, started = _cpu_s(daemon.pid), time.monotonic()
        time.sleep(seconds)
        used = _cpu_s(daemon.pid) - started_cpu
        elapsed = time.monotonic() - started
        row(f"daemon idle (inbox + MQTT), {elapsed:.0f} s measured: CPU per hour / RSS",
            f"{used * 3600 / elapsed:6.2f} CPU-s / {_rss_mb(daemon.pid):5.0f} MB")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)

"""A running daemon when there is nothing to do: ``photosorter run`` with the inbox watched and MQTT (a real
mosquitto). Its CPU measured from /proc over ``seconds`` and scaled to an hour; and its resident memory
before work, after sorting a few photos, and after the models were unloaded (``model_idle_minutes`` 1,
so that row takes about two minutes and is left out of --quick)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import row


def _cpu_s(pid: int, *, children: bool = False) -> float:
    """utime + stime (and, with ``children``, cutime + cstime: the children it waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def _daemon_env(model: Path, work: Path, mqtt_port: int) -> dict[str, str]:
    """``photosorter run`` watching ``work/inbox`` and publishing to the broker, faces off."""
    return {**os.environ, "PHOTOSORTER_LIBRARY": str(work / "library"), "PHOTOSORTER_DATA": str(work / "data"),
            "PHOTOSORTER_MODEL": str(model.resolve()), "PHOTOSORTER_INBOX": str(work / "inbox"),
            "PHOTOSORTER_MQTT_HOST": "127.0.0.1", "PHOTOSORTER_MQTT_PORT": str(mqtt_port),
            "PHOTOSORTER_FACES": "false", "PHOTOSORTER_LOG_LEVEL": "warning"}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1000
    return 0.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def _wait_for(done: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.5)


def unload_row(model: Path, faces: str, photos: list[Path], work: Path, mqtt_port: int, *, web: bool,
               worker: bool = True) -> None:
    """RSS of ``photosorter run``: started, after sorting ``photos`` (with its model worker's), and after
    the models were unloaded."""
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    env = {**os.environ, "PHOTOSORTER_LIBRARY": str(work / "library"), "PHOTOSORTER_DATA": str(work / "data"),
           "PHOTOSORTER_MODEL": str(model), "PHOTOSORTER_INBOX": str(inbox), "PHOTOSORTER_SETTLE_SECONDS": "0",
           "PHOTOSORTER_MQTT_HOST": "127.0.0.1", "PHOTOSORTER_MQTT_PORT": str(mqtt_port),
           "PHOTOSORTER_FACES": str(faces != "off").lower(), "PHOTOSORTER_LOG_LEVEL": "info",
           "PHOTOSORTER_MODEL_IDLE_MINUTES": "1", "PHOTOSORTER_INBOX_POLL_MINUTES": "1",
           "PHOTOSORTER_MODEL_WORKER": str(worker).lower(), "PHOTOSORTER_WEB_PORT": str(mqtt_port + 1 if web else 0)}
    if faces != "off":
        env["PHOTOSORTER_FACE_MODEL"] = faces
    log = work / "daemon.log"
    with open(log, "w", encoding="utf-8") as output:
        daemon = subprocess.Popen([sys.executable, "-m", "photosorter", "run"], env=env, cwd=work, stdout=output,
                                  stderr=output)
    try:
        _wait_for(lambda: "photosorter running" in log.read_text(), 60)
        time.sleep(2)
        started = _rss_mb(daemon.pid)
        for photo in photos:
            shutil.copy(photo, inbox / photo.name)
        _wait_for(lambda: not any(inbox.iterdir()), 150)  # the next inbox look is within a minute
        time.sleep(1)
        sorted_mb, helpers_mb = _rss_mb(daemon.pid), sum(_rss_mb(child) for child in _children(daemon.pid))
        _wait_for(lambda: any("unloaded:" in line and " image" in line  # CLIP's text tower goes first
                              for line in log.read_text().splitlines()), 150)
        time.sleep(3)
        what = f"daemon {'(inbox, MQTT, web)' if web else '(inbox, MQTT)'}{', faces' if faces != 'off' else ''}"
        row(f"{what}{'' if worker else ', model_worker off'}: RSS started / after sorting {len(photos)} "
            "(+ worker) / after unload",
            f"{started:4.0f} / {sorted_mb:4.0f} (+{helpers_mb:.0f}) / {_rss_mb(daemon.pid):4.0f} MB")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def idle_rows(model: Path, work: Path, mqtt_port: int, seconds: float) -> None:
    (work / "inbox").mkdir(parents=True)
    env = _daemon_env(model, work, mqtt_port)
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


def idle_everything_row(model: Path, work: Path, mqtt_port: int, seconds: float) -> None:
    """The idle daemon with every source on: the inbox, MQTT, iCloud (the local fake server, a trusted session,
    polled every ``icloud_poll_minutes``) and IMAP IDLE on a real dovecot. CPU of the daemon and of any child
    it waited for, scaled to an hour."""
    from photosorter.adapters.icloud import IcloudSource
    from tests.servers.dovecot import run_dovecot
    from tests.servers.fake_icloud import FakeICloud

    (work / "inbox").mkdir(parents=True)
    data = work / "data"
    (work / "icloud").mkdir()
    server = FakeICloud(work / "icloud").start()
    try:
        server.load_recording(limit=10)
        os.environ["REQUESTS_CA_BUNDLE"] = str(server.cert)
        source = IcloudSource(server.apple_id, server.password, data_dir=data, state_path=data / "state.sqlite3",
                              media_folder=work / "library" / "videos", previews=data / "previews",
                              server=server.url)
        if not source.auth_state().ok:
            source.submit_code(server.code)  # trusted once, as a person would have done at set-up
        source.close()
        with run_dovecot() as dovecot:
            env = {**_daemon_env(model, work, mqtt_port), "PHOTOSORTER_MODEL_IDLE_MINUTES": "1",
                   "APPLE_ID": server.apple_id, "APPLE_PASSWORD": server.password,
                   "PHOTOSORTER_ICLOUD_SERVER": server.url, "CURL_CA_BUNDLE": str(server.cert),
                   "PHOTOSORTER_MAIL_TO": dovecot.user, "PHOTOSORTER_MAIL_FROM": "photosorter@example.com",
                   "PHOTOSORTER_IMAP_HOST": "127.0.0.1", "PHOTOSORTER_IMAP_PORT": str(dovecot.port),
                   "PHOTOSORTER_IMAP_SECURITY": "none", "PHOTOSORTER_IMAP_USERNAME": dovecot.user,
                   "PHOTOSORTER_IMAP_PASSWORD": dovecot.password}
            log = (work / "daemon.log").open("wb")
            daemon = subprocess.Popen([sys.executable, "-m", "photosorter", "run"], env=env, cwd=work,
                                      stdout=log, stderr=log)
            try:
                time.sleep(min(100.0, seconds))  # start-up, the first sync of the 10 photos and the models'
                # unload a minute later (the worker's CPU is counted when it ends) are not idle
                if daemon.poll() is not None:
                    raise RuntimeError(f"the daemon stopped: {(work / 'daemon.log').read_text()[-2000:]}")
                started_cpu, started = _cpu_s(daemon.pid, children=True), time.monotonic()
                requests = len(server.requests)
                time.sleep(seconds)
                used = _cpu_s(daemon.pid, children=True) - started_cpu
                elapsed = time.monotonic() - started
                row(f"daemon idle (inbox, MQTT, iCloud, IMAP IDLE), {elapsed:.0f} s measured: CPU per hour / RSS",
                    f"{used * 3600 / elapsed:6.2f} CPU-s / {_rss_mb(daemon.pid):5.0f} MB  "
                    f"({len(server.requests) - requests} iCloud requests)")
            finally:
                daemon.terminate()
                daemon.wait(timeout=30)
                log.close()
    finally:
        server.stop()


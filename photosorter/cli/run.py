"""``photosorter run``: the daemon the add-on starts (``photosorter health``, its HEALTHCHECK, is in ``health``)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from photosorter.adapters.locks import DAEMON_LOCK_FILE, LockBusyError, folder_locks, writer_locks
from photosorter.cli.commands import Options, described
from photosorter.config import HEARTBEAT_FILE, Settings
from photosorter.errors import StateError

# The daemon's parts (the model stack, pyicloud, aiohttp, mail) are imported where the daemon is built,
# so `photosorter run --help` answers without loading them.
if TYPE_CHECKING:
    from photosorter.daemon import Daemon
    from photosorter.mailflow import MailFlow
    from photosorter.pipeline import Sorter
    from photosorter.ports import Controls, Labeller, PhotoSource, Publisher
    from photosorter.web.app import WebServer

log = logging.getLogger(__name__)

def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    run = commands.add_parser("run", parents=options.everything, **described("run"))
    run.set_defaults(handler=run_daemon)


def local_zone() -> ZoneInfo:
    """The zone from TZ (the Supervisor sets it in add-ons), else the system's, else UTC."""
    candidates = [os.environ.get("TZ", "")]
    with contextlib.suppress(OSError, IndexError):
        candidates.append(str(Path("/etc/localtime").resolve()).split("zoneinfo/", 1)[1])
    for name in candidates:
        try:
            return ZoneInfo(name.lstrip(":")) if name else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def _icloud_source(settings: Settings) -> PhotoSource | None:
    from photosorter.cli.icloud import open_source

    return open_source(settings)


def _publisher(settings: Settings, controls: Controls) -> Publisher | None:
    from photosorter.cli.mqtt import open_publisher

    return open_publisher(settings, controls)


def _mail(settings: Settings, sorter: Labeller, zone: ZoneInfo) -> MailFlow | None:
    if not (settings.mail.smtp_host or settings.mail.imap_host):
        return None
    from photosorter.cli.mail import build_mail

    return build_mail(settings, zone=zone, labeller=sorter)


def _web(settings: Settings, sorter: Sorter, daemon: Daemon) -> WebServer | None:
    """The web page, when ``web_port`` is set (aiohttp, 24 MB resident, is imported only then)."""
    if not settings.web.enabled:
        return None
    from photosorter.cli.web import start_web

    return start_web(settings, sorter, daemon.submit, status=daemon.status,
                     submit_code=daemon.submit_icloud_code if daemon.source is not None else None)


def run_daemon(args: argparse.Namespace, settings: Settings) -> int:
    """One daemon per data folder: a second one is refused, naming the first."""
    from photosorter.cli.library import library_folders
    from photosorter.placing import check_inbox

    if settings.library.inbox:
        check_inbox(Path(settings.library.inbox), settings.library.path, library_folders(settings))
    try:
        with folder_locks([settings.library.data], "run", wait=False, name=DAEMON_LOCK_FILE):
            return _run_daemon(settings)
    except LockBusyError as exc:
        raise StateError(f"{exc.holder} already runs on {settings.library.data}; stop it first") from exc


@contextlib.contextmanager
def _work_lock(settings: Settings, busy: list[str]) -> Iterator[bool]:
    """The writers' lock for one round of the daemon's work, or False (said once) while another holds it."""
    try:
        with writer_locks(settings.library.data, settings.library.path, "run", wait=False):
            if busy:
                log.info("%s is done: the daemon's work goes on", busy.pop())
            yield True
    except LockBusyError as exc:
        if not busy:
            log.info("%s is using the library: the daemon's work waits for it", exc.holder)
            busy.append(exc.holder)
        yield False


def _run_daemon(settings: Settings) -> int:
    from photosorter.cli.build import build_sorter, model_lifetime, open_state
    from photosorter.daemon import Daemon, SystemClock
    from photosorter.drift import check_drift
    from photosorter.ml.lifetime import limit_heap_arenas

    limit_heap_arenas()  # before the daemon's threads start: less heap left behind between runs

    state = open_state(settings)
    clock, zone = SystemClock(), local_zone()
    models = model_lifetime(settings, clock.monotonic)
    sorter = build_sorter(settings, state, lifetime=models)
    mail = _mail(settings, sorter, zone)
    daemon = Daemon(settings=settings, sorter=sorter, state=state, clock=clock, zone=zone,
                    source=_icloud_source(settings), mail=mail, models=models,
                    drift_check=lambda: check_drift(state, sorter.model_id, clock.now(), zone),
                    work_lock=functools.partial(_work_lock, settings, []))
    daemon.publisher = _publisher(settings, daemon)  # MQTT commands call back into the daemon
    if mail is not None:
        mail.attention = daemon.attention  # the digest lists what the daemon sees failing
    web = _web(settings, sorter, daemon)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the current photo", signal.Signals(signum).name)
        daemon.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watchers_stop = threading.Event()
    if daemon.source is not None:
        from photosorter.cli.icloud import watch_codes

        watch_codes(settings.library.data, daemon, watchers_stop)  # photosorter icloud code 123456
    if mail is not None and settings.mail.imap_host:
        from photosorter.cli.mail import watch_replies

        watch_replies(settings, daemon.request_replies, watchers_stop)  # IMAP IDLE: replies within seconds
    try:
        return daemon.run()
    finally:
        watchers_stop.set()
        if web is not None:
            web.stop()
        sorter.index.save(sorter.index_path)
        if daemon.publisher is not None:
            daemon.publisher.close()
        if mail is not None:
            mail.close()
        state.close()
        models.release_all()  # ends the model worker's process, if one runs
        # a clean stop is not a live daemon: health says so at once, not after HEALTHY_WITHIN_S
        (settings.library.data / HEARTBEAT_FILE).unlink(missing_ok=True)
        log.info("stopped")

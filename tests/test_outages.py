"""The daemon through outages of its servers: mosquitto, dovecot and the SMTP server are stopped while it
runs and started again. Sorting goes on, each outage is logged once, and the digest that was due during
the outage goes out late, once."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from photosorter.adapters.mqtt import MqttPublisher
from photosorter.cli.build import build_sorter, open_state
from photosorter.cli.mail import build_mail
from photosorter.daemon import Daemon
from tests.clocks import FakeClock
from tests.conftest import write_photo
from tests.mailfakes import ZONE, mail_settings
from tests.servers.dovecot import Dovecot
from tests.servers.mosquitto import Mosquitto
from tests.servers.smtp import Inbox, free_port

pytest_plugins = ["tests.mailfixtures"]


def restart_dovecot(dovecot: Dovecot) -> subprocess.Popen[bytes]:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    process = subprocess.Popen([binary, "-F", "-c", str(dovecot.root / "dovecot.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while "master: Info: Dovecot" not in dovecot.log().rsplit("Dovecot v", 1)[-1] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return process


def test_mail_and_mqtt_outages_are_survived_reported_once_and_the_digest_goes_out_late_once(
        tmp_path: Path, tiny_model: Path, dovecot: Dovecot, tmp_path_factory: pytest.TempPathFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "photosorter")
    smtp_port, sent = free_port(), Inbox()
    smtp = Controller(sent, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"), password=False)
    broker.start()
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    settings = mail_settings(library=str(library), data=str(tmp_path / "data"), model=str(tiny_model),
                             inbox=str(inbox), inbox_poll_minutes=1, settle_seconds=0, digest_time="20:00",
                             smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none",
                             imap_host="127.0.0.1", imap_port=dovecot.port, imap_security="none",
                             imap_username=dovecot.user, imap_password=dovecot.password,
                             mqtt_host="127.0.0.1", mqtt_port=broker.port)
    inbox.mkdir()
    state = open_state(settings)
    sorter = build_sorter(settings, state)
    mail = build_mail(settings, zone=ZONE, labeller=sorter)
    clock = FakeClock(dt.datetime(2026, 11, 25, 19, 0, tzinfo=ZONE))
    daemon = Daemon(settings=settings, sorter=sorter, state=state, clock=clock, zone=ZONE, mail=mail)
    publisher = MqttPublisher(settings.mqtt, settings.classify.categories, daemon, reconnect_delay_s=(1, 2)).start()
    daemon.publisher = publisher
    restarted: subprocess.Popen[bytes] | None = None
    try:
        write_photo(inbox, "before.jpg", (220, 20, 20))
        daemon.run_due_parts()
        assert state.library_counts() and not list(inbox.iterdir())
        deadline = time.monotonic() + 10
        while not publisher.connected:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        smtp.stop()  # all three away, and the digest falls due meanwhile
        dovecot.process.send_signal(signal.SIGTERM)
        dovecot.process.wait(10)
        broker.stop()
        write_photo(inbox, "during.jpg", (20, 220, 20))
        for _ in range(12):  # two hours of the daemon's loop
            clock.advance(600)
            daemon.run_due_parts()
        assert not list(inbox.iterdir())  # sorting went on
        assert sent.messages == []

        smtp = Controller(sent, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        restarted = restart_dovecot(dovecot)
        broker.start()
        for _ in range(12):  # the failing parts back off up to an hour; then they come back
            clock.advance(600)
            daemon.run_due_parts()
        sent.wait_for(1)
        for _ in range(6):
            clock.advance(600)
            daemon.run_due_parts()
        deadline = time.monotonic() + 10
        while not publisher.connected:
            assert time.monotonic() < deadline, "MQTT did not come back"
            time.sleep(0.05)
    finally:
        publisher.close()
        smtp.stop()
        if restarted is not None:
            restarted.send_signal(signal.SIGTERM)
            restarted.wait(10)
        broker.stop()
        assert mail is not None
        mail.close()
        state.close()
    lines = [r.getMessage() for r in caplog.records]
    digests = [m for m in sent.messages if m["X-Photosorter-Digest"]]
    assert len(digests) == 1  # late, once
    for part in ("digest", "replies"):
        assert sum(line.startswith(f"{part} failed") for line in lines) == 1, part
        assert sum(line == f"{part} works again" for line in lines) == 1, part
    assert sum("lost the connection" in line for line in lines) == 1
    print(f"\noutages survived: SMTP, IMAP and MQTT for 2 h; digest sent {len(digests)} time(s); "
          f"{sum('failed' in line for line in lines)} failure lines logged")

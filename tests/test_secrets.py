"""Secrets never leave their own store: the daemon at DEBUG with a real iCloud login (fake server), MQTT with a
password, SMTP with a login and IMAP over TLS; then every log line, MQTT message, email and file is searched
for each password (found nowhere) and for each token the iCloud server handed out (found only in the session
store)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_photo
from tests.servers.dovecot import Dovecot
from tests.servers.fake_icloud import FakeICloud
from tests.servers.mosquitto import Listener, Mosquitto
from tests.servers.smtp import SMTP_PASSWORD, SMTP_USER, SmtpServer, run_smtp

pytest_plugins = ["tests.mailfixtures"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def smtp_login() -> Iterator[SmtpServer]:
    with run_smtp(login=True) as server:
        yield server


def every_file(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def test_no_secret_reaches_a_log_an_mqtt_message_an_email_or_a_file(
        tmp_path: Path, tiny_model: Path, fake_icloud: FakeICloud, password_mosquitto: Mosquitto,
        smtp_login: SmtpServer, dovecot: Dovecot) -> None:
    fake_icloud.load_recording(limit=4)
    secrets = {"apple": fake_icloud.password, "mqtt": password_mosquitto.password, "smtp": SMTP_PASSWORD,
               "imap": dovecot.password}
    assert all(len(s) >= 8 for s in secrets.values())
    work = tmp_path / "work"
    write_photo(work / "inbox", "IMG_1.jpg", (220, 20, 20))
    env = {**os.environ, "PHOTOSORTER_LIBRARY": str(work / "library"), "PHOTOSORTER_DATA": str(work / "data"),
           "PHOTOSORTER_MODEL": str(tiny_model), "PHOTOSORTER_INBOX": str(work / "inbox"),
           "PHOTOSORTER_FACES": "false", "PHOTOSORTER_LOG_LEVEL": "debug", "TZ": "UTC",
           "APPLE_ID": fake_icloud.apple_id, "APPLE_PASSWORD": fake_icloud.password,
           "PHOTOSORTER_ICLOUD_SERVER": fake_icloud.url, "REQUESTS_CA_BUNDLE": str(fake_icloud.cert),
           "CURL_CA_BUNDLE": str(fake_icloud.cert), "PYTHONPATH": str(ROOT),
           "PHOTOSORTER_MQTT_HOST": password_mosquitto.host, "PHOTOSORTER_MQTT_PORT": str(password_mosquitto.port),
           "PHOTOSORTER_MQTT_USERNAME": password_mosquitto.username,
           "PHOTOSORTER_MQTT_PASSWORD": password_mosquitto.password,
           "PHOTOSORTER_SMTP_HOST": smtp_login.host, "PHOTOSORTER_SMTP_PORT": str(smtp_login.port),
           "PHOTOSORTER_SMTP_SECURITY": "none", "PHOTOSORTER_SMTP_USERNAME": SMTP_USER,
           "PHOTOSORTER_SMTP_PASSWORD": SMTP_PASSWORD, "PHOTOSORTER_MAIL_FROM": "photos@example.com",
           "PHOTOSORTER_MAIL_TO": "me@example.com", "PHOTOSORTER_DIGEST_WHEN_EMPTY": "true",
           "PHOTOSORTER_IMAP_HOST": "localhost", "PHOTOSORTER_IMAP_PORT": str(dovecot.tls_port),
           "PHOTOSORTER_IMAP_SECURITY": "ssl", "PHOTOSORTER_IMAP_USERNAME": dovecot.user,
           "PHOTOSORTER_IMAP_PASSWORD": dovecot.password, "SSL_CERT_FILE": str(dovecot.ca_file)}
    listener = Listener(password_mosquitto)
    logs = []
    daemon = subprocess.Popen([sys.executable, "-m", "photosorter", "run"], cwd=work, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and daemon.poll() is None and not (
                (work / "inbox").exists() and not any((work / "inbox").iterdir())
                and any(p.suffix.lower() in (".jpg", ".heic") for p in every_file(work / "library"))
                and len(list(every_file(work / "library"))) > 1):
            time.sleep(0.2)
        sent = subprocess.run([sys.executable, "-m", "photosorter", "digest", "--send-now"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)
        logs.append(sent.stdout + sent.stderr)
        assert sent.returncode == 0, sent.stderr
        replies = subprocess.run([sys.executable, "-m", "photosorter", "replies", "--once"], cwd=work, env=env,
                                 capture_output=True, text=True, timeout=120)
        logs.append(replies.stdout + replies.stderr)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
        logs.append(out)
        listener.close()
    mails = [m.as_bytes() for m in smtp_login.inbox.wait_for(1)]
    messages = [m.topic.encode() + b" " + m.payload for m in listener.messages]
    assert " DEBUG " in logs[-1] and "iCloud" in logs[-1] and messages and mails
    files = list(every_file(work))
    print(f"secrets: {len(secrets)} passwords searched in {sum(len(x) for x in logs)} characters of DEBUG log, "
          f"{len(messages)} MQTT messages, {len(mails)} emails and {len(files)} files")
    for name, secret in secrets.items():
        assert all(secret not in text for text in logs), f"{name} password in a log"
        assert all(secret.encode() not in m for m in messages), f"{name} password on MQTT"
        assert all(secret.encode() not in m for m in mails), f"{name} password in an email"
        found = [p for p in files if secret.encode() in p.read_bytes()]
        assert found == [], f"{name} password in {found}"
    tokens = fake_icloud.issued_tokens()  # iCloud's session and cookie tokens: only in the session store
    assert tokens
    store, kept = work / "data" / "icloud", 0
    for token in tokens:
        assert all(token not in text for text in logs), f"iCloud token {token[:8]}... in a log"
        assert all(token.encode() not in m for m in [*messages, *mails]), f"iCloud token {token[:8]}... sent"
        found = [p for p in files if token.encode() in p.read_bytes()]
        assert all(p.is_relative_to(store) for p in found), f"iCloud token {token[:8]}... in {found}"
        kept += bool(found)
    assert kept  # the search sees a token where it belongs
    print(f"secrets: {len(tokens)} iCloud tokens, {kept} of them in {store.name}/ and nowhere else")
    stores = [p for p in every_file(work / "data")]  # session cookies and tokens live here: private to us
    assert stores and {p.name: oct(p.stat().st_mode & 0o777) for p in stores} == {p.name: "0o600" for p in stores}

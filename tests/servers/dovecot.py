"""A real dovecot on loopback with its own temporary config: passwd-file user, Maildir, plain IMAP and
IMAPS (self-signed certificate). Fails with the install command when dovecot is missing."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL = "apt-get install -y dovecot-imapd dovecot-lmtpd openssl"
USER = "photos@example.com"
PASSWORD = "imap-secret-1"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
mail_location = maildir:~/Maildir
# IDLE also re-checks the mailbox every second: a message appended in the instant between IDLE's first
# sync and its change notification being set up is otherwise only seen after the default 30 s.
mailbox_idle_check_interval = 1 secs
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
first_valid_uid = {uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail(f"openssl is not installed: {INSTALL}")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


@dataclass
class Dovecot:
    root: Path
    port: int
    tls_port: int
    user: str
    password: str
    ca_file: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text(errors='replace') if log.exists() else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not start listening")


@contextlib.contextmanager
def run_dovecot() -> Iterator[Dovecot]:
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
    if binary is None:
        pytest.fail(f"dovecot is not installed: {INSTALL}")
    mail = pwd.getpwnam("mail")
    root = Path(tempfile.mkdtemp(prefix="photosorter-dovecot-"))  # pytest's tmp dirs are 0700: dovecot's users
    os.chmod(root, 0o755)  # (mail, dovenull) must reach their parts
    try:
        for sub in ("run", "state", "home"):
            (root / sub).mkdir()
        os.chown(root / "home", mail.pw_uid, mail.pw_gid)
        cert, _ = self_signed(root)
        os.chmod(root / "key.pem", 0o600)
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        port, tls_port = free_port(), free_port()
        (root / "dovecot.conf").write_text(CONFIG.format(root=root, uid=mail.pw_uid, gid=mail.pw_gid, port=port,
                                                          tls_port=tls_port, user="dovenull", group="dovecot"))
        process = subprocess.Popen([binary, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        try:
            _wait_for(port, process, root / "dovecot.log")
            _wait_for(tls_port, process, root / "dovecot.log")
            yield Dovecot(root, port, tls_port, USER, PASSWORD, cert, process)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

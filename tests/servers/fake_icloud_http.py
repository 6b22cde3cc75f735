"""The fake iCloud's HTTPS side: its self-signed certificate and the request handler that routes each
request to the ``FakeICloud`` behind the server (injected failures first, then the endpoint, then the
downloads, which can be cut off halfway)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers.fake_icloud_records import SHARED_ZONE

if TYPE_CHECKING:
    from tests.servers.fake_icloud import FakeICloud


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the CA file the client trusts is the certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "photosorter fake iCloud")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "fake-icloud.pem", folder / "fake-icloud.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class IcloudHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes on a kept-alive connection: with Nagle's algorithm the body waits
    # for the client's delayed ACK (~40 ms a response), which made a 240-photo sync take 30 s instead of 6.
    disable_nagle_algorithm = True

    @property
    def fake(self) -> FakeICloud:
        return self.server.fake  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with fake.lock:
            fake.requests.append((method, parts.path))
            injected = next((i for i in fake.injections if i.path_part in parts.path and i.times > 0), None)
            if injected is not None:
                injected.times -= 1
        if injected is not None:
            time.sleep(injected.delay_s)
            with contextlib.suppress(OSError):  # the client may have given up waiting
                self._send(injected.status, injected.body, injected.content_type, injected.headers)
            return
        try:
            body = json.loads(raw) if raw.strip() and raw.strip() != b"null" else {}
        except ValueError:
            body = {}
        with fake.lock:
            self._route(method, parts.path, parse_qs(parts.query), body)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> None:
        fake = self.fake
        auth = "/idmsa/appleauth/auth"
        session_token = self._session_token()
        if path.startswith("/content/"):
            self._download(path)
        elif path == f"{auth}/authorize/signin":
            self._send(200, b"<html><body>sign in</body></html>", "text/html;charset=UTF-8")
        elif path == f"{auth}/signin/init":
            self._json(*fake.signin_init(body))
        elif path == f"{auth}/signin/complete":
            self._json(*fake.signin_complete(body))
        elif path == auth and "text/html" in self.headers.get("Accept", ""):
            self._send(200, fake.auth_options_html().encode(), "text/html; charset=UTF-8")
        elif path == auth:
            self._json(200, fake.auth_options_json(), {})
        elif path == f"{auth}/verify/phone" and method == "PUT":
            fake.prompts += 1
            self._json(200, {"trustedPhoneNumber": {"id": 1}}, {})
        elif path in (f"{auth}/verify/trusteddevice/securitycode", f"{auth}/verify/phone/securitycode"):
            self._json(*fake.verify_code(str(body.get("securityCode", {}).get("code", "")), session_token))
        elif path.startswith(f"{auth}/bridge/step/") and path.rsplit("/", 1)[1].isdigit():
            self._json(*fake.bridge_step(int(path.rsplit("/", 1)[1]), body, session_token))
        elif path == f"{auth}/bridge/code/validate":
            self._json(*fake.bridge_validate(body, session_token))
        elif path == f"{auth}/2sv/trust":
            self._json(*fake.trust(session_token))
        elif path == "/setup/ws/1/accountLogin":
            self._json(*fake.account_login(body))
        elif path == "/setup/ws/1/validate":
            self._json(*fake.validate(SimpleCookie(self.headers.get("Cookie", ""))))
        elif path == "/setup/ws/1/requestWebAccessState":
            self._json(200, {"isICDRSDisabled": False, "isDeviceConsentedForPCS": True}, {})
        elif path.endswith("/private/zones/list"):
            self._json(200, {"zones": [fake.zone()], "moreComing": False}, {})
        elif path.endswith("/shared/zones/list"):
            zones = [fake.zone(SHARED_ZONE)] if fake.shared_photos is not None else []
            self._json(200, {"zones": zones, "moreComing": False}, {})
        elif path.endswith("/records/lookup"):
            self._json(*fake.lookup(body, fake.library(path.split("/")[-3])))
        elif path.endswith("/records/query"):
            self._json(*fake.query(body, fake.library(path.split("/")[-3])))
        elif path.endswith("/internal/records/query/batch"):
            self._json(*fake.count_query(body, fake.library(path.split("/")[-5])))
        else:
            self._json(404, {"error": f"fake iCloud does not serve {method} {path}"}, {})

    def _session_token(self) -> str:
        # pyicloud sends the idmsa session id it was given; ours is derived from the session token
        session_id = self.headers.get("X-Apple-ID-Session-Id", "")
        return session_id.removeprefix("sid-")

    def _download(self, path: str) -> None:
        fake = self.fake
        key = path.split("/")[3] if len(path.split("/")) > 3 else ""
        content = fake.contents.get(key)
        if content is None:
            self._send(404, b"not found", "text/plain")
            return
        if fake.truncate_downloads > 0 and fake.truncate_skip > 0:
            fake.truncate_skip -= 1
        elif fake.truncate_downloads > 0:
            fake.truncate_downloads -= 1
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content[: len(content) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(200, content, "application/octet-stream")

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode() if (payload or status != 204) else b""
        self._send(status, data, "application/json;charset=UTF-8", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and status != 204:
            self.wfile.write(data)


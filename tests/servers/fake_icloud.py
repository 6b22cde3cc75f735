"""A local HTTPS server that speaks the iCloud endpoints pyicloud 2026.10.1 calls, built from the recorded
exchanges in ../shared/icloud-recorded (icloudpd's cassettes): Apple sign-in with real SRP-6a, the 2FA
routes (trusted device, SMS, security key, and the 2026 push bridge with its websocket: fake_push.py),
account login and validation with cookies, CloudKit
indexing state, zones, the newest-first "added" index with startRank paging, and asset downloads.

Everything is served from one loopback address under path prefixes (``/idmsa``, ``/setup``, ``/ck``,
``/content``); the account-login answer names the CloudKit host and each record names its download URL,
so pyicloud follows the fake's own addresses. Photo records are the recorded CPLMaster/CPLAsset records
with new names, sizes and download URLs pointing here. Every request is logged; failures can be
injected (status codes with headers, downloads cut off halfway).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import functools
import hashlib
import io
import ipaddress
import json
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, overload
from urllib.parse import parse_qs, urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image
from srp import _pysrp

from tests.servers.fake_push import TOPIC, PushBridge

RECORDED = Path(os.environ.get("PHOTOSORTER_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared")
                ).resolve() / "icloud-recorded"
DSID = "12345678901"
OWNER = "_bfc6dbbcc77b03e6cebefd28a28f7e2f"
SHARED_ZONE = "SharedSync-00000000-1111-2222-3333-444444444444"  # as recorded: the Shared Library's zone
SRP_ITERATIONS = 1000  # Apple uses ~20000; the protocol is the same, the tests are faster


# recordings -------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    pass


def _construct_python_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_python_tag)


@functools.cache
def recorded_interactions(name: str) -> tuple[dict[str, Any], ...]:
    """The exchanges of one recording, parsed once per process (YAML parsing takes seconds; callers read)."""
    with open(RECORDED / name, encoding="utf-8") as handle:
        return tuple(yaml.load(handle, Loader=_Loader)["interactions"])


def recorded_body(name: str, uri_part: str, *, contains: str = "") -> str:
    """The response body of the first recorded exchange whose URI holds ``uri_part``."""
    for interaction in recorded_interactions(name):
        body = interaction["response"]["body"].get("string") or ""
        if uri_part in interaction["request"]["uri"] and contains in str(body):
            return body if isinstance(body, str) else body.decode()
    raise KeyError(f"{name}: no exchange for {uri_part}")


def recorded_photo_records(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(CPLMaster, CPLAsset) pairs of the first photo listing in a recording, in the recorded order."""
    data = json.loads(recorded_body(name, "records/query", contains="CPLMaster"))
    masters = [r for r in data["records"] if r["recordType"] == "CPLMaster"]
    assets = {r["fields"]["masterRef"]["value"]["recordName"]: r for r in data["records"]
              if r["recordType"] == "CPLAsset"}
    return [(m, assets[m["recordName"]]) for m in masters if m["recordName"] in assets]


# content ----------------------------------------------------------------------------------------------
def jpeg_for(seed: str, size: tuple[int, int] = (64, 48)) -> bytes:
    digest = hashlib.sha256(seed.encode()).digest()
    image = Image.new("RGB", size, (digest[0], digest[1], digest[2]))
    image.putpixel((0, 0), (digest[3], digest[4], digest[5]))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def movie_for(seed: str) -> bytes:
    return b"\x00\x00\x00\x14ftypqt  " + hashlib.sha256(seed.encode()).digest() * 64


@dataclass
class FakePhoto:
    master: dict[str, Any]
    asset: dict[str, Any]
    content_keys: dict[str, str] = field(default_factory=dict)  # resource prefix -> its /content/B/<key>

    @property
    def id(self) -> str:
        return str(self.asset["recordName"])

    @property
    def filename(self) -> str:
        return base64.b64decode(self.master["fields"]["filenameEnc"]["value"]).decode("utf-8", "replace")


@dataclass
class Injection:
    path_part: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "application/json"
    delay_s: float = 0.0  # a server that hangs this long before answering


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


class FakeICloud:
    """State of the fake Apple: one account, its sessions, its photo library, the request log."""

    def __init__(self, folder: Path, *, apple_id: str = "jdoe@example.com", password: str = "correct horse",
                 two_factor: str = "trusted_device", code: str = "123456") -> None:
        self.apple_id, self.password, self.two_factor, self.code = apple_id, password, two_factor, code
        self.cert, self._key = make_certificate(folder)
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.injections: list[Injection] = []
        self.truncate_downloads = 0
        self.truncate_skip = 0  # downloads served whole before the truncating starts
        self.photos: list[FakePhoto] = []  # newest first (rank 0 is the newest)
        self.generated: GeneratedLibrary | None = None  # served instead of ``photos`` when set
        self.shared_photos: list[FakePhoto] | None = None  # the Shared Library, when the account has one
        self.contents: dict[str, bytes] = {}
        self.sync_version = 1
        self.indexing_state = "FINISHED"
        self.prompts = 0  # 2FA deliveries (SMS sends, trusted-device pushes)
        self.bridge = PushBridge(self.cert, self._key)  # the 2026 trusted-device push bridge (fake_push)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.closed_port = probe.getsockname()[1]  # where the push bridge's websocket is not served
        probe.close()
        self._srp: dict[str, Any] = {}
        self._session_tokens: dict[str, bool] = {}  # idmsa session token -> 2FA done
        self._trust_tokens: set[str] = set()
        self._web_tokens: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self._key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # lifecycle -----------------------------------------------------------------------------------
    def start(self) -> FakeICloud:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.bridge.stop()

    # library -------------------------------------------------------------------------------------
    def load_recording(self, name: str = "listing_photos.yml", *, copies: int = 1, limit: int | None = None) -> None:
        """Add the recorded photos (oldest last), ``copies`` times over with fresh ids: a bigger library."""
        pairs = recorded_photo_records(name)[:limit]
        for copy_number in range(copies):
            for master, asset in pairs:
                self.photos.append(self._adopt(master, asset, f"c{copy_number}"))
        self.sync_version += 1

    def generate_library(self, count: int, name: str = "listing_photos.yml") -> None:
        """A library of ``count`` photos made when a query asks for them (``GeneratedLibrary``): for
        listing benchmarks of 100,000 photos; their files are a few bytes, not images."""
        self.generated = GeneratedLibrary(self, recorded_photo_records(name), count)
        self.sync_version += 1

    def add_shared_library(self, name: str = "listing_photos.yml", *, limit: int | None = None) -> None:
        """Give the account a Shared Library (a zone of the shared database) holding recorded photos."""
        pairs = recorded_photo_records(name)[:limit]
        self.shared_photos = [self._adopt(master, asset, "shared") for master, asset in pairs]
        self.sync_version += 1

    def add_new_photo(self, name: str = "listing_photos.yml", index: int = 0, tag: str = "new", *,
                      shared: bool = False) -> FakePhoto:
        """A photo taken now: put at the head of the added-date index (of the personal library, or the
        Shared Library), and the zone's sync token moves."""
        master, asset = recorded_photo_records(name)[index]
        with self.lock:
            photo = self._adopt(master, asset, tag)
            (self.shared_photos if shared and self.shared_photos is not None else self.photos).insert(0, photo)
            self.sync_version += 1
        return photo

    def _adopt(self, master: dict[str, Any], asset: dict[str, Any], tag: str, *, bodies: bool = True) -> FakePhoto:
        master, asset = copy.deepcopy(master), copy.deepcopy(asset)
        keys: dict[str, str] = {}
        master_name = f"{master['recordName']}-{tag}"
        master["recordName"] = master_name
        asset["recordName"] = f"{asset['recordName']}-{tag}"
        asset["fields"]["masterRef"]["value"]["recordName"] = master_name
        # the master's files (resOriginal, ...) under their prefix; an edit's renditions on the asset
        # (resJPEGFull, ...) under "asset:<prefix>"
        for record, tail in ((master, ""), (asset, "asset:")):
            for field_name, value in record["fields"].items():
                if not (field_name.endswith("Res") and isinstance(value.get("value"), dict)):
                    continue
                token = value["value"]
                prefix = tail + field_name[:-3]
                kind = str(record["fields"].get(f"{field_name[:-3]}FileType", {}).get("value", ""))
                seed = f"{master_name}/{prefix}"
                key = hashlib.sha256(seed.encode()).hexdigest()[:32]
                if not bodies:  # sized and summed, never stored (a generated library's files)
                    token["size"], token["fileChecksum"] = len(seed), base64.b64encode(key.encode()).decode()
                else:
                    content = movie_for(seed) if "movie" in kind or "mpeg" in kind else jpeg_for(seed)
                    self._put(key, token, content)
                if "downloadURL" in token:
                    token["downloadURL"] = f"{self.url}/content/B/{key}/${{f}}?o=x&v=1"
                keys[prefix] = key
        return FakePhoto(master, asset, keys)

    def _put(self, key: str, token: dict[str, Any], content: bytes) -> None:
        self.contents[key] = content
        token["size"] = len(content)
        token["fileChecksum"] = base64.b64encode(hashlib.sha1(content).digest()).decode()

    def serve(self, photo: FakePhoto, prefix: str, content: bytes) -> None:
        """From now on the photo's ``prefix`` file (``resOriginal``, ``resJPEGMed``, ``asset:resJPEGFull``)
        is ``content``."""
        record = photo.asset if prefix.startswith("asset:") else photo.master
        self._put(photo.content_keys[prefix], record["fields"][f"{prefix.removeprefix('asset:')}Res"]["value"], content)

    def break_download(self, photo: FakePhoto, status: int = 404) -> None:
        """Every download of the photo's original answers ``status`` from now on."""
        self.inject(f"/content/B/{photo.content_keys['resOriginal']}/", status, times=10**6, content_type="text/plain",
                    body=b"gone")

    def lookup(self, body: dict[str, Any], photos: Sequence[FakePhoto]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """records/lookup: the asked-for CPLAsset or CPLMaster records, NOT_FOUND for the others."""
        by_name = {p.id: p.asset for p in photos} | {p.master["recordName"]: p.master for p in photos}
        records = []
        for wanted in body.get("records", []):
            name = wanted.get("recordName", "")
            records.append(by_name.get(name) or {"recordName": name, "reason": "Record not found",
                                                  "serverErrorCode": "NOT_FOUND"})
        return 200, {"records": records}, {}

    # sessions ------------------------------------------------------------------------------------
    def expire_sessions(self) -> None:
        """Months later: web sessions and session tokens are gone; the device trust token still works."""
        with self.lock:
            self._web_tokens.clear()
            self._session_tokens.clear()

    def forget_trust(self) -> None:
        with self.lock:
            self._trust_tokens.clear()

    def count(self, part: str) -> int:
        return sum(1 for _, path in self.requests if part in path)

    def inject(self, path_part: str, status: int, *, times: int = 1, headers: dict[str, str] | None = None,
               body: bytes = b"", content_type: str = "application/json", delay_s: float = 0.0) -> None:
        self.injections.append(Injection(path_part, status, times, headers or {}, body, content_type, delay_s))

    # the protocol -------------------------------------------------------------------------------
    def signin_init(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        _pysrp.rfc5054_enable()
        _pysrp.no_username_in_x()
        salt = secrets.token_bytes(16)
        while salt[0] == 0:  # the srp client hashes the salt as a number into x, dropping a leading zero
            salt = secrets.token_bytes(16)  # byte, so such a salt would fail one login in 256 (a flaky test)
        derived = hashlib.pbkdf2_hmac("sha256", hashlib.sha256(self.password.encode()).digest(), salt,
                                      SRP_ITERATIONS, 32)
        hash_class = hashlib.sha256
        n, g = _pysrp.get_ng(_pysrp.NG_2048, None, None)
        verifier_key = _pysrp.long_to_bytes(pow(g, _pysrp.gen_x(hash_class, salt, "", derived), n))
        verifier = _pysrp.Verifier(body.get("accountName", ""), salt, verifier_key, base64.b64decode(body["a"]),
                                   hash_alg=_pysrp.SHA256, ng_type=_pysrp.NG_2048)
        _, big_b = verifier.get_challenge()
        handle = f"d-{secrets.token_hex(8)}:MSA"
        self._srp[handle] = verifier
        return 200, {"iteration": SRP_ITERATIONS, "salt": base64.b64encode(salt).decode(), "protocol": "s2k",
                     "version": 1, "b": base64.b64encode(big_b).decode(), "c": handle}, {"scnt": "scnt-1"}

    def signin_complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        verifier = self._srp.pop(body.get("c", ""), None)
        good = (verifier is not None and body.get("accountName") == self.apple_id
                and verifier.verify_session(base64.b64decode(body.get("m1", ""))) is not None)
        if not good:
            return 401, {"serviceErrors": [{"code": "-20101", "message": "Your Apple ID or password was incorrect.",
                                            "suppressDismissal": False}]}, {}
        token = f"session-{secrets.token_hex(6)}"
        trusted = self.two_factor == "none" or any(t in self._trust_tokens for t in body.get("trustTokens", []))
        self._session_tokens[token] = trusted
        headers = {"X-Apple-Session-Token": token, "X-Apple-ID-Session-Id": f"sid-{token}", "scnt": "scnt-2",
                   "X-Apple-ID-Account-Country": "USA", "X-Apple-TwoSV-Trust-Eligible": "true"}
        if trusted:
            return 200, {"authType": "hsa2"}, headers
        if self.two_factor == "trusted_device":
            self.prompts += 1  # Apple pushes the code to the trusted devices on its own
        return 409, {"authType": "hsa2"}, headers

    def auth_options_html(self) -> str:
        """The HSA2 boot data of the auth page. ``sms``: a trusted phone that takes SMS. ``bridge``: the 2026
        trusted-device push bridge (``authInitialRoute`` ``auth/bridge/step`` with an APNS topic and a
        websocket host, as pyicloud 2026.10.1's ``hsa2_bridge`` reads them) served by ``fake_push``, and a
        trusted phone. ``bridge_down`` and ``bridge_down_sms``: the bridge is offered but its websocket
        does not answer; with ``_sms`` a trusted phone is there to fall back to, without it no code can
        be delivered at all. ``security_key``: the page offers the live bridge and the phone as well (the
        worst case for a client: only the key may be used; its challenge is in the JSON answer)."""
        html = recorded_body("2fa_flow_valid_code.yml", "/appleauth/auth", contains="boot_args")
        if self.two_factor not in ("sms", "bridge", "bridge_down", "bridge_down_sms", "security_key"):
            return html
        start, end = html.index(">") + 1, html.rindex("</script>")
        boot = json.loads(html[start:end])
        two_sv = boot["direct"]["twoSV"]
        phone = two_sv["phoneNumberVerification"]
        phone["trustedPhoneNumber"] = phone["trustedPhoneNumbers"][0]
        bridge: dict[str, Any] = {"phoneNumberVerification": phone}
        if self.two_factor.startswith("bridge") or self.two_factor == "security_key":
            boot["direct"]["authInitialRoute"] = "auth/bridge/step"
            host = f"127.0.0.1:{self.closed_port}" if "down" in self.two_factor else self.bridge.start().address
            bridge.update(apnsTopic=TOPIC, webSocketUrl=host)
        if self.two_factor == "bridge_down":  # no trusted phone number
            del two_sv["phoneNumberVerification"], bridge["phoneNumberVerification"]
        two_sv["bridgeInitiateData"] = bridge
        return html[:start] + json.dumps(boot) + html[end:]

    def auth_options_json(self) -> dict[str, Any]:
        if self.two_factor == "security_key":
            return {"fsaChallenge": {"challenge": "Y2hhbGxlbmdl", "keyHandles": ["a2V5"], "rpId": "apple.com"},
                    "keyNames": ["YubiKey 5C"]}
        return {}

    def bridge_step(self, number: int, body: dict[str, Any],
                    session_token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        if session_token not in self._session_tokens:
            return 401, {"serviceErrors": [{"code": "-21669", "message": "no sign-in"}]}, {}
        status, answer = self.bridge.step(number, body, session_token, self.code)
        if number == 0 and status == 200:
            self.prompts += 1  # the code shows on the trusted devices
        return status, answer, {}

    def bridge_validate(self, body: dict[str, Any], session_token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        if session_token not in self._session_tokens or not self.bridge.validate(body, session_token, self.code):
            return 412, {"service_errors": [{"code": "-21669", "message": "Incorrect verification code."}]}, {}
        self._session_tokens[session_token] = True
        return 204, {}, {"X-Apple-Session-Token": session_token}

    def verify_code(self, code: str, session_token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        if code != self.code or session_token not in self._session_tokens:
            return 400, {"service_errors": [{"code": "-21669", "title": "Incorrect Verification Code",
                                             "message": "Incorrect verification code."}], "hasError": True}, {}
        self._session_tokens[session_token] = True
        return 204, {}, {"X-Apple-Session-Token": session_token, "scnt": "scnt-3"}

    def trust(self, session_token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not self._session_tokens.get(session_token):
            return 401, {"serviceErrors": [{"code": "-21669", "message": "not verified"}]}, {}
        trust_token = f"trust-{secrets.token_hex(6)}"
        self._trust_tokens.add(trust_token)
        return 204, {}, {"X-Apple-TwoSV-Trust-Token": trust_token, "X-Apple-Session-Token": session_token}

    def account_data(self, trusted: bool) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(recorded_body("2fa_flow_valid_code.yml", "accountLogin",
                                                        contains="hsaTrustedBrowser"))
        data["hsaTrustedBrowser"] = trusted
        data["hsaChallengeRequired"] = not trusted
        data["dsInfo"]["dsid"] = DSID
        data["webservices"] = {"ckdatabasews": {"url": f"{self.url}/ck", "pcsRequired": True, "status": "active"}}
        return data

    def account_login(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        token = body.get("dsWebAuthToken", "")
        if token not in self._session_tokens:
            return 421, {"error": "Invalid session token"}, {}
        trusted = self._session_tokens[token] or body.get("trustToken", "") in self._trust_tokens
        web = f"web-{secrets.token_hex(8)}"
        self._web_tokens.add(web)
        return 200, self.account_data(trusted), {"Set-Cookie": f"X-APPLE-WEBAUTH-TOKEN={web}; Path=/; Secure"}

    def validate(self, cookies: SimpleCookie) -> tuple[int, dict[str, Any], dict[str, str]]:
        morsel = cookies.get("X-APPLE-WEBAUTH-TOKEN")
        if morsel is None or morsel.value not in self._web_tokens:
            return 421, {"error": "Missing X-APPLE-WEBAUTH-TOKEN cookie"}, {}
        return 200, self.account_data(True), {}

    def zone(self, name: str = "PrimarySync") -> dict[str, Any]:
        return {"zoneID": {"zoneName": name, "ownerRecordName": OWNER, "zoneType": "REGULAR_CUSTOM_ZONE"},
                "syncToken": self.sync_token(), "atomic": True}

    def library(self, database: str) -> Sequence[FakePhoto]:
        """The photos a query to the ``private`` or ``shared`` database reads."""
        if database == "private":
            return self.photos if self.generated is None else self.generated
        return self.shared_photos or []

    def sync_token(self) -> str:
        return base64.b64encode(f"fake-sync-{self.sync_version}".encode()).decode()

    def query(self, body: dict[str, Any], photos: Sequence[FakePhoto]) -> tuple[int, dict[str, Any], dict[str, str]]:
        query = body.get("query", {})
        kind = query.get("recordType")
        if kind == "CheckIndexingState":
            record = {"recordName": "_indexing", "recordType": "CheckIndexingState",
                      "fields": {"progress": {"value": 100, "type": "INT64"},
                                 "state": {"value": self.indexing_state, "type": "STRING"}},
                      "pluginFields": {}, "recordChangeTag": "0", "deleted": False,
                      "zoneID": {"zoneName": "PrimarySync", "ownerRecordName": OWNER}}
            return 200, {"records": [record], "syncToken": self.sync_token()}, {}
        if kind != "CPLAssetAndMasterByAddedDate":
            return 200, {"records": [], "syncToken": self.sync_token()}, {}
        filters = {f["fieldName"]: f["fieldValue"]["value"] for f in query.get("filterBy", [])}
        rank, per_page = int(filters.get("startRank", 0)), int(body.get("resultsLimit", 200)) // 2
        if filters.get("direction") != "DESCENDING":
            window = photos[rank:rank + per_page]
        else:  # a trailing window: the newest items up to ``rank``, arriving oldest to newest
            top = min(rank, len(photos) - 1)
            window = list(reversed(photos[max(0, top - per_page + 1):top + 1])) if top >= 0 else []
        records = [p.master for p in window] + [p.asset for p in window]
        return 200, {"records": records, "syncToken": self.sync_token()}, {}


    def count_query(self, body: dict[str, Any],
                    photos: Sequence[FakePhoto]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """HyperionIndexCountLookup, as recorded: the number of items in an index (the whole library)."""
        batch = body.get("batch") or [{}]
        index = ((batch[0].get("query") or {}).get("filterBy") or {}).get("fieldValue", {}).get("value", [""])[0]
        record = {"recordName": index, "recordType": "IndexCountResult",
                  "fields": {"itemCount": {"value": len(photos), "type": "INT64"}}, "pluginFields": {},
                  "recordChangeTag": "0", "deleted": False,
                  "zoneID": {"zoneName": "PrimarySync", "ownerRecordName": OWNER}}
        return 200, {"batch": [{"records": [record], "syncToken": self.sync_token()}]}, {}


class GeneratedLibrary(Sequence[FakePhoto]):
    """``count`` photos, the recorded ones over and over with ids ``<recorded>-g<rank>``, made when a query
    reads them and never kept: the server's memory stays flat however big the library. Rank 0 is the
    newest, as in ``FakeICloud.photos``."""

    def __init__(self, fake: FakeICloud, pairs: list[tuple[dict[str, Any], dict[str, Any]]], count: int) -> None:
        self.fake, self.pairs, self.size = fake, pairs, count

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> FakePhoto: ...

    @overload
    def __getitem__(self, index: slice) -> list[FakePhoto]: ...

    def __getitem__(self, index: int | slice) -> FakePhoto | list[FakePhoto]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if not -self.size <= index < self.size:
            raise IndexError(index)
        rank = index % self.size
        master, asset = self.pairs[rank % len(self.pairs)]
        return self.fake._adopt(master, asset, f"g{rank}", bodies=False)


class _Handler(BaseHTTPRequestHandler):
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


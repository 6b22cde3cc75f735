"""A local HTTPS server that speaks the iCloud endpoints pyicloud 2026.10.1 calls, built from the recorded
exchanges in ../shared/icloud-recorded (icloudpd's cassettes, read by fake_icloud_records.py): Apple sign-in
with real SRP-6a, the 2FA routes (trusted device, SMS, security key, and the 2026 push bridge with its
websocket: fake_push.py), account login and validation with cookies, CloudKit indexing state, zones, the
newest-first "added" index with startRank paging, and asset downloads.

Everything is served from one loopback address under path prefixes (``/idmsa``, ``/setup``, ``/ck``,
``/content``); the account-login answer names the CloudKit host and each record names its download URL,
so pyicloud follows the fake's own addresses. Photo records are the recorded CPLMaster/CPLAsset records
with new names, sizes and download URLs pointing here. Every request is logged; failures can be
injected (status codes with headers, downloads cut off halfway).

This module holds the fake Apple's state and its answers; fake_icloud_http.py routes each request to them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from srp import _pysrp

from tests.servers.fake_icloud_http import IcloudHandler, make_certificate
from tests.servers.fake_icloud_records import (
    SHARED_ZONE,
    FakePhoto,
    GeneratedLibrary,
    jpeg_for,
    movie_for,
    recorded_body,
    recorded_photo_records,
)
from tests.servers.fake_push import TOPIC, PushBridge

__all__ = ["SHARED_ZONE", "FakeICloud", "FakePhoto", "Injection", "recorded_photo_records"]

DSID = "12345678901"
OWNER = "_bfc6dbbcc77b03e6cebefd28a28f7e2f"
SRP_ITERATIONS = 1000  # Apple uses ~20000; the protocol is the same, the tests are faster


@dataclass
class Injection:
    path_part: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "application/json"
    delay_s: float = 0.0  # a server that hangs this long before answering

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
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), IcloudHandler)
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

    def issued_tokens(self) -> set[str]:
        """Every session, web (cookie) and trust token handed out so far: secrets a client must keep to itself."""
        with self.lock:
            return set(self._session_tokens) | self._web_tokens | self._trust_tokens

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


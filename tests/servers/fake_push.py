"""Apple's 2026 trusted-device push bridge on loopback, the server side of what pyicloud 2026.10.1 drives
(``pyicloud/hsa2_bridge.py``, ``hsa2_bridge_prover.py``), written from how that client behaves:

1. The client opens a TLS websocket to ``wss://<webSocketUrl>/v2/<hex>``; the hex is a protobuf holding an
   ephemeral P-256 public key, a nonce (0, 8-byte millisecond time, 8 random bytes) and its ECDSA-SHA256
   signature. The server checks the signature and the clock and answers with a push token (field 1).
2. The client subscribes to the APNS topic (field 3); the server confirms the subscription.
3. ``POST …/bridge/step/0`` {sessionUUID, ptkn}: this is the moment Apple shows a code on the trusted
   devices. The server pushes (field 2: SHA-1 of the topic, message id, JSON) ``nextStep`` 2 with a salt.
4. The person types the code. ``POST …/bridge/step/2`` carries the prover's SPAKE2+ share X; the server,
   knowing the code, pushes ``nextStep`` 4 with its share Y and confirmation. A wrong code fails the
   client's check of that confirmation, and the client stops there.
5. ``POST …/bridge/step/4`` carries the prover's confirmation; the server pushes ``nextStep`` 6 with the
   verification code encrypted under the key both sides now share (AES-GCM).
6. ``POST …/bridge/code/validate`` {sessionUUID, code}: the decrypted code; 204 makes the idmsa session
   verified (then ``/2sv/trust`` as for any code), 412 refuses it. ``POST …/bridge/step/6`` says done.

The SPAKE2+ verifier is this folder's own (spake2plus.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import secrets
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.servers.spake2plus import SpakeVerifier

TOPIC = "com.apple.idmsauthwidget"
NONCE_SLACK_S = 300  # a nonce further off the server's clock gets INVALID_NONCE with the server's time
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# protobuf, the few wire types the bridge uses ------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _fields(data: bytes) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    at = 0

    def varint() -> int:
        nonlocal at
        value = shift = 0
        while True:
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while at < len(data):
        key = varint()
        if key & 7 == 0:
            found.setdefault(key >> 3, []).append(varint())
        elif key & 7 == 2:
            length = varint()
            found.setdefault(key >> 3, []).append(data[at:at + length])
            at += length
        else:
            raise ValueError(f"wire type {key & 7}")
    return found


# the websocket side ---------------------------------------------------------------------------------------
@dataclass
class Connection:
    """One client websocket: its push token, its subscribed topics, what the bridge queued for it."""

    push_token: bytes
    topics: set[str] = field(default_factory=set)
    outbox: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)  # (topic or "", frame)
    acked: list[int] = field(default_factory=list)
    gone: threading.Event = field(default_factory=threading.Event)  # the websocket is closed
    hang_up: bool = False  # the server ends it (Apple closing an idle websocket)


@dataclass
class Flow:
    """One bridge session (sessionUUID) between step 0 and the code's validation."""

    session_uuid: str
    session_token: str
    connection: Connection
    salt: bytes
    txnid: str
    verifier: SpakeVerifier | None = None
    code_ok: bool = False
    done: bool = False


class PushBridge:
    """The websocket push service and the idmsa bridge steps, on 127.0.0.1 with the fake's certificate."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.connections: dict[str, Connection] = {}  # push token (hex) -> connection
        self.flows: dict[str, Flow] = {}
        self.pushes: list[dict[str, Any]] = []  # every push sent, in order
        self.refused: list[str] = []  # why connections were refused
        self._message_id = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> PushBridge:
        """Accept websockets (once; the fake starts it when its auth page first offers the bridge)."""
        with self.lock:
            if not self._threads:
                self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def hang_up(self) -> None:
        """Close every open websocket from the server's end, as Apple does with one left idle."""
        with self.lock:
            connections = [c for c in self.connections.values() if not c.gone.is_set()]
        for connection in connections:
            connection.hang_up = True
        for connection in connections:
            connection.gone.wait(5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, raw)

    def _serve(self, raw: socket.socket) -> None:
        connection = None
        raw.settimeout(5)
        try:
            with self.context.wrap_socket(raw, server_side=True) as sock:
                sock.settimeout(5)
                buffer = bytearray()
                while b"\r\n\r\n" not in buffer:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    buffer.extend(chunk)
                head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
                connection = self._handshake(sock, head.decode("latin-1"))
                if connection is not None:
                    self._pump(sock, connection, bytearray(rest))
        except (OSError, ValueError, IndexError, KeyError):
            pass  # the client went away mid-frame, or sent what no Apple client sends
        finally:
            if connection is not None:
                connection.gone.set()

    def _handshake(self, sock: ssl.SSLSocket, head: str) -> Connection | None:
        lines = head.split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + WEBSOCKET_GUID).digest())
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        status = self._check_connection(path.removeprefix("/v2/"))
        if status:
            self._send(sock, _field(1, _field(2, status) + _field(3, int(time.time()))))
            return None
        connection = Connection(secrets.token_bytes(32))
        with self.lock:
            self.connections[connection.push_token.hex()] = connection
        self._send(sock, _field(1, _field(1, base64.b64encode(connection.push_token)) + _field(2, 0)))
        return connection

    def _check_connection(self, hex_path: str) -> int:
        """0 when the connection message is signed by the key it carries and its nonce is current; else
        the status the client gets (2: INVALID_NONCE, with the server's time)."""
        message = _fields(_fields(bytes.fromhex(hex_path))[1][0])
        public_key, nonce, signature = message[1][0], message[2][0], message[3][0]
        if not signature.startswith(b"\x01\x03"):
            self.refused.append("signature without its envelope")
            return 1
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
            key.verify(signature[2:], nonce, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            self.refused.append("bad signature")
            return 1
        if abs(int.from_bytes(nonce[1:9], "big") / 1000 - time.time()) > NONCE_SLACK_S:
            self.refused.append("stale nonce")
            return 2
        return 0

    def _pump(self, sock: ssl.SSLSocket, connection: Connection, buffer: bytearray) -> None:
        """Read the client's frames and send what the bridge queued, until either side closes. One thread
        owns the TLS socket (OpenSSL must not read and write one connection from two threads at once). A
        push waits for its topic's subscription: the client subscribes and posts step 0 at once, and the
        two travel by different connections here."""
        sock.settimeout(0.02)
        held: list[tuple[str, bytes]] = []
        while not self._stop.is_set() and not connection.hang_up:
            while not connection.outbox.empty():
                held.append(connection.outbox.get())
            for item in [h for h in held if not h[0] or h[0] in connection.topics]:
                held.remove(item)
                self._send(sock, item[1])
            frame = _take_frame(buffer)
            if frame is None:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buffer.extend(chunk)
                continue
            opcode, payload = frame
            if opcode == 0x8:
                return
            if opcode == 0x2:
                self._client_message(connection, payload)

    def _client_message(self, connection: Connection, payload: bytes) -> None:
        message = _fields(payload)
        if 3 in message:  # the topic filter: subscribe, and confirm it
            topics = [t.decode() for t in _fields(message[3][0]).get(1, [])]
            connection.topics.update(topics)
            answer = b"".join(_field(1, _field(1, t.encode())) for t in topics)
            connection.outbox.put(("", _field(3, _field(1, answer) + _field(2, self._next_id()) + _field(3, 0))))
        if 2 in message:  # an acknowledgement of a push
            connection.acked.append(int(_fields(message[2][0]).get(2, [0])[0]))

    def _next_id(self) -> int:
        with self.lock:
            self._message_id += 1
            return self._message_id

    @staticmethod
    def _send(sock: ssl.SSLSocket, payload: bytes) -> None:
        length = len(payload)
        header = bytes([0x82]) + (bytes([length]) if length < 126 else bytes([126]) + struct.pack("!H", length))
        sock.sendall(header + payload)

    def push(self, flow: Flow, payload: dict[str, Any]) -> bool:
        """Deliver ``payload`` on the topic to the flow's websocket; False when it is closed."""
        connection = flow.connection
        if connection.gone.is_set():
            return False
        body = {"aps": {"alert": ""}, "cmd": 800, "txnid": flow.txnid, "flowid": flow.session_uuid, **payload}
        self.pushes.append(body)
        topic = hashlib.sha1(TOPIC.encode()).digest()
        frame = _field(2, _field(1, topic) + _field(2, self._next_id()) + _field(4, json.dumps(body).encode()))
        connection.outbox.put((TOPIC, frame))
        return True

    # the idmsa side ---------------------------------------------------------------------------------
    def step(self, number: int, body: dict[str, Any], session_token: str, code: str) -> tuple[int, dict[str, Any]]:
        """``POST /appleauth/auth/bridge/step/<number>``: (status, JSON answer)."""
        if number == 0:
            connection = self.connections.get(str(body.get("ptkn", "")))
            if connection is None:
                return 400, {"serviceErrors": [{"code": "-28001", "message": "unknown push token"}]}
            flow = Flow(str(body.get("sessionUUID", "")), session_token, connection, secrets.token_bytes(16),
                        f"{secrets.token_hex(8)}_M")
            self.flows[flow.session_uuid] = flow
            delivered = self.push(flow, {"nextStep": 2, "salt": base64.b64encode(flow.salt).decode(),
                                         "akdata": "ak", "idmsdata": "idms"})
            return (200, {}) if delivered else (503, {"serviceErrors": [{"code": "-28002", "message": "no push"}]})
        flow = self.flows.get(str(body.get("sessionUUID", "")))
        if flow is None or flow.session_token != session_token or flow.done:
            return 400, {"serviceErrors": [{"code": "-28003", "message": "unknown bridge session"}]}
        data = base64.b64decode(str(body.get("data", "")))
        if number == 2:
            flow.verifier = SpakeVerifier(code, flow.salt)
            confirm = flow.verifier.answer(data)
            blob = f"{base64.b64encode(flow.verifier.share_v).decode()}_{base64.b64encode(confirm).decode()}"
            self.push(flow, {"nextStep": 4, "data": base64.b64encode(blob.encode()).decode()})
            return 200, {}
        if number == 4 and flow.verifier is not None and flow.verifier.prover_knew_the_code(data):
            self.push(flow, {"nextStep": 6, "encryptedCode": flow.verifier.encrypt(code)})
            return 200, {}
        if number == 6 and data == b"done":
            flow.done = True
            return 200, {}
        return 400, {"serviceErrors": [{"code": "-21669", "message": "Incorrect verification code."}]}

    def validate(self, body: dict[str, Any], session_token: str, code: str) -> bool:
        """``POST /appleauth/auth/bridge/code/validate``: whether the decrypted code is the one shown."""
        flow = self.flows.get(str(body.get("sessionUUID", "")))
        ok = (flow is not None and flow.session_token == session_token and flow.verifier is not None
              and bool(flow.verifier.shared_key) and hmac.compare_digest(str(body.get("code", "")), code))
        if flow is not None:
            flow.code_ok = ok
        return ok


def _take_frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """One whole (masked) client frame off the front of ``buffer``, or None until more arrives."""
    if len(buffer) < 2:
        return None
    length, at = buffer[1] & 0x7F, 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, at = struct.unpack("!H", buffer[2:4])[0], 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, at = struct.unpack("!Q", buffer[2:10])[0], 10
    masked = buffer[1] & 0x80
    mask = bytes(buffer[at:at + 4]) if masked else b""
    at += 4 if masked else 0
    if len(buffer) < at + length:
        return None
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buffer[at:at + length])) if masked else bytes(
        buffer[at:at + length])
    opcode = buffer[0] & 0x0F
    del buffer[:at + length]
    return opcode, payload


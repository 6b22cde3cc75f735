"""The verifier's side of SPAKE2+ (RFC 9383 shapes) as Apple's trusted-device push bridge uses it, written
for the fake bridge (fake_push.py) from how pyicloud 2026.10.1's prover behaves: P-256 with the RFC's M and
N, a transcript of 8-byte little-endian length-prefixed parts with the identities ``webprover`` and
``webverifier`` and the context ``SPAKE2Web``, HKDF-SHA256 for the confirmation and shared keys. w0 and w1
are the two halves of scrypt(code, salt, n=2^14, r=8, p=1, 64 bytes), and w0 goes into the transcript
unreduced, big-endian without leading zeros. The trusted device (the verifier) knows the code shown on it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

P = 2**256 - 2**224 + 2**192 + 2**96 - 1
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)
Point = tuple[int, int] | None


def _decompress(sec1_hex: str) -> Point:
    raw = bytes.fromhex(sec1_hex)
    x = int.from_bytes(raw[1:], "big")
    y = pow((x**3 - 3 * x + B) % P, (P + 1) // 4, P)
    return (x, y if y % 2 == raw[0] % 2 else P - y)


M = _decompress("02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f")  # RFC 9383, P-256
N = _decompress("03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49")


def _add(a: Point, b: Point) -> Point:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    tangent = a == b  # doubling: the slope of the tangent (a = -3 on P-256)
    rise, run = (3 * a[0] * a[0] - 3, 2 * a[1]) if tangent else (b[1] - a[1], b[0] - a[0])
    slope = rise * pow(run, -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return (x, (slope * (a[0] - x) - a[1]) % P)


def _mul(point: Point, scalar: int) -> Point:
    result: Point = None
    scalar %= ORDER
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode(point: Point) -> bytes:
    assert point is not None
    return b"\x04" + point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")


def _decode(raw: bytes) -> Point:
    if len(raw) != 65 or raw[0] != 4:
        raise ValueError("not an uncompressed P-256 point")
    x, y = int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")
    if (y * y - x**3 + 3 * x - B) % P:
        raise ValueError("not on P-256")
    return (x, y)


def _hkdf(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


class SpakeVerifier:
    """The trusted device's side: knows the code, proves it, and learns whether the prover knew it too."""

    def __init__(self, code: str, salt: bytes) -> None:
        derived = hashlib.scrypt(code.encode(), salt=salt, n=16384, r=8, p=1, dklen=64)
        self.w0 = int.from_bytes(derived[:32], "big")
        self.w1 = int.from_bytes(derived[32:], "big")
        self._y = secrets.randbelow(ORDER - 1) + 1
        self.share_v = _encode(_add(_mul(G, self._y), _mul(N, self.w0)))
        self._confirm_p = b""
        self.shared_key = b""

    def answer(self, share_p: bytes) -> bytes:
        """The verifier's confirmation of the prover's share X (step 2)."""
        x_point = _decode(share_p)
        z = _mul(_add(x_point, _mul(M, ORDER - self.w0 % ORDER)), self._y)
        v = _mul(_mul(G, self.w1), self._y)
        parts = [b"SPAKE2Web", b"com.apple.security.webprover", b"com.apple.security.webverifier", _encode(M),
                 _encode(N), share_p, self.share_v, _encode(z), _encode(v),
                 self.w0.to_bytes(max(1, (self.w0.bit_length() + 7) // 8), "big")]
        main = hashlib.sha256(b"".join(len(p).to_bytes(8, "little") + p for p in parts)).digest()
        confirm = _hkdf(main, b"ConfirmationKeys", 64)
        self._confirm_p = hmac.new(confirm[:32], self.share_v, hashlib.sha256).digest()
        self.shared_key = _hkdf(main, b"SharedKey", 32)
        return hmac.new(confirm[32:], share_p, hashlib.sha256).digest()

    def prover_knew_the_code(self, confirmation: bytes) -> bool:
        return bool(self._confirm_p) and hmac.compare_digest(confirmation, self._confirm_p)

    def encrypt(self, text: str) -> str:
        """``text`` for the prover: version 0, 12-byte IV, 16-byte tag, ciphertext; the version byte is the AAD."""
        iv = secrets.token_bytes(12)
        sealed = AESGCM(_hkdf(self.shared_key, b"webVerifier", 32)).encrypt(iv, text.encode(), b"\x00")
        return base64.b64encode(b"\x00" + iv + sealed[-16:] + sealed[:-16]).decode()

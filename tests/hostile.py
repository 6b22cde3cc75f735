"""Hostile files, made on the fly: broken, misnamed, oversized, not files at all, badly named."""

from __future__ import annotations

import io
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from tests.conftest import jpeg_bytes


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims another size."""
    data = bytearray(jpeg_bytes((10, 200, 10)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _heic(tmp: Path) -> bytes:
    Image.new("RGB", (400, 300), (200, 20, 20)).save(tmp / "src.png")
    subprocess.run(["heif-enc", "-q", "50", str(tmp / "src.png"), "-o", str(tmp / "src.heic")], check=True,
                   capture_output=True)
    return (tmp / "src.heic").read_bytes()


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 48), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _bad_orientation() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 9  # no such orientation
    return _save(Image.new("RGB", (64, 48), (1, 2, 3)), "JPEG", exif=exif)


def make_hostile_inbox(inbox: Path, scratch: Path) -> dict[bytes, str]:
    """Fill ``inbox`` with hostile files; returns each file name (bytes) -> what it is. Data files, plus a
    FIFO, a socket and symlinks out of the inbox (which must be left alone and never block)."""
    inbox.mkdir(parents=True)
    scratch.mkdir(parents=True, exist_ok=True)
    good = jpeg_bytes((220, 20, 20), size=(320, 240), noise_seed=1)
    png = _save(Image.new("RGB", (320, 240), (20, 20, 220)), "PNG")
    heic = _heic(scratch)
    files: dict[bytes, tuple[str, Callable[[], bytes]]] = {
        b"zero.jpg": ("zero bytes", lambda: b""),
        b"truncated.jpg": ("truncated JPEG", lambda: good[: len(good) // 3]),
        b"truncated.png": ("truncated PNG", lambda: png[: len(png) // 2]),
        b"truncated.heic": ("truncated HEIC", lambda: heic[: len(heic) // 2]),
        b"garbled-header.jpg": ("JPEG with a garbled header", lambda: good[:2] + os.urandom(200) + good[202:]),
        b"random.jpg": ("random bytes", lambda: os.urandom(5000)),
        b"text.jpg": ("text named .jpg", lambda: b"hello, not an image\n" * 50),
        b"pdf.jpg": ("PDF named .jpg", lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"),
        b"bomb.png": ("PNG decompression bomb 20000x20000", lambda: _save(Image.new("1", (20000, 20000)), "PNG")),
        b"bomb.jpg": ("JPEG header claiming 65000x65000", lambda: _jpeg_claiming(65000, 65000)),
        b"bomb.gif": ("GIF 30000x30000", lambda: _save(Image.new("P", (30000, 30000)), "GIF")),
        b"thin.png": ("PNG 10000x1", lambda: _save(Image.new("RGB", (10000, 1)), "PNG")),
        b"thin.jpg": ("JPEG 1x20000", lambda: _save(Image.new("RGB", (1, 20000), (9, 9, 9)), "JPEG")),
        b"cmyk.jpg": ("CMYK JPEG", lambda: _save(Image.new("CMYK", (64, 64), (0, 255, 0, 0)), "JPEG")),
        b"sixteen.png": ("16-bit PNG", lambda: _save(Image.new("I;16", (64, 64), 40000), "PNG")),
        b"palette.png": ("palette PNG with transparency",
                         lambda: _save(Image.new("P", (64, 64), 3), "PNG", transparency=3)),
        b"rgba.png": ("RGBA PNG", lambda: _save(Image.new("RGBA", (64, 64), (9, 200, 9, 100)), "PNG")),
        b"la.png": ("gray+alpha PNG", lambda: _save(Image.new("LA", (64, 64), (90, 100)), "PNG")),
        b"bilevel.png": ("1-bit PNG", lambda: _save(Image.new("1", (64, 64), 1), "PNG")),
        b"animated.gif": ("animated GIF", lambda: _animated("GIF")),
        b"animated.png": ("animated PNG", lambda: _animated("PNG")),
        b"truncated.webp": ("truncated WebP", lambda: _save(Image.new("RGB", (200, 200), (5, 90, 5)), "WEBP")[:60]),
        b"png-named.jpg": ("PNG named .jpg", lambda: png),
        b"jpeg-named.png": ("JPEG named .png", lambda: good[:-10] + b"\x00" * 8 + good[-2:]),
        b"heic-named.jpg": ("HEIC named .jpg", lambda: heic),
        b"orientation-9.jpg": ("EXIF orientation 9", _bad_orientation),
        b"trailing-garbage.jpg": ("JPEG with garbage after its end", lambda: good + os.urandom(3000)),
        b"clip.mov": ("random bytes named .mov", lambda: os.urandom(4000)),
        b"name\nwith newline.jpg": ("newline in the name", lambda: jpeg_bytes((1, 1, 1), noise_seed=2)),
        b"bad-\xff\xfe.jpg": ("name not UTF-8", lambda: jpeg_bytes((2, 2, 2), noise_seed=3)),
        b"x" * 251 + b".jpg": ("255-byte name", lambda: jpeg_bytes((3, 3, 3), noise_seed=4)),
        b"..jpg": ("hidden name ..jpg", lambda: jpeg_bytes((4, 4, 4), noise_seed=5)),
    }
    kinds = {}
    for name, (what, make) in files.items():
        with open(os.path.join(os.fsencode(inbox), name), "wb") as handle:
            handle.write(make())
        kinds[name] = what
    with open(inbox / "huge.jpg", "wb") as handle:  # sparse: no disk, 400 MB as far as anyone can tell
        handle.write(good[:4])
        handle.truncate(400_000_000)
    kinds[b"huge.jpg"] = "sparse 400 MB file named .jpg"
    os.mkfifo(inbox / "fifo.jpg")
    kinds[b"fifo.jpg"] = "FIFO named .jpg"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(inbox / "socket.jpg"))
    server.close()
    kinds[b"socket.jpg"] = "socket named .jpg"
    os.symlink("/etc/hostname", inbox / "link-out.jpg")
    kinds[b"link-out.jpg"] = "symlink to a file outside the inbox"
    os.symlink("/etc", inbox / "link-dir")
    kinds[b"link-dir"] = "symlink to a folder outside the inbox"
    return kinds


def run_measured(args: list[str], log: Path, timeout_s: float = 300.0, address_limit: int = 6 << 30,
                 env: dict[str, str] | None = None) -> tuple[int, float, str]:
    """Run ``python -m photosorter *args`` under an address-space limit; (exit code, peak RSS in MB from wait4,
    output). A run still going after ``timeout_s`` (a hang) is killed and fails the caller's exit check."""
    import resource
    import sys
    import time

    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "photosorter", *args], stdout=out, stderr=subprocess.STDOUT, env=env,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (address_limit, address_limit)))
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
            time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, log.read_text(errors="replace")

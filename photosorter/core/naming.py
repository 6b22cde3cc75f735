"""File names in the library: safe, bounded, never colliding. Pure."""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 180  # well under the 255-byte limit, leaving room for a collision suffix


def safe_name(raw: str | bytes) -> str:
    """The photo's own name, kept as given where the library can hold it.

    Only what cannot be stored or shown is changed: bytes that are not UTF-8, ``/``, NUL and control
    characters (a newline, ESC or BEL in a name breaks scripts, listings and terminals) become ``_``,
    leading dots go (a hidden file would vanish from view), and the length is bounded.
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    text = unicodedata.normalize("NFC", text)
    cleaned = "".join("_" if ch in "/\ufffd" or unicodedata.category(ch) == "Cc" else ch
                      for ch in text).lstrip(".").strip(" ") or "photo"
    stem, dot, ext = cleaned.rpartition(".")
    if not dot or not stem or len(ext) > 8:
        stem, ext = cleaned, ""
    ext = ext.lower()
    budget = MAX_NAME_BYTES - len(ext.encode()) - 1
    stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore") or "photo"
    return f"{stem}.{ext}" if ext else stem


def printable(text: str | bytes) -> str:
    """Text (or a file system path's bytes) safe for one log line: control characters and bytes that
    are not UTF-8 shown as escapes. Also the form in which source paths are stored."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="backslashreplace")
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape", "backslashreplace").decode()
                   for ch in text)


def numbered_name(name: str, number: int) -> str:
    """``name`` with a collision counter: ``IMG_1.jpg`` -> ``IMG_1-2.jpg``."""
    if number <= 1:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{number}.{ext}" if dot and stem else f"{name}-{number}"

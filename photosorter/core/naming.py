"""File names in the library: safe, bounded, never colliding. Pure."""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 180  # well under the 255-byte limit, leaving room for a collision suffix


def _clean_char(ch: str) -> str:
    kind = unicodedata.category(ch)
    if kind == "Zs":
        return " "  # odd spaces (no-break, thin) become plain ones
    if kind[0] == "C" or kind in ("Zl", "Zp") or ch in "/\\\ufffd":
        return "_"
    return ch


def safe_name(raw: str | bytes) -> str:
    """A clean UTF-8 file name: undecodable bytes and control characters become ``_``, length bounded."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    text = unicodedata.normalize("NFC", text)
    cleaned = "".join(_clean_char(ch) for ch in text)
    cleaned = cleaned.strip().lstrip(".") or "photo"
    stem, dot, ext = cleaned.rpartition(".")
    if not dot or not stem or len(ext) > 8:
        stem, ext = cleaned, ""
    ext = ext.lower()
    budget = MAX_NAME_BYTES - len(ext.encode()) - 1
    stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip() or "photo"
    return f"{stem}.{ext}" if ext else stem


def numbered_name(name: str, number: int) -> str:
    """``name`` with a collision counter: ``IMG_1.jpg`` -> ``IMG_1-2.jpg``."""
    if number <= 1:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{number}.{ext}" if dot and stem else f"{name}-{number}"

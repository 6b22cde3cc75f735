"""Library file names are clean, bounded and never collide."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from photosorter.core.naming import MAX_NAME_BYTES, numbered_name, printable, safe_name


@given(st.binary(min_size=0, max_size=400))
def test_any_byte_name_becomes_a_clean_bounded_name(raw: bytes) -> None:
    name = safe_name(raw)
    assert name and "/" not in name and "\0" not in name and not name.startswith(".")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES


@given(st.text())
def test_printable_text_is_one_line(text: str) -> None:
    shown = printable(text)
    assert "\n" not in shown and "\r" not in shown and all(ch.isprintable() for ch in shown)


def test_extension_is_kept_and_lower_cased() -> None:
    assert safe_name("IMG_0001.JPG") == "IMG_0001.jpg"
    assert safe_name("x" * 300 + ".heic").endswith(".heic")


def test_collision_counter_goes_before_the_extension() -> None:
    assert numbered_name("IMG_1.jpg", 1) == "IMG_1.jpg"
    assert numbered_name("IMG_1.jpg", 3) == "IMG_1-3.jpg"
    assert numbered_name("README", 2) == "README-2"

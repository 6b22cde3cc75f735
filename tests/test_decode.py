"""Decoding small: JPEG draft mode, HEIC embedded thumbnails, EXIF orientation, odd modes."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from photosorter.adapters.images import decode_image
from photosorter.errors import ImageError


def test_big_jpeg_is_decoded_at_a_reduced_scale() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4032, 3024), (10, 200, 10)).save(buffer, "JPEG")
    assert decode_image(buffer.getvalue(), 224).size == (504, 378)


def test_exif_orientation_is_applied() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.new("RGB", (400, 300), (10, 200, 10)).save(buffer, "JPEG", exif=exif)
    assert decode_image(buffer.getvalue(), 224).size == (300, 400)


def test_heic_embedded_thumbnail_is_used_when_big_enough(tmp_path: Path) -> None:
    encoder = shutil.which("heif-enc")
    if encoder is None:
        pytest.fail("heif-enc not found: apt-get install -y libheif-examples")
    Image.new("RGB", (2000, 1500), (20, 200, 20)).save(tmp_path / "big.png")
    subprocess.run([encoder, "-t", "320", "-q", "50", str(tmp_path / "big.png"), "-o", str(tmp_path / "big.heic")],
                   check=True, capture_output=True)
    data = (tmp_path / "big.heic").read_bytes()
    assert decode_image(data, 224).size == (320, 240)  # the thumbnail
    assert decode_image(data, 256).size == (2000, 1500)  # thumbnail too small: the full picture


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "LA", "RGBA", "1"])
def test_unusual_pixel_modes_become_rgb(mode: str) -> None:
    buffer = io.BytesIO()
    Image.new(mode, (64, 64)).save(buffer, "JPEG" if mode == "CMYK" else "PNG")
    assert decode_image(buffer.getvalue(), 224).mode == "RGB"


def test_decompression_bomb_is_refused_before_decoding() -> None:
    buffer = io.BytesIO()
    Image.new("1", (15000, 10000)).save(buffer, "PNG")
    with pytest.raises(ImageError) as caught:
        decode_image(buffer.getvalue(), 224)
    assert caught.value.reason == "too-large"

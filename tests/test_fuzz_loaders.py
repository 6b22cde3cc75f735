"""Fuzzing the two loaders that read outside input: add-on options and image bytes.

Whatever they are given they answer with a value or their own error (``ConfigError``, ``ImageError``) — never
another exception — and memory stays bounded (the process's peak RSS, read before and after). 300 and 600
examples here; PHOTOSORTER_FUZZ_EXAMPLES for longer runs.
"""

from __future__ import annotations

import io
import json
import os
import resource
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from photosorter.adapters.images import decode_image
from photosorter.config import load_settings
from photosorter.errors import ConfigError, ImageError
from photosorter.ml.modelspec import Preprocess
from photosorter.ml.preprocess import fit_to_input, gray_thumbnail, shrink
from photosorter.options import OPTIONS
from tests.conftest import jpeg_bytes

MAX_GROWTH_MB = 400

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
option_keys = st.sampled_from([o.key for o in OPTIONS] + ["unknown", ""])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@settings(max_examples=int(os.environ.get("PHOTOSORTER_FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.dictionaries(option_keys, json_values, max_size=8),
       env=st.dictionaries(option_keys.map(lambda k: "PHOTOSORTER_" + k.upper()), st.text(max_size=30), max_size=5))
def test_any_options_file_gives_settings_or_one_config_error(tmp_path: Path, options: dict[str, object],
                                                              env: dict[str, str]) -> None:
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options))
    try:
        load_settings(environ=env, dotenv_path=tmp_path / "none", options_path=path)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and "\n" not in p for p in exc.problems)


def _save(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


SEEDS = {
    "jpeg": jpeg_bytes((200, 30, 30), size=(96, 64), noise_seed=1),
    "png": _save(Image.new("RGB", (96, 64), (30, 200, 30)), "PNG"),
    "gif": _save(Image.new("P", (96, 64), 5), "GIF"),
    "webp": _save(Image.new("RGB", (96, 64), (30, 30, 200)), "WEBP"),
    "tiff": _save(Image.new("RGB", (32, 16), (30, 30, 200)), "TIFF"),
    "bmp": _save(Image.new("RGB", (32, 16), (30, 30, 200)), "BMP"),
    "heif": _save(Image.new("RGB", (64, 48), (200, 200, 30)), "HEIF"),
}
SPEC = Preprocess(size=64, resize_short=72, resample="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                  rescale=1 / 255, dtype="float32", layout="nchw")


def _mutated(draw: st.DrawFn) -> bytes:
    """A valid image of some format with some bytes changed, cut or appended, or a header with random rest."""
    seed = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[seed])
    how = draw(st.sampled_from(["flip", "cut", "header", "grow"]))
    if how == "flip":
        for _ in range(draw(st.integers(1, 12))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "header":
        keep = draw(st.integers(4, 40))
        data = data[:keep] + bytearray(draw(st.binary(max_size=2000)))
    else:  # size fields rewritten: the header claims another size
        where = draw(st.integers(0, min(len(data) - 4, 64)))
        data[where:where + 4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


@settings(max_examples=int(os.environ.get("PHOTOSORTER_FUZZ_EXAMPLES", "600")), deadline=None)
@given(data=st.composite(_mutated)())
def test_any_image_bytes_decode_or_give_one_image_error(data: bytes) -> None:
    before = peak_mb()
    try:
        image = decode_image(data, 64)
    except ImageError as exc:
        assert exc.reason and exc.message
    else:
        small = shrink(image, 64)  # as the sorter does
        assert fit_to_input(small, SPEC).shape == (64, 64, 3)
        assert gray_thumbnail(small).shape == (8, 9)
    assert peak_mb() - before < MAX_GROWTH_MB


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 3000), height=st.integers(1, 3000), size=st.sampled_from([64, 224]))
def test_an_image_is_shrunk_for_the_model_to_no_less_than_twice_its_input(width: int, height: int,
                                                                          size: int) -> None:
    small = shrink(Image.new("RGB", (width, height)), size)
    assert min(small.size) >= min(2 * size, width, height)
    assert small.size == (width, height) or min(small.size) < 4 * size  # big ones are not kept big

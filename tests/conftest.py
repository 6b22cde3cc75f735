"""Shared fixtures: tiny real ONNX models, photos made on the fly, paths to the shared test data."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from hypothesis import settings as hypothesis_settings
from PIL import Image

from tests.tinymodels import build_tiny_classifier, build_tiny_clip

pillow_heif.register_heif_opener()

# Under CI the property tests draw the same examples every run: a red CI names a bug that reproduces,
# never a coin toss. Elsewhere they explore new examples each run.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    hypothesis_settings.load_profile("ci")

pytest_plugins = ["tests.servers.mosquitto", "tests.filesystems", "tests.icloudfixtures", "tests.browser"]

SHARED = Path(os.environ.get("PHOTOSORTER_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared")).resolve()


def shared_path(*parts: str) -> Path:
    """A path in ../shared; fails under CI=true when missing, else skips with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"shared test data not found at {path} (set PHOTOSORTER_SHARED)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def restore_root_logging() -> Iterator[None]:
    """The CLI, run in-process, points the root logger at pytest's captured stderr; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def photos_settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests write a photo and sort it the same instant: no settle wait (tests of the wait set their own)."""
    monkeypatch.setenv("PHOTOSORTER_SETTLE_SECONDS", "0")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = shared_path("models", "clip-tokenizer", "tokenizer.json")
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"), tokenizer)


def jpeg_bytes(color: tuple[int, int, int], size: tuple[int, int] = (64, 48), noise_seed: int | None = None) -> bytes:
    array = np.empty((size[1], size[0], 3), dtype=np.uint8)
    array[:] = color
    if noise_seed is not None:
        rng = np.random.default_rng(noise_seed)
        array = np.clip(array.astype(np.int16) + rng.integers(-20, 20, array.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def write_photo(folder: Path, name: str, color: tuple[int, int, int], **kwargs: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(jpeg_bytes(color, **kwargs))  # type: ignore[arg-type]
    return path


def settings_env(library: Path, data: Path, model: Path) -> dict[str, str]:
    return {"PHOTOSORTER_LIBRARY": str(library), "PHOTOSORTER_DATA": str(data), "PHOTOSORTER_MODEL": str(model)}


def read_json(path: Path) -> object:
    return json.loads(path.read_text())

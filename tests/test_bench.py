"""bench/run.py --quick runs every kind of row end to end (no figure is checked: speed is the bench's
business, never a test's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_the_quick_benchmark_prints_every_kind_of_row() -> None:
    photos, model = shared_path("eval", "photos"), shared_path("models", "mobilenet-v2")
    faces = shared_path("models", "faces")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--photos", str(photos),
                           "--model", str(model), "--faces", str(faces)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for kind in ("model only: MobileNetV2 int8", "model only: MobileNetV2 float32", "sort 12 MP JPEG",
                 "sort 12 MP HEIC", "sort eval set", "sort PNG screenshots", "iCloud rendition",
                 "from iCloud's rendition: model only / end to end", "photosorter + faces",
                 "photosorter + faces + text", "memory, MobileNetV2 + faces", "kNN 10k x 512: photosorter (graph)",
                 "state: check 10k", "photos: status command", "MQTT status publish", "daemon idle"):
        assert kind in done.stdout, kind
    assert "ratio" in done.stdout and "Traceback" not in done.stderr

"""How much of a photo is text: PP-OCRv4's text detector (ONNX, shipped in photosorter/data/models/ppocr-det,
from the rapidocr-onnxruntime 1.4.4 wheel) driven by our own small pre- and post-processing, so neither
opencv, shapely nor pyclipper (what the package pulls in) enter the runtime.

The detector gives a text probability per pixel; the share of pixels above ``TEXT_PROBABILITY`` is the
photo's text coverage. Measured at 320 px (long side) on the shared photos, median coverage is text 0.05
to 0.07, screenshot 0.01 to 0.02, beer (labels, cans) 0.01, and 0.000 for animal, food, people, scenery.
Reading the words of the largest text lines is ``ml/textread.py``.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from photosorter.errors import ModelError
from photosorter.ml.lifetime import ModelLifetime
from photosorter.ml.runtime import Session

DETECT_SIDE = 320  # long side the detector sees (a multiple of 32); 56 ms a photo on a 2-core Zen 1
TEXT_PROBABILITY = 0.3  # PaddleOCR's own binarisation threshold
MODEL_SHA256 = "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"


def shipped_model(name: str = "ppocr-det/text_det.onnx") -> Path:
    return Path(str(resources.files("photosorter.data").joinpath(f"models/{name}")))


class PinnedModel:
    """A shipped ONNX file whose session is loaded on first use and released when idle by ``lifetime``
    like the other models, the file checked against its sha256 first: a changed or corrupt file is never run."""

    def __init__(self, path: Path, sha256: str, what: str, threads: int, lifetime: ModelLifetime | None = None) -> None:
        self.path, self.sha256, self.what = path, sha256, what
        self._threads = threads  # the sorter's threads (model_threads), spinning off: see runtime.session_options
        self.lifetime = lifetime or ModelLifetime()

    def _load(self) -> Session:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"{self.what} {self.path} unreadable: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ModelError(f"{self.what} {self.path} does not match its sha256 (corrupt or changed)")
        del data  # opened by path: the model worker would otherwise keep (and send) the bytes in this process
        return self.lifetime.open_session(self.path, self._threads)

    def session(self) -> Session:
        return self.lifetime.hold(self.what, self._load)

    def run(self, feed: np.ndarray) -> np.ndarray:
        session = self.session()
        try:
            (output,) = session.run(None, {session.get_inputs()[0].name: feed})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{self.what} failed: {exc}") from exc
        return np.asarray(output)


def detector_input(image: Image.Image, side: int = DETECT_SIDE) -> np.ndarray:
    """``[1, 3, H, W]`` float32, BGR, scaled to [-1, 1], H and W multiples of 32, long side ``side``."""
    width, height = image.size
    scale = side / max(width, height)
    new_w = max(32, round(width * scale / 32) * 32)
    new_h = max(32, round(height * scale / 32) * 32)
    rgb = image if image.mode == "RGB" else image.convert("RGB")  # decoded photos are RGB already: no copy
    return paddle_tensor(rgb.resize((new_w, new_h), Image.Resampling.BILINEAR))


def paddle_tensor(image: Image.Image) -> np.ndarray:
    """An RGB image as PaddleOCR's models take it: ``[1, 3, H, W]`` float32, BGR, scaled to [-1, 1]."""
    bgr = np.asarray(image, dtype=np.float32)[:, :, ::-1] / 127.5 - 1.0
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None], dtype=np.float32)


def text_coverage(probabilities: np.ndarray) -> float:
    """Share of the photo the detector calls text."""
    return float((np.asarray(probabilities) > TEXT_PROBABILITY).mean())


class OnnxTextDetector:
    def __init__(self, model: Path | None = None, threads: int = 2, lifetime: ModelLifetime | None = None) -> None:
        self.model = PinnedModel(model or shipped_model(), MODEL_SHA256, "text detector", threads, lifetime)

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """``[H, W]``: the text probability of each pixel of the photo scaled to ``DETECT_SIDE``."""
        return np.asarray(self.model.run(detector_input(image))[0, 0])

    def coverage(self, image: Image.Image) -> float:
        return text_coverage(self.probabilities(image))

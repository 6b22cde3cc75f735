"""Pure image transforms: a decoded RGB image in, the model's input tensor out."""

from __future__ import annotations

import numpy as np
from PIL import Image

from photosorter.ml.modelspec import Preprocess

# Up to this many times the model input's area is resized whole before the centre crop (a 16:1 panorama);
# anything thinner has only its centre resized.
MAX_RESIZE_SIDES = 16
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def shrink(image: Image.Image, size: int) -> Image.Image:
    """A box-filtered copy at an integer fraction of ``image``, its short side still at least twice
    ``size``, for what only needs the model's input and a hash: a 1179x2556 PNG screenshot is resized to
    224 px and hashed from 590x1278 instead of in full (measured on 24 such screenshots: 28 -> 10 ms with
    CLIP's bicubic resize, 20 -> 8 ms with MobileNetV2's bilinear; MobileNetV2's embedding moves by cosine
    0.994 at worst, the difference hash by at most 2 of 64 bits). JPEGs (draft mode) and HEIC thumbnails
    arrive this small already, and are left alone."""
    factor = min(image.size) // (2 * size)
    return image.reduce(factor) if factor >= 2 else image


def fit_to_input(image: Image.Image, spec: Preprocess, crop: str = "center") -> np.ndarray:
    """Resize and centre-crop (or pad) to ``spec.size``², return an HWC uint8 array."""
    size = spec.size
    width, height = image.size
    resample = _RESAMPLE[spec.resample]
    if crop == "pad":
        scale = size / max(width, height)
        new = (max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = Image.new("RGB", (size, size), (0, 0, 0))
        canvas.paste(image.resize(new, resample), ((size - new[0]) // 2, (size - new[1]) // 2))
        return np.asarray(canvas, dtype=np.uint8)
    short = max(spec.resize_short, size)
    scale = short / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    if new[0] * new[1] > MAX_RESIZE_SIDES * short * short:
        # A very thin image (10000x1) would be scaled up to gigabytes before the crop: resize only the
        # part of it the centre crop keeps, so the output is size x size whatever the input.
        box = (left / scale, top / scale, (left + size) / scale, (top + size) / scale)
        return np.asarray(image.resize((size, size), resample, box=box, reducing_gap=3.0), dtype=np.uint8)
    resized = image.resize(new, resample, reducing_gap=3.0)
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8)


def to_tensor(batch: list[np.ndarray], spec: Preprocess) -> np.ndarray:
    """Stack HWC uint8 arrays into the model's layout, dtype and normalisation."""
    stacked = np.stack(batch)
    if spec.dtype == "uint8":
        tensor = stacked
    else:
        mean = np.asarray(spec.mean, dtype=np.float32)
        std = np.asarray(spec.std, dtype=np.float32)
        tensor = (stacked.astype(np.float32) * np.float32(spec.rescale) - mean) / std
    if spec.layout == "nchw":
        tensor = tensor.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(tensor)


def gray_thumbnail(image: Image.Image, width: int = 9, height: int = 8) -> np.ndarray:
    """A tiny grayscale array for perceptual hashing."""
    small = image.convert("L").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.int16)

"""Faces on the CPU: YuNet finds them (boxes + five landmarks), MobileFace V2 embeds each aligned face.

Contracts of the two ONNX files (see ``../shared/models/README.md``, faces section):

- YuNet-n: input ``input`` float32 ``[1, 3, H, W]`` **BGR**, raw 0..255, H and W multiples of 32. For each
  stride s in 8, 16, 32 the outputs ``cls_s``, ``obj_s`` ``[1, N, 1]``, ``bbox_s`` ``[1, N, 4]`` and ``kps_s``
  ``[1, N, 10]`` describe the N = (H/s)(W/s) anchors in row-major order.
- MobileFace V2: input ``data`` float32 ``[n, 3, 112, 112]`` **RGB**, raw 0..255, faces aligned to the
  five-point ArcFace template; output ``embedding`` ``[n, 256]``, L2-normalised.

Decoding, NMS and the alignment are plain numpy (and Pillow for the warp), pure and unit-tested.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photosorter.errors import ModelError
from photosorter.ml.catalogue import FACE_CATALOGUE
from photosorter.ml.download import embedded_folder, fetch_model
from photosorter.ml.lifetime import ModelLifetime
from photosorter.ml.modelspec import sha256_file
from photosorter.ml.runtime import Session
from photosorter.records import Face

STRIDES = (8, 16, 32)
DETECT_MAX_SIDE = 640  # the detector sees photos at most this big (long side): 10 ms per photo at 640
SCORE_THRESHOLD = 0.8  # the detector's own operating point (authors' default)
NMS_IOU = 0.3
ALIGNED_SIZE = 112
# Where the five landmarks land in a 112x112 aligned face (the standard ArcFace template): left eye,
# right eye (as seen in the image), nose tip, left and right mouth corner.
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
EMBEDDING_DIM = 256


@dataclass(frozen=True)
class Detection:
    """One face in detector pixels: box (left, top, width, height), landmarks [5, 2], score."""

    box: np.ndarray
    landmarks: np.ndarray
    score: float


# pure: input, decoding, NMS, alignment ------------------------------------------------------------------
def detector_input(image: np.ndarray, max_side: int = DETECT_MAX_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """(the RGB image scaled so its long side is at most ``max_side``, the BGR tensor padded to /32)."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0))
    height, width = image.shape[:2]
    padded = np.zeros((3, -(-height // 32) * 32, -(-width // 32) * 32), dtype=np.float32)
    padded[:, :height, :width] = image[:, :, ::-1].transpose(2, 0, 1)
    return image, padded[None]


def decode_detections(outputs: dict[str, np.ndarray], height: int, width: int,
                      score_threshold: float = SCORE_THRESHOLD) -> list[Detection]:
    """Anchor outputs of every stride -> detections above the threshold (before NMS)."""
    found: list[Detection] = []
    for stride in STRIDES:
        rows, cols = height // stride, width // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        scores = np.sqrt(cls * obj)
        keep = np.flatnonzero(scores >= score_threshold)
        if keep.size == 0:
            continue
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
        kps = outputs[f"kps_{stride}"].reshape(-1, 10)[keep]
        row, col = np.divmod(keep, cols)
        assert rows * cols == scores.size, "anchor count does not match the input size"
        cx, cy = (col + bbox[:, 0]) * stride, (row + bbox[:, 1]) * stride
        w, h = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
        points = np.stack([(col[:, None] + kps[:, 0::2]) * stride, (row[:, None] + kps[:, 1::2]) * stride], axis=2)
        for i in range(keep.size):
            found.append(Detection(np.array([cx[i] - w[i] / 2, cy[i] - h[i] / 2, w[i], h[i]]), points[i],
                                   float(scores[keep[i]])))
    return found


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one (left, top, width, height) box with each of ``others``."""
    left = np.maximum(box[0], others[:, 0])
    top = np.maximum(box[1], others[:, 1])
    right = np.minimum(box[0] + box[2], others[:, 0] + others[:, 2])
    bottom = np.minimum(box[1] + box[3], others[:, 1] + others[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = box[2] * box[3] + others[:, 2] * others[:, 3] - inter
    return np.asarray(inter / np.maximum(union, 1e-9))


def non_max_suppression(detections: list[Detection], iou_threshold: float = NMS_IOU) -> list[Detection]:
    """Greedy NMS: keep the best-scoring box, drop those overlapping it by more than ``iou_threshold``."""
    ordered = sorted(detections, key=lambda d: -d.score)
    kept: list[Detection] = []
    for detection in ordered:
        if not kept or iou(detection.box, np.stack([k.box for k in kept])).max() <= iou_threshold:
            kept.append(detection)
    return kept


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst`` best in the
    least-squares sense (Umeyama 1991, without reflection)."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rotation = u @ d @ vt
    variance = (src_c ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(s) @ d) / variance) if variance > 0 else 1.0
    translation = mean_dst - scale * rotation @ mean_src
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Warp the face whose five landmarks are given onto the template: an RGB ``[size, size, 3]`` uint8 array."""
    forward = similarity_transform(landmarks, TEMPLATE * (size / ALIGNED_SIZE))
    linear = forward[:, :2]
    inverse = np.linalg.inv(linear)
    offset = -inverse @ forward[:, 2]
    # Pillow's affine data maps each output pixel back to the input: x_in = a x + b y + c, y_in = d x + e y + f.
    data = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    warped = Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, data,
                                              resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(warped, dtype=np.uint8)


def to_faces(detections: list[Detection], width: int, height: int) -> list[Face]:
    """Detections as records in fractions of the image, numbered left to right (by box centre)."""
    ordered = sorted(detections, key=lambda d: d.box[0] + d.box[2] / 2)
    scale = np.array([width, height], dtype=np.float64)
    return [Face(number=i + 1,
                 box=(float(d.box[0] / width), float(d.box[1] / height), float(d.box[2] / width),
                      float(d.box[3] / height)),
                 landmarks=tuple(float(v) for v in (d.landmarks / scale).reshape(-1)),
                 score=d.score)
            for i, d in enumerate(ordered)]


# the sessions ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceModelFiles:
    """The detector and embedder files of one face model set, and a short id of their exact weights."""

    detector: Path
    embedder: Path
    fingerprint: str


def _files_in(folder: Path, entry: dict[str, Any]) -> FaceModelFiles:
    """The entry's files in ``folder``, each checked against its sha256 (a corrupt model is never loaded)."""
    hashes: dict[str, str] = {}
    for name, meta in entry["files"].items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"face model file {path} is missing")
        hashes[name] = sha256_file(path)
        if hashes[name] != meta["sha256"]:
            raise ModelError(f"face model file {path} does not match its sha256 (corrupt or changed)")
    joined = "".join(f"{k}={v};" for k, v in sorted(hashes.items()))
    return FaceModelFiles(folder / entry["detector"], folder / entry["embedder"],
                          hashlib.sha256(joined.encode()).hexdigest()[:16])


def resolve_face_models(setting: str, cache_dir: Path, base_url: str = "",
                        catalogue: dict[str, dict[str, Any]] = FACE_CATALOGUE) -> FaceModelFiles:
    """The face models a setting names: a folder holding a built-in set's files, or that set's name
    (embedded in the package, or downloaded into ``cache_dir`` when missing, like the image model)."""
    path = Path(setting).expanduser()
    if setting in catalogue and not path.is_dir() and (embedded := embedded_folder(catalogue[setting])):
        return _files_in(embedded, catalogue[setting])
    if path.is_dir():
        for candidate in catalogue.values():
            if all((path / name).is_file() for name in candidate["files"]):
                return _files_in(path, candidate)
        raise ModelError(f"{path} holds no known face models (known: {', '.join(sorted(catalogue))})")
    entry = catalogue.get(setting)
    if entry is None:
        raise ModelError(f"face_model {setting!r} is neither a folder nor a built-in set ({', '.join(catalogue)})")
    folder = cache_dir / setting
    complete = all((folder / name).is_file() for name in entry["files"])
    unreachable = [name for name in entry["files"] if not base_url and name not in entry.get("urls", {})]
    if not complete and unreachable:  # do not fetch half a set that cannot be completed
        raise ModelError(f"face models {setting}: {', '.join(unreachable)} has no public download address; "
                         "set model_base_url to a mirror, or point face_model at a folder holding the files")
    return _files_in(fetch_model(setting, cache_dir, base_url, catalogue), entry)


class OnnxFaces:
    """Detect and embed faces; each session is loaded on first use and released when idle by ``lifetime``."""

    def __init__(self, files: FaceModelFiles, threads: int = 2, lifetime: ModelLifetime | None = None) -> None:
        self.files = files
        self.fingerprint = files.fingerprint
        self._threads = threads
        self.lifetime = lifetime or ModelLifetime()

    def _session(self, path: Path) -> Session:
        return self.lifetime.hold(f"faces {path.stem}", lambda: self.lifetime.open_session(path, self._threads))

    def analyse(self, image: np.ndarray) -> tuple[list[Face], np.ndarray]:
        """Faces in an RGB ``[h, w, 3]`` uint8 photo (numbered left to right) and their embeddings ``[n, 256]``."""
        detector = self._session(self.files.detector)
        small, tensor = detector_input(image)
        try:
            names = [output.name for output in detector.get_outputs()]
            outputs = dict(zip(names, detector.run(names, {"input": tensor}), strict=True))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"face detection failed: {exc}") from exc
        detections = non_max_suppression(decode_detections(outputs, tensor.shape[2], tensor.shape[3]))
        height, width = small.shape[:2]
        faces = to_faces(detections, width, height)
        if not faces:
            return [], np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        scale = np.array([width, height])
        crops = [align_face(small, np.asarray(f.landmarks).reshape(5, 2) * scale) for f in faces]
        return faces, self.embed_aligned(crops)

    def embed_aligned(self, crops: list[np.ndarray]) -> np.ndarray:
        """Embeddings ``[n, 256]`` (unit length) of aligned 112x112 RGB faces."""
        embedder = self._session(self.files.embedder)
        batch = np.ascontiguousarray(np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2))
        try:
            (result,) = embedder.run(["embedding"], {"data": batch})
        except Exception as exc:
            raise ModelError(f"face embedding failed: {exc}") from exc
        vectors = np.asarray(result, dtype=np.float32).reshape(len(crops), -1)
        return np.asarray(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12),
                          dtype=np.float32)

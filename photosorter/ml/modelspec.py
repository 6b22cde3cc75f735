"""What a model folder holds and how to feed it: read from its manifest, an HF preprocessor config,
or recognised from the catalogue of known models by the sha256 of its files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photosorter.errors import ModelError

MANIFEST = "photosorter-model.json"
KINDS = ("classifier", "clip")
RESAMPLE_NAMES = {2: "bilinear", 3: "bicubic", "bilinear": "bilinear", "bicubic": "bicubic"}


@dataclass(frozen=True)
class Preprocess:
    """Resize the short side to ``resize_short``, fit to ``size``², then scale and normalise."""

    size: int
    resize_short: int
    resample: str
    rescale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: str  # "nhwc" or "nchw"
    dtype: str  # "uint8" (graph normalises) or "float32"


@dataclass(frozen=True)
class TextSpec:
    file: str
    input_ids: str
    attention_mask: str | None
    output: str
    tokenizer: str
    context_length: int
    logit_scale: float


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    folder: Path
    files: dict[str, str]  # file name -> sha256
    image_file: str
    image_input: str
    batch: int | None  # None: any batch size
    embedding_output: str
    embedding_dim: int
    preprocess: Preprocess
    logits_output: str | None = None
    labels_file: str | None = None
    class_map: str | None = None  # "builtin:<file>" or a file in the folder
    text: TextSpec | None = None
    # Reference embeddings of built-in images made with the float32 graph (``ml.selfcheck``): a dict, or
    # "builtin:<file>" for one shipped in photosorter/data; None when the folder carries none.
    self_check: Any = field(default=None, compare=False)

    @property
    def fingerprint(self) -> str:
        """Short id of the exact weights: changes when any model file changes."""
        joined = "".join(f"{k}={v};" for k, v in sorted(self.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _preprocess(raw: Any, folder: Path) -> Preprocess:
    if isinstance(raw, str):  # a Hugging Face preprocessor_config.json in the folder
        hf = json.loads((folder / raw).read_text(encoding="utf-8"))
        # CLIP: resize the short side ("shortest_edge"), then centre-crop "crop_size". ViT-style
        # processors resize straight to "size" {height, width} and have no crop.
        short = hf.get("size", 224)
        short_px = int((short.get("shortest_edge") or short.get("height", 224)) if isinstance(short, dict) else short)
        crop = hf.get("crop_size") if hf.get("do_center_crop", "crop_size" in hf) else None
        size = int((crop["height"] if isinstance(crop, dict) else crop) if crop else short_px)
        return Preprocess(
            size=size,
            resize_short=short_px,
            resample=RESAMPLE_NAMES.get(hf.get("resample", 3), "bicubic"),
            rescale=float(hf.get("rescale_factor", 1 / 255)),
            mean=tuple(hf.get("image_mean", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
            std=tuple(hf.get("image_std", (1.0, 1.0, 1.0))),  # type: ignore[arg-type]
            layout="nchw",
            dtype="float32",
        )
    return Preprocess(
        size=int(raw["size"]),
        resize_short=int(raw.get("resize_short", raw["size"])),
        resample=RESAMPLE_NAMES.get(raw.get("resample", "bilinear"), "bilinear"),
        rescale=float(raw.get("rescale", 1.0)),
        mean=tuple(raw.get("mean", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
        std=tuple(raw.get("std", (1.0, 1.0, 1.0))),  # type: ignore[arg-type]
        layout=raw.get("layout", "nchw"),
        dtype=raw.get("dtype", "float32"),
    )


def spec_from_manifest(manifest: dict[str, Any], folder: Path) -> ModelSpec:
    """Build a ``ModelSpec`` from manifest data; ``ModelError`` names what is wrong."""
    try:
        kind = manifest["kind"]
        if kind not in KINDS:
            raise ModelError(f"model manifest in {folder}: kind must be one of {KINDS}, not {kind!r}")
        image = manifest["image"]
        text = manifest.get("text")
        prior = manifest.get("prior", {})
        files = {name: entry["sha256"] for name, entry in manifest["files"].items()}
        return ModelSpec(
            name=manifest["name"],
            kind=kind,
            folder=folder,
            files=files,
            image_file=image["file"],
            image_input=image["input"],
            batch=image.get("batch"),
            embedding_output=image["embedding_output"],
            embedding_dim=int(image["embedding_dim"]),
            logits_output=image.get("logits_output"),
            preprocess=_preprocess(manifest["preprocess"], folder),
            labels_file=prior.get("labels"),
            class_map=prior.get("class_map"),
            text=TextSpec(
                file=text["file"],
                input_ids=text.get("input_ids", "input_ids"),
                attention_mask=text.get("attention_mask"),
                output=text["output"],
                tokenizer=text.get("tokenizer", "tokenizer.json"),
                context_length=int(text.get("context_length", 77)),
                logit_scale=float(text.get("logit_scale", 100.0)),
            )
            if text
            else None,
            self_check=manifest.get("self_check"),
        )
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ModelError(f"model manifest in {folder} is incomplete or unreadable: {exc!r}") from exc


def read_model_folder(folder: Path, catalogue: dict[str, dict[str, Any]]) -> ModelSpec:
    """Load the spec of a model folder: its own manifest, else a catalogue entry whose files it holds."""
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist")
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelError(f"{manifest_path} is not valid JSON: {exc}") from exc
        return spec_from_manifest(manifest, folder)
    hashes = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.suffix == ".onnx" and p.is_file()}
    for entry in catalogue.values():
        wanted = entry["files"][entry["image"]["file"]].get("sha256")
        if wanted and hashes.get(entry["image"]["file"]) == wanted:
            return spec_from_manifest(entry, folder)
    raise ModelError(
        f"{folder} has no {MANIFEST} and holds no known model's files "
        f"(known: {', '.join(sorted(catalogue))})"
    )


def verify_files(spec: ModelSpec) -> None:
    """Check every listed file exists with the listed sha256 (never load a corrupt model)."""
    for name, expected in spec.files.items():
        path = spec.folder / name
        if not path.is_file():
            raise ModelError(f"model file {path} is missing")
        if expected and sha256_file(path) != expected:
            raise ModelError(f"model file {path} does not match its sha256 (corrupt or changed)")

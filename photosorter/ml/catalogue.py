"""Built-in models: each entry is a manifest (see ``modelspec``) plus where its files can be fetched.

A folder holding an entry's image-model file (same sha256) is recognised as that model even without
a manifest, so ``--model ../shared/models/mobilenet-v2`` works on the folder as published. The same
entry drives the download: each file is fetched from ``urls[file]`` (or ``<model_base_url>/<name>/<file>``
when a mirror is configured) and checked against its size and sha256 before it is used.
"""

from __future__ import annotations

from typing import Any

CLIP_REPO = "Xenova/clip-vit-base-patch32"
CLIP_REVISION = "PENDING"
_HUB = "https://huggingface.co"


def _clip_url(path: str) -> str:
    return f"{_HUB}/{CLIP_REPO}/resolve/{CLIP_REVISION}/{path}"


CATALOGUE: dict[str, dict[str, Any]] = {
    "mobilenet-v2": {
        "name": "mobilenet-v2",
        "kind": "classifier",
        # MobileNetV2 1.0/224 quantization-aware-trained uint8 (TFLite, converted to ONNX opset 13).
        # It has no public ONNX address: download only from a configured mirror (model_base_url).
        "files": {
            "model.onnx": {
                "sha256": "c23e41fc5a9fe367ea65112f63d89cea79eb28421a5137ce0ab5eb7580ddfe77",
                "size": 3637452,
            },
            "labels.txt": {
                "sha256": "536feacc519de3d418de26b2effb4d75694a8c4c0063e36499a46fa8061e2da9",
                "size": 10484,
            },
        },
        "urls": {},
        "image": {
            "file": "model.onnx",
            "input": "input",
            "batch": 1,  # the graph's batch dimension is fixed at 1
            "embedding_output": "feat",
            "embedding_dim": 1280,
            "logits_output": "logits",
        },
        # As trained: short side to 256 (bilinear), centre crop 224, uint8 RGB; the graph normalises.
        "preprocess": {
            "size": 224,
            "resize_short": 256,
            "resample": "bilinear",
            "rescale": 1.0,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "layout": "nhwc",
            "dtype": "uint8",
        },
        "prior": {"labels": "labels.txt", "class_map": "builtin:imagenet_categories.json"},
    },
}

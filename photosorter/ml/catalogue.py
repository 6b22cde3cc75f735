"""Built-in models: each entry is a manifest (see ``modelspec``) plus where its files can be fetched.

A folder holding an entry's image-model file (same sha256) is recognised as that model even without
a manifest, so ``--model ../shared/models/mobilenet-v2`` works on the folder as published. The same
entry drives the download: each file is fetched from ``urls[file]`` (or ``<model_base_url>/<name>/<file>``
when a mirror is configured) and checked against its size and sha256 before it is used. An entry
marked ``embedded`` ships inside the package (``photosorter/data/models/<name>``): no download at all.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MODEL = "clip-vit-b32"
EMBEDDED_MODEL = "mobilenet-v2"  # ships with the package: used when the default cannot be downloaded

# OpenAI CLIP ViT-B/32 (MIT) as exported to ONNX with int8 weights by the transformers.js project,
# pinned to one revision so a later push to the repository cannot change the weights under a cache.
# Sizes and sha256 as published for that revision (several independent projects pin the same
# bytes); the machines this project is built on reach no model hub, so they were not re-checked
# here. Accuracy on photosorter's categories has not been measured by this project yet.
CLIP_REPO = "Xenova/clip-vit-base-patch32"
CLIP_REVISION = "d15189d7028b43f1d3e65039190477f6af591c2a"
_HUB = "https://huggingface.co"


def _clip_url(path: str) -> str:
    return f"{_HUB}/{CLIP_REPO}/resolve/{CLIP_REVISION}/{path}"


CATALOGUE: dict[str, dict[str, Any]] = {
    "clip-vit-b32": {
        "name": "clip-vit-b32",
        "kind": "clip",
        "files": {
            "vision_model_quantized.onnx": {
                "sha256": "583fd1110a514667812fee7d684952aaf82a99b959760c8d7dca7e0ab9839299",
                "size": 89117001,
            },
            "text_model_quantized.onnx": {
                "sha256": "73baab855d406190da9faa498cfedf65f15cf309f4cc7385b7b032e6d08e5c3a",
                "size": 64504507,
            },
            "tokenizer.json": {
                "sha256": "f7f3b7af117d467b58374797691a6438d3e6b9e9cef800dfd5dced7f697a90cd",
                "size": 2224119,
            },
            "preprocessor_config.json": {
                "sha256": "6f638fb9401a6d6296feff533ee7efe657b787c49f954f82f5906b36ef2a1b1f",
                "size": 520,
            },
        },
        "urls": {
            "vision_model_quantized.onnx": _clip_url("onnx/vision_model_quantized.onnx"),
            "text_model_quantized.onnx": _clip_url("onnx/text_model_quantized.onnx"),
            "tokenizer.json": _clip_url("tokenizer.json"),
            "preprocessor_config.json": _clip_url("preprocessor_config.json"),
        },
        "image": {
            "file": "vision_model_quantized.onnx",
            "input": "pixel_values",
            # Dynamic int8 quantization scales activations over the whole batch, so a photo's embedding
            # would depend on its batch-mates: one photo per call keeps results reproducible.
            "batch": 1,
            "embedding_output": "image_embeds",
            "embedding_dim": 512,
        },
        # CLIP's own preprocessing (short side 224 bicubic, centre crop, CLIP mean/std), read from the file.
        "preprocess": "preprocessor_config.json",
        "text": {
            "file": "text_model_quantized.onnx",
            "input_ids": "input_ids",
            "attention_mask": None,
            "output": "text_embeds",
            "tokenizer": "tokenizer.json",
            "context_length": 77,
            "logit_scale": 100.0,
        },
    },
    "mobilenet-v2": {
        "name": "mobilenet-v2",
        "kind": "classifier",
        # MobileNetV2 1.0/224 quantization-aware-trained uint8 (TFLite, converted to ONNX opset 13;
        # Apache-2.0). It has no public ONNX address; it ships inside the package (photosorter/data/models),
        # so it works offline and is the fallback when the default cannot be downloaded.
        "embedded": True,
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
        # What model-fp32.onnx (the same network, float32 weights, published beside model.onnx) makes of
        # the self-check images, and that file as the fallback on a CPU where model.onnx disagrees.
        "self_check": "builtin:selfcheck-mobilenet-v2.json",
    },
}


# Face models (the "me" and "people" categories): YuNet-n detector and MobileFace V2 embedder. sha256s
# and sizes of the files as this project received them (../shared/models/faces). YuNet is published
# at a pinned commit of its authors' training repository (Apache-2.0); MobileFace V2 was converted
# from its MXNet release to ONNX and has no public ONNX address: download it from a mirror
# (model_base_url) or point face_model at a folder holding both files.
YUNET_COMMIT = "0047ac24afb1a50a0c6105001c89d1b5b805dbf1"
FACE_CATALOGUE: dict[str, dict[str, Any]] = {
    "yunet-mobileface": {
        "name": "yunet-mobileface",
        "kind": "faces",
        "embedded": True,  # both files ship inside the package (photosorter/data/models/yunet-mobileface)
        "files": {
            "yunet_n_dynamic.onnx": {
                "sha256": "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
                "size": 322906,
            },
            "mobileface_v2.onnx": {
                "sha256": "ea98c143ff1191b0c057b9c359ff9c33d4d757052c19ac850c94385b17ab9cdb",
                "size": 3548988,
            },
        },
        "urls": {
            "yunet_n_dynamic.onnx": "https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/"
                                    f"{YUNET_COMMIT}/onnx/yunet_n_dynamic.onnx",
        },
        "detector": "yunet_n_dynamic.onnx",
        "embedder": "mobileface_v2.onnx",
    },
}

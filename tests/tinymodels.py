"""Tiny real ONNX models built with the onnx helper API, for fast tests of the real embedder and index.

The classifier sees only the mean colour of its 16x16 input: its embedding is that mean (plus a
fixed projection) and its four classes are red, green, blue and gray things, mapped to categories
by a class map in the folder. The CLIP-kind model pairs the same image tower with a text tower
(token embedding table, mean over tokens) and the real CLIP tokenizer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 16
DIM = 8
LABELS = ["red thing", "green thing", "blue thing", "gray thing"]
CLASS_MAP = {"food": ["red thing"], "scenery": ["green thing"], "screenshot": ["blue thing"]}


def _projection() -> np.ndarray:
    # Columns 0-2 keep the colour channels (so colours stay separable); the rest are fixed mixes.
    rng = np.random.default_rng(7)
    projection = rng.normal(0, 0.05, (3, DIM)).astype(np.float32)
    projection[:, :3] += np.eye(3, dtype=np.float32)
    return projection


def _image_graph(batch: int | None) -> onnx.GraphProto:
    centres = np.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]], dtype=np.float32)
    # logits = -distance² between the mean colour and each class centre, scaled
    nodes = [
        helper.make_node("Cast", ["input"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["as_float", "c255"], ["unit"]),
        helper.make_node("ReduceMean", ["unit", "axes_hw"], ["mean"], keepdims=0),
        helper.make_node("MatMul", ["mean", "projection"], ["feat"]),
        helper.make_node("Unsqueeze", ["mean", "axis1"], ["mean3"]),
        helper.make_node("Sub", ["mean3", "centres"], ["diff"]),
        helper.make_node("Mul", ["diff", "diff"], ["squared"]),
        helper.make_node("ReduceSum", ["squared", "axis2"], ["distance"], keepdims=0),
        helper.make_node("Mul", ["distance", "minus20"], ["logits"]),
    ]
    initializers = [
        numpy_helper.from_array(np.asarray(255.0, dtype=np.float32), "c255"),
        numpy_helper.from_array(np.asarray([1, 2], dtype=np.int64), "axes_hw"),
        numpy_helper.from_array(_projection(), "projection"),
        numpy_helper.from_array(np.asarray([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.asarray([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(centres, "centres"),
        numpy_helper.from_array(np.asarray(-20.0, dtype=np.float32), "minus20"),
    ]
    n = batch if batch else "N"
    return helper.make_graph(
        nodes, "tiny_image", [helper.make_tensor_value_info("input", TensorProto.UINT8, [n, SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, [n, DIM]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n, len(LABELS)])], initializers)


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _preprocess() -> dict[str, object]:
    return {"size": SIZE, "resize_short": SIZE, "resample": "bilinear", "layout": "nhwc", "dtype": "uint8"}


def build_tiny_classifier(folder: Path, batch: int | None = None) -> Path:
    _save(_image_graph(batch), folder / "model.onnx")
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    (folder / "classes.json").write_text(json.dumps({"categories": CLASS_MAP}))
    files = {name: {"sha256": _sha(folder / name), "size": (folder / name).stat().st_size}
             for name in ("model.onnx", "labels.txt")}
    manifest = {
        "name": "tiny-classifier", "kind": "classifier", "files": files,
        "image": {"file": "model.onnx", "input": "input", "batch": batch, "embedding_output": "feat",
                  "embedding_dim": DIM, "logits_output": "logits"},
        "preprocess": _preprocess(),
        "prior": {"labels": "labels.txt", "class_map": "classes.json"},
    }
    (folder / "photosorter-model.json").write_text(json.dumps(manifest, indent=1))
    return folder


def build_tiny_clip(folder: Path, tokenizer: Path) -> Path:
    graph = _image_graph(None)
    del graph.output[1]  # CLIP towers give only embeddings
    _save(graph, folder / "vision.onnx")
    vocab = 49408
    table = np.random.default_rng(3).normal(0, 1, (vocab, DIM)).astype(np.float32)
    text = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["tokens"], axis=0),
         helper.make_node("ReduceMean", ["tokens", "axis1"], ["text_embeds"], keepdims=0)],
        "tiny_text", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", 77])],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", DIM])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.asarray([1], dtype=np.int64), "axis1")])
    _save(text, folder / "text.onnx")
    shutil.copyfile(tokenizer, folder / "tokenizer.json")
    files = {name: {"sha256": _sha(folder / name), "size": (folder / name).stat().st_size}
             for name in ("vision.onnx", "text.onnx", "tokenizer.json")}
    manifest = {
        "name": "tiny-clip", "kind": "clip", "files": files,
        "image": {"file": "vision.onnx", "input": "input", "embedding_output": "feat", "embedding_dim": DIM},
        "preprocess": _preprocess(),
        "text": {"file": "text.onnx", "input_ids": "input_ids", "attention_mask": None, "output": "text_embeds",
                 "tokenizer": "tokenizer.json", "context_length": 77, "logit_scale": 100.0},
    }
    (folder / "photosorter-model.json").write_text(json.dumps(manifest, indent=1))
    return folder

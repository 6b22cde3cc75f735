"""Export a Hugging Face CLIP-family or image-classification model to a photosorter model folder.

This is the optional extra ``photosorter[export]``: torch, transformers and optimum are imported only
inside these functions, so the runtime (and the add-on image) never needs them.

- CLIP (``model_type == "clip"``): the vision tower + visual projection and the text tower + text
  projection are exported as two ONNX graphs with optimum's exporter (``image_embeds``,
  ``text_embeds``), so sorting runs only the vision graph and the prompts run the text graph once.
  The text graph takes ``input_ids`` only: CLIP's attention is causal and its pooled token is the
  first end-of-text token, so the padding after it (the runtime pads with end-of-text) cannot change
  the result, and no attention mask is needed.
- An image classifier (``AutoModelForImageClassification``): one graph with ``logits`` and an
  ``embedding`` (the last hidden state pooled: spatial mean for CNNs, the CLS token for ViTs).

Then each graph is quantized (``photosorter.ml.quantize``: dynamic 8-bit for MatMul and Gather, the
reasons are there), the tokenizer and preprocessor config are copied, and a manifest with every
file's sha256 and size is written. The float and int8 graphs are compared on a few images (cosine
of the image embeddings, and of the text embeddings of the category prompts).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photosorter.errors import ConfigError, ModelError
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.modelspec import MANIFEST, sha256_file, spec_from_manifest
from photosorter.ml.preprocess import fit_to_input
from photosorter.ml.quantize import DEFAULT_OPS, quantize_onnx
from photosorter.ml.selfcheck import make_self_check

log = logging.getLogger(__name__)

INSTALL_HINT = ("model export needs the export extra (torch, transformers, optimum): "
                "pip install torch==2.13.0 && pip install 'photosorter[export]'")
OPSET = 17
THIRD_PARTY = r"(torch|transformers|optimum|onnx|onnxruntime|onnxscript)(\..*)?"


@dataclass(frozen=True)
class Agreement:
    """Cosine similarity between float and int8 embeddings of the same inputs."""

    what: str
    count: int
    mean: float
    minimum: float


@dataclass
class ExportResult:
    folder: Path
    kind: str
    sizes: dict[str, int] = field(default_factory=dict)  # file in the folder -> bytes
    float_sizes: dict[str, int] = field(default_factory=dict)  # float graph -> bytes
    agreement: list[Agreement] = field(default_factory=list)


@contextmanager
def _quiet_third_party() -> Iterator[None]:
    """torch's tracer and transformers warn about things that are expected when exporting; their
    warnings are silenced here, photosorter's own stay errors under ``-W error``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=THIRD_PARTY)
        yield


def _require_export_extra() -> None:
    try:
        import optimum.exporters.onnx  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigError([INSTALL_HINT + f" ({exc.name} is missing)"]) from exc


def export_model(source: str, out: Path, *, images: Sequence[Image.Image] = (), prompts: Sequence[str] = (),
                 quantize: bool = True, keep_float: bool = False, name: str | None = None) -> ExportResult:
    """Export ``source`` (a hub id or a local folder) into the model folder ``out``."""
    _require_export_extra()
    if out.exists() and any(out.iterdir()):
        raise ConfigError([f"export: {out} exists and is not empty"])
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _export(source, out, images, prompts, quantize=quantize, keep_float=keep_float, name=name)
    except BaseException:
        for item in out.iterdir():  # never leave a half-written model folder behind
            item.unlink()
        if created:
            out.rmdir()
        raise


def _export(source: str, out: Path, images: Sequence[Image.Image], prompts: Sequence[str], *, quantize: bool,
            keep_float: bool, name: str | None) -> ExportResult:
    from transformers import AutoConfig

    with _quiet_third_party():
        config = AutoConfig.from_pretrained(source)
    model_name = name or Path(source.rstrip("/")).name
    with tempfile.TemporaryDirectory(prefix="photosorter-export-") as tmp:
        float_dir = Path(tmp)
        if config.model_type == "clip":
            manifest, graphs = _export_clip(source, float_dir, model_name)
        else:
            manifest, graphs = _export_classifier(source, float_dir, model_name)
        _copy_support_files(source, float_dir, manifest)
        result = ExportResult(out, manifest["kind"])
        float_manifest = _write_manifest(float_dir, manifest)
        float_spec = spec_from_manifest(float_manifest, float_dir)
        # Reference embeddings for the self-check on the CPU it will run on (ml.selfcheck), made in float32.
        manifest["self_check"] = make_self_check(float_spec, float_graph=manifest["image"]["file"]
                                                 if quantize and keep_float else None)
        for graph in graphs:
            result.float_sizes[graph] = (float_dir / graph).stat().st_size
        if quantize:
            names = {graph: graph.replace(".onnx", "_quantized.onnx") for graph in graphs}
            for graph, quantized in names.items():
                quantize_onnx(float_dir / graph, out / quantized)
            int8 = _rename_graphs(manifest, names)
            int8["quantization"] = {"method": "onnxruntime dynamic", "weights": "uint8 per channel",
                                    "ops": list(DEFAULT_OPS)}
            for support in manifest["files"]:
                if support not in graphs:
                    shutil.copyfile(float_dir / support, out / support)
            if keep_float:
                for graph in graphs:
                    shutil.copyfile(float_dir / graph, out / graph)
                int8["files"] = dict.fromkeys([*int8["files"], *graphs])
                int8["float_graphs"] = {"image": manifest["image"]["file"],
                                        "text": manifest["text"]["file"] if "text" in manifest else None}
            final = _write_manifest(out, int8)
            result.agreement = _agreement(float_manifest, float_dir, final, out, images, prompts)
        else:
            for item in float_dir.iterdir():
                shutil.copyfile(item, out / item.name)
            final = _write_manifest(out, manifest)
    result.sizes = {item: (out / item).stat().st_size for item in final["files"]}
    result.sizes[MANIFEST] = (out / MANIFEST).stat().st_size
    return result


def _export_clip(source: str, folder: Path, name: str) -> tuple[dict[str, Any], list[str]]:
    from optimum.exporters.onnx import export
    from optimum.exporters.onnx.model_configs import CLIPTextWithProjectionOnnxConfig, CLIPVisionModelOnnxConfig
    from transformers import CLIPModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    class VisionEmbedsConfig(CLIPVisionModelOnnxConfig):  # type: ignore[misc]
        @property
        def outputs(self) -> dict[str, dict[int, str]]:
            return {"image_embeds": {0: "batch_size"}}

    class TextEmbedsConfig(CLIPTextWithProjectionOnnxConfig):  # type: ignore[misc]
        @property
        def outputs(self) -> dict[str, dict[int, str]]:
            return {"text_embeds": {0: "batch_size"}}

    with _quiet_third_party():
        clip = CLIPModel.from_pretrained(source).eval()
        vision_config = clip.config.vision_config
        vision_config.projection_dim = clip.config.projection_dim
        vision = CLIPVisionModelWithProjection(vision_config)
        vision.vision_model, vision.visual_projection = clip.vision_model, clip.visual_projection
        text_config = clip.config.text_config
        text_config.projection_dim = clip.config.projection_dim
        text = CLIPTextModelWithProjection(text_config)
        text.text_model, text.text_projection = clip.text_model, clip.text_projection
        try:
            export(vision.eval(), VisionEmbedsConfig(vision_config, task="feature-extraction"),
                   folder / "vision_model.onnx", opset=OPSET)
            export(text.eval(), TextEmbedsConfig(text_config, task="feature-extraction"),
                   folder / "text_model.onnx", opset=OPSET)
        except Exception as exc:  # torch/optimum raise many untyped errors
            raise ModelError(f"ONNX export of {source} failed: {exc}") from exc
    manifest = {
        "name": name, "kind": "clip", "source": source,
        "image": {"file": "vision_model.onnx", "input": "pixel_values", "batch": None,
                  "embedding_output": "image_embeds", "embedding_dim": int(clip.config.projection_dim)},
        "preprocess": "preprocessor_config.json",
        "text": {"file": "text_model.onnx", "input_ids": "input_ids", "attention_mask": None,
                 "output": "text_embeds", "tokenizer": "tokenizer.json",
                 "context_length": int(text_config.max_position_embeddings),
                 "logit_scale": round(math.exp(float(clip.logit_scale.item())), 4)},
        "files": {"vision_model.onnx": None, "text_model.onnx": None},
    }
    return manifest, ["vision_model.onnx", "text_model.onnx"]


def _export_classifier(source: str, folder: Path, name: str) -> tuple[dict[str, Any], list[str]]:
    import torch
    from optimum.exporters.onnx import export
    from optimum.exporters.tasks import TasksManager
    from transformers import AutoModelForImageClassification
    from transformers.utils import ModelOutput

    with _quiet_third_party():
        model = AutoModelForImageClassification.from_pretrained(source).eval()
        base_config = TasksManager.get_exporter_config_constructor(
            exporter="onnx", model=model, task="image-classification", library_name="transformers")
        original_forward = model.forward

        def forward(pixel_values: torch.Tensor) -> ModelOutput:
            output = original_forward(pixel_values=pixel_values, output_hidden_states=True, return_dict=True)
            hidden = output.hidden_states[-1]
            pooled = hidden.mean(dim=(2, 3)) if hidden.dim() == 4 else hidden[:, 0]
            return ModelOutput(logits=output.logits, embedding=pooled)

        model.forward = forward
        onnx_config = base_config(model.config)
        config_class = type(onnx_config)

        class WithEmbedding(config_class):  # type: ignore[misc, valid-type]
            @property
            def outputs(self) -> dict[str, dict[int, str]]:
                return {"logits": {0: "batch_size"}, "embedding": {0: "batch_size"}}

        try:
            export(model, WithEmbedding(model.config, task="image-classification"), folder / "model.onnx",
                   opset=OPSET)
            with torch.no_grad():
                dummy = onnx_config.generate_dummy_inputs(framework="pt")
                dim = int(forward(dummy["pixel_values"])["embedding"].shape[-1])
        except Exception as exc:
            raise ModelError(f"ONNX export of {source} failed: {exc}") from exc
    labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    manifest = {
        "name": name, "kind": "classifier", "source": source,
        "image": {"file": "model.onnx", "input": "pixel_values", "batch": None, "embedding_output": "embedding",
                  "embedding_dim": dim, "logits_output": "logits"},
        "preprocess": "preprocessor_config.json",
        # Classes are mapped to categories by name; edit a categories.json beside the model to change it.
        "prior": {"labels": "labels.txt", "class_map": "builtin:imagenet_categories.json"},
        "files": {"model.onnx": None, "labels.txt": None},
    }
    return manifest, ["model.onnx"]


def _copy_support_files(source: str, folder: Path, manifest: dict[str, Any]) -> None:
    """tokenizer.json (CLIP) and preprocessor_config.json, copied as published or saved by transformers."""
    local = Path(source)
    wanted = ["preprocessor_config.json"] + (["tokenizer.json"] if manifest["kind"] == "clip" else [])
    for item in wanted:
        if (local / item).is_file():
            shutil.copyfile(local / item, folder / item)
        else:
            with _quiet_third_party(), _as_model_error(f"{source} has no usable {item}"):
                if item == "tokenizer.json":
                    from transformers import AutoTokenizer

                    AutoTokenizer.from_pretrained(source).save_pretrained(folder / "saved")
                else:
                    from transformers import AutoImageProcessor

                    AutoImageProcessor.from_pretrained(source).save_pretrained(folder / "saved")
            saved = folder / "saved" / item
            if not saved.is_file():
                raise ModelError(f"{source} has no {item} (a fast tokenizer / image processor is needed)")
            shutil.move(saved, folder / item)
            shutil.rmtree(folder / "saved")
        manifest["files"][item] = None


@contextmanager
def _as_model_error(message: str) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError) as exc:
        raise ModelError(f"{message}: {exc}") from exc


def _rename_graphs(manifest: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    renamed: dict[str, Any] = json.loads(json.dumps(manifest))
    renamed["image"]["file"] = names[manifest["image"]["file"]]
    # Dynamic int8 scales each activation over the whole batch, so a photo's embedding would depend on
    # its batch-mates: the runtime feeds one photo per call.
    renamed["image"]["batch"] = 1
    if "text" in manifest:
        renamed["text"]["file"] = names[manifest["text"]["file"]]
    renamed["files"] = {names.get(item, item): None for item in manifest["files"]}
    return renamed


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Fill in each listed file's sha256 and size and write ``photosorter-model.json``."""
    complete = dict(manifest)
    complete["files"] = {item: {"sha256": sha256_file(folder / item), "size": (folder / item).stat().st_size}
                         for item in manifest["files"]}
    (folder / MANIFEST).write_text(json.dumps(complete, indent=1) + "\n", encoding="utf-8")
    return complete


def _agreement(float_manifest: dict[str, Any], float_dir: Path, int8_manifest: dict[str, Any], int8_dir: Path,
               images: Sequence[Image.Image], prompts: Sequence[str]) -> list[Agreement]:
    float_model = OnnxEmbedder(spec_from_manifest(float_manifest, float_dir), threads=2)
    int8_model = OnnxEmbedder(spec_from_manifest(int8_manifest, int8_dir), threads=2)
    results = []
    if images:
        pixels = [fit_to_input(image, float_model.spec.preprocess) for image in images]
        result = _cosines("image embeddings", float_model.embed_images(pixels)[0],
                          int8_model.embed_images(pixels)[0])
        results.append(result)
    if prompts and float_model.spec.text is not None:
        results.append(_cosines("text embeddings", float_model.embed_texts(list(prompts)),
                                int8_model.embed_texts(list(prompts))))
    return results


def _cosines(what: str, first: np.ndarray, second: np.ndarray) -> Agreement:
    cosine = np.sum(first * second, axis=1)  # both are L2-normalised
    return Agreement(what, len(cosine), float(cosine.mean()), float(cosine.min()))

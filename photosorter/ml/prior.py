"""The zero-shot prior of a model folder: a class map for classifiers, text prompts for CLIP."""

from __future__ import annotations

import hashlib
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from photosorter.core.categories import FALLBACK
from photosorter.core.classify import class_map_matrix, prior_from_class_probs, prior_from_prompts
from photosorter.errors import ModelError
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.records import Category

log = logging.getLogger(__name__)


def read_class_map(reference: str, folder: Path) -> dict[str, list[str]]:
    """``builtin:<file>`` (shipped in photosorter/data) or a file in the model folder."""
    categories = _map_file(reference, folder).get("categories")
    if categories is None:
        categories = _map_file(reference, folder)
    return {str(k): [str(v) for v in values] for k, values in categories.items()
            if not k.startswith("_") and isinstance(values, list)}


def read_class_weights(reference: str, folder: Path) -> dict[str, float]:
    """The map's per-category prior weights (``"weights": {"other": 0.25}``); none: every weight is 1."""
    weights = _map_file(reference, folder).get("weights", {})
    try:
        return {str(k): float(v) for k, v in weights.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise ModelError(f"class map {reference}: weights must map category names to numbers") from exc


def _map_file(reference: str, folder: Path) -> dict[str, Any]:
    try:
        if reference.startswith("builtin:"):
            text = resources.files("photosorter.data").joinpath(reference.removeprefix("builtin:")).read_text("utf-8")
        else:
            text = (folder / reference).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ModelError(f"class map {reference} unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"class map {reference}: not a JSON object")
    return data


class ZeroShotPrior:
    """Category distribution for a photo before any label: ``__call__(embedding, class_probs)``."""

    def __init__(self, embedder: OnnxEmbedder, categories: tuple[Category, ...], cache_dir: Path) -> None:
        spec = embedder.spec
        self.names = tuple(c.name for c in categories)
        self._class_index: np.ndarray | None = None
        self._weights: np.ndarray | None = None
        self._prompts: np.ndarray | None = None
        self._prompt_index: np.ndarray | None = None
        self._logit_scale = 100.0
        if spec.kind == "classifier":
            if not spec.labels_file or not spec.class_map:
                raise ModelError(f"classifier {spec.name} needs labels and a class map in its manifest")
            labels = (spec.folder / spec.labels_file).read_text(encoding="utf-8").splitlines()
            reference = spec.class_map
            if (spec.folder / "categories.json").is_file():  # a person's own edited map beside the model wins
                reference = "categories.json"
            class_map = read_class_map(reference, spec.folder)
            self._class_index = class_map_matrix(labels, class_map, self.names, FALLBACK)
            weights = read_class_weights(reference, spec.folder)
            self._weights = np.asarray([weights.get(name, 1.0) for name in self.names], dtype=np.float64)
        else:
            assert spec.text is not None
            self._logit_scale = spec.text.logit_scale
            prompts = [(i, p) for i, c in enumerate(categories) for p in c.prompts]
            self._prompt_index = np.asarray([i for i, _ in prompts], dtype=np.int64)
            self._prompts = self._prompt_embeddings(embedder, [p for _, p in prompts], cache_dir)

    def _prompt_embeddings(self, embedder: OnnxEmbedder, prompts: list[str], cache_dir: Path) -> np.ndarray:
        """Text embeddings of every prompt, computed once per model and prompt set, cached on disk."""
        key = hashlib.sha256((embedder.spec.fingerprint + "\n" + "\n".join(prompts)).encode()).hexdigest()[:16]
        path = cache_dir / f"prompts-{key}.npy"
        if path.is_file():
            try:
                cached = np.load(path)
                if cached.shape[0] == len(prompts):
                    return np.asarray(cached, dtype=np.float32)
            except (OSError, ValueError):
                log.warning("prompt cache %s unreadable; recomputing", path)
        vectors = embedder.embed_texts(prompts)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
        log.info("embedded %d category prompts", len(prompts))
        return vectors

    def __call__(self, embedding: np.ndarray, class_probs: np.ndarray | None) -> np.ndarray:
        if self._class_index is not None:
            if class_probs is None:
                raise ModelError("classifier model returned no class probabilities")
            return prior_from_class_probs(class_probs, self._class_index, len(self.names), self._weights)
        assert self._prompts is not None and self._prompt_index is not None
        return prior_from_prompts(embedding, self._prompts, self._prompt_index, len(self.names), self._logit_scale)

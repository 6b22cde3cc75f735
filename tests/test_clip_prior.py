"""The CLIP-family path: prompts embedded by the text tower with the real CLIP tokenizer, cached once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from photosorter.config import load_settings
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.modelspec import read_model_folder, verify_files
from photosorter.ml.preprocess import fit_to_input
from photosorter.ml.prior import ZeroShotPrior


def test_prompt_prior_is_a_distribution_and_prompts_are_cached(tmp_path: Path, tiny_clip: Path) -> None:
    spec = read_model_folder(tiny_clip, {})
    verify_files(spec)
    settings = load_settings(dotenv_path=tmp_path / "none", environ={})
    embedder = OnnxEmbedder(spec, threads=1)
    prior = ZeroShotPrior(embedder, settings.classify.categories, tmp_path / "cache")
    cached = list((tmp_path / "cache").glob("prompts-*.npy"))
    assert len(cached) == 1
    pixels = fit_to_input(Image.new("RGB", (40, 30), (200, 40, 40)), spec.preprocess)
    embeddings, probs = embedder.embed_images([pixels, pixels])
    assert probs is None and embeddings.shape == (2, 8)
    distribution = prior(embeddings[0], None)
    assert distribution.shape == (len(settings.classify.categories),) and abs(distribution.sum() - 1) < 1e-6
    again = ZeroShotPrior(OnnxEmbedder(spec), settings.classify.categories, tmp_path / "cache")
    assert np.allclose(again(embeddings[0], None), distribution)


def test_clip_tokenizer_pads_to_the_context_length(tmp_path: Path, tiny_clip: Path) -> None:
    embedder = OnnxEmbedder(read_model_folder(tiny_clip, {}))
    vectors = embedder.embed_texts(["a photo of food", "a screenshot of a phone app"])
    assert vectors.shape == (2, 8)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

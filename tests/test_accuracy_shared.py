"""The real MobileNetV2 on the 199 labelled shared photos must reach the floors in ../shared/eval/README.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.adapters.vectors import decode, encode
from photosorter.config import Settings, load_settings
from photosorter.core.categories import FALLBACK
from photosorter.core.classify import decide
from photosorter.core.metrics import accuracy, knn_leave_one_out
from photosorter.evaluation import LabelledSet, embed_labelled_folder
from photosorter.ml.download import resolve_model
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.prior import ZeroShotPrior
from tests.conftest import shared_path

ZERO_SHOT_FLOOR = 0.85  # ../shared/eval/README.md
KNN_FLOOR = 0.80


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(dotenv_path=Path("/nonexistent"), environ={},
                         overrides={"data": str(tmp_path_factory.mktemp("data"))})


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder(resolve_model(str(shared_path("models", "mobilenet-v2")), Path("/nonexistent")))


@pytest.fixture(scope="module")
def eval_set(embedder: OnnxEmbedder) -> LabelledSet:
    return embed_labelled_folder(shared_path("eval", "photos"), embedder, decode_image, LocalFiles())


def test_exact_duplicates_count_once(eval_set: LabelledSet) -> None:
    assert len(eval_set.paths) == 197  # 199 files, two exact duplicate pairs


def test_zero_shot_accuracy_reaches_the_floor(eval_set: LabelledSet, embedder: OnnxEmbedder,
                                              settings: Settings) -> None:
    prior = ZeroShotPrior(embedder, settings.classify.categories, settings.library.data)
    assert eval_set.class_probs is not None
    predicted = [
        decide(prior(e, p), settings.classify.names, unsure_margin=settings.classify.unsure_margin,
               other_min_score=settings.classify.other_min_score, fallback=FALLBACK).category
        for e, p in zip(eval_set.embeddings, eval_set.class_probs, strict=True)
    ]
    score = accuracy(eval_set.labels, predicted)
    print(f"zero-shot accuracy {score:.3f} on {len(predicted)} photos")
    assert score >= ZERO_SHOT_FLOOR


def test_knn_leave_one_out_accuracy_reaches_the_floor(eval_set: LabelledSet, settings: Settings) -> None:
    categories = sorted(set(eval_set.labels))
    predicted = knn_leave_one_out(eval_set.embeddings, eval_set.labels, eval_set.groups, 5, categories)
    score = accuracy(eval_set.labels, predicted)
    print(f"kNN leave-one-out accuracy {score:.3f} (k=5, near-duplicate groups held out)")
    assert score >= KNN_FLOOR


def test_embeddings_are_unit_length(eval_set: LabelledSet) -> None:
    assert np.allclose(np.linalg.norm(eval_set.embeddings, axis=1), 1.0, atol=1e-4)


def test_knn_answers_are_the_same_from_embeddings_stored_as_int8(eval_set: LabelledSet) -> None:
    categories = sorted(set(eval_set.labels))
    stored = np.stack([decode(*encode(vector)) for vector in eval_set.embeddings])
    exact = knn_leave_one_out(eval_set.embeddings, eval_set.labels, eval_set.groups, 5, categories)
    assert knn_leave_one_out(stored, eval_set.labels, eval_set.groups, 5, categories) == exact

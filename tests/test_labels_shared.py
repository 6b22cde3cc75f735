"""Labels only ever help, on the real shared photos: labelling one category leaves every other one as the
zero-shot prior sorted it, and ``resort`` after such labels moves nothing that was right."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.config import load_settings
from photosorter.core.categories import FALLBACK
from photosorter.core.classify import blend, decide, knn_evidence_matrix, label_reliability, label_trust
from photosorter.core.similarity import similarity_scale
from photosorter.evaluation import LabelledSet, embed_labelled_folder
from photosorter.ml.download import resolve_model
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.prior import ZeroShotPrior
from tests.conftest import shared_path
from tests.test_sort_folder import files_under, run_cli

SETTINGS = load_settings(dotenv_path=Path("/nonexistent"), environ={}, overrides={"data": "/nonexistent"})
NAMES = SETTINGS.classify.names
LABELS_PER_CATEGORY = 20


@pytest.fixture(scope="module")
def shared_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[LabelledSet, np.ndarray]]:
    spec = resolve_model(str(shared_path("models", "mobilenet-v2")), Path("/nonexistent"))
    embedder = OnnxEmbedder(spec)
    prior = ZeroShotPrior(embedder, SETTINGS.classify.categories, tmp_path_factory.mktemp("cache"))
    sets = {}
    for name in ("eval", "eval-wild"):
        data = embed_labelled_folder(shared_path(name, "photos"), embedder, decode_image, LocalFiles())
        assert data.class_probs is not None
        sets[name] = data, np.stack([prior(e, p) for e, p in zip(data.embeddings, data.class_probs, strict=True)])
    return sets


def _sort(priors: np.ndarray, evidence: np.ndarray, trust: np.ndarray) -> list[str]:
    classify = SETTINGS.classify
    return [decide(blend(p, e, trust), NAMES, unsure_margin=classify.unsure_margin,
                   other_min_score=classify.other_min_score, fallback=FALLBACK).category
            for p, e in zip(priors, evidence, strict=True)]


def _recall(truth: list[str], predicted: list[str], category: str) -> float:
    rows = [p == t for t, p in zip(truth, predicted, strict=True) if t == category]
    return float(np.mean(rows))


@pytest.mark.parametrize("name", ["eval", "eval-wild"])
def test_labelling_one_category_leaves_the_others_as_zero_shot_sorted_them(
        shared_sets: dict[str, tuple[LabelledSet, np.ndarray]], name: str) -> None:
    data, priors = shared_sets[name]
    scale = similarity_scale(data.embeddings)
    labels = np.asarray(data.labels)
    for category in sorted(set(data.labels)):
        taught = np.flatnonzero(labels == category)[:LABELS_PER_CATEGORY]
        rest = np.setdiff1d(np.arange(len(labels)), taught)
        taught_labels = [data.labels[i] for i in taught]
        evidence = knn_evidence_matrix(data.embeddings[taught], taught_labels, data.embeddings[rest],
                                       SETTINGS.classify.knn_k, NAMES, scale)
        counts = np.asarray([taught_labels.count(c) for c in NAMES], dtype=np.float64)
        trust = label_trust(counts, label_reliability(data.embeddings[taught], taught_labels, NAMES, scale,
                                                      SETTINGS.classify.knn_k), SETTINGS.classify.knn_trust_labels)
        after = _sort(priors[rest], evidence, trust)
        before = _sort(priors[rest], np.zeros_like(evidence), np.zeros(len(NAMES)))
        truth = [data.labels[i] for i in rest]
        for other in sorted(set(truth) - {category}):
            assert _recall(truth, after, other) >= _recall(truth, before, other) - 0.02, (category, other)


def test_resort_after_labelling_only_beer_moves_nothing_that_was_right(tmp_path: Path) -> None:
    model = shared_path("models", "mobilenet-v2")
    wild = shared_path("eval-wild")
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    shutil.copytree(wild / "photos", inbox)
    common = ("--library", library, "--data", data, "--model", model)
    sorted_run = run_cli("sort", inbox, *common)
    assert sorted_run.returncode == 0, sorted_run.stderr
    with (wild / "manifest.csv").open(encoding="utf-8") as manifest:
        truth = {Path(row["path"]).name: row["category"] for row in csv.DictReader(manifest)}
    before = {p.name: p.parent.name for p in files_under(library)}
    right = {name for name, folder in before.items() if truth.get(name) == folder}
    labelled = run_cli("label", "--folder", shared_path("eval", "photos", "beer"), "beer", *common)
    assert labelled.returncode == 0, labelled.stderr
    folders = sorted(set(before.values()) - {"_unsure"})
    resorted = run_cli("resort", *[arg for folder in folders for arg in ("--category", folder)], *common)
    assert resorted.returncode == 0, resorted.stderr
    after = {p.name: p.parent.name for p in files_under(library)}
    assert {name for name in right if after[name] != before[name]} == set()
    assert sum(truth.get(name) == folder for name, folder in after.items()) >= len(right)

"""Invariants of the pure classifier: prior, kNN votes, blend and decision."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from photosorter.core.classify import blend, class_map_matrix, decide, knn_evidence, label_trust, prior_from_class_probs
from photosorter.core.similarity import SimilarityScale
from photosorter.records import Neighbour

NAMES = ("food", "animal", "other")
SCALE = SimilarityScale(far=0.4, near=0.8)

distributions = st.lists(st.floats(0.001, 1.0), min_size=3, max_size=3).map(
    lambda v: np.asarray(v) / np.sum(v))


def test_unmapped_classes_count_toward_the_fallback_category() -> None:
    index = class_map_matrix(["pizza", "cat", "hammer"], {"food": ["pizza"], "animal": ["cat"]}, NAMES, "other")
    prior = prior_from_class_probs(np.asarray([0.2, 0.5, 0.3]), index, len(NAMES))
    assert prior.tolist() == [0.2, 0.5, 0.3]


@given(distributions)
def test_without_labels_the_prior_decides(prior: np.ndarray) -> None:
    assert np.allclose(blend(prior, knn_evidence([], NAMES, SCALE), np.zeros(3)), prior)


def test_labels_pull_the_blend_toward_the_knn_evidence() -> None:
    prior = np.asarray([0.6, 0.3, 0.1])
    evidence = knn_evidence([Neighbour("animal", 0.9)] * 5, NAMES, SCALE)
    few = blend(prior, evidence, label_trust(np.asarray([1.0, 1.0, 0.0]), np.ones(3), 5))
    many = blend(prior, evidence, label_trust(np.asarray([50.0, 50.0, 0.0]), np.ones(3), 5))
    assert few[1] < many[1] and many.argmax() == 1


@given(distributions, st.floats(0, 1), st.floats(0, 1))
def test_decision_reports_score_and_top_two_margin(dist: np.ndarray, margin: float, floor: float) -> None:
    prediction = decide(dist, NAMES, unsure_margin=margin, other_min_score=floor, fallback="other")
    ordered = sorted(dist, reverse=True)
    assert abs(prediction.score - ordered[0]) < 1e-12
    assert abs(prediction.margin - (ordered[0] - ordered[1])) < 1e-12
    assert prediction.unsure == (prediction.margin < margin)
    if prediction.score < floor:
        assert prediction.category == "other"

"""Labels only ever help: kNN evidence counts by absolute closeness, and only among labelled categories."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from photosorter.core.classify import blend, knn_evidence, label_reliability, label_trust
from photosorter.core.similarity import SimilarityScale, similarity_scale
from photosorter.records import Neighbour

NAMES = ("food", "animal", "beer", "other")
SCALE = SimilarityScale(far=0.4, near=0.8)

distributions = st.lists(st.floats(0.001, 1.0), min_size=4, max_size=4).map(lambda v: np.asarray(v) / np.sum(v))
neighbours = st.lists(st.tuples(st.sampled_from(NAMES), st.floats(-1, 1)), max_size=8).map(
    lambda raw: [Neighbour(c, s) for c, s in raw])
counts = st.lists(st.integers(0, 50), min_size=4, max_size=4).map(lambda v: np.asarray(v, dtype=float))


@given(distributions, neighbours, counts)
def test_categories_without_labels_keep_their_prior(prior: np.ndarray, found: list[Neighbour],
                                                    labels: np.ndarray) -> None:
    trust = label_trust(labels, np.full(4, 0.9), 2)
    mixed = blend(prior, knn_evidence(found, NAMES, SCALE), trust)
    assert np.all(mixed >= 0) and abs(mixed.sum() - 1) < 1e-9
    assert np.allclose(mixed[labels == 0], prior[labels == 0])


@given(distributions, neighbours, st.integers(1, 50))
def test_labelling_one_category_changes_no_photo(prior: np.ndarray, found: list[Neighbour], beers: int) -> None:
    labels = np.asarray([0.0, 0.0, beers, 0.0])
    assert np.allclose(blend(prior, knn_evidence(found, NAMES, SCALE), label_trust(labels, np.ones(4), 2)), prior)


def test_a_far_neighbour_is_no_evidence() -> None:
    evidence = knn_evidence([Neighbour("beer", 0.39)] * 5 + [Neighbour("food", 0.6)], NAMES, SCALE)
    assert np.allclose(evidence, [0.5, 0.0, 0.0, 0.0])


def test_close_labels_of_several_categories_decide() -> None:
    prior = np.asarray([0.5, 0.1, 0.3, 0.1])
    trust = label_trust(np.asarray([10.0, 10.0, 10.0, 0.0]), np.ones(4), 2)
    mixed = blend(prior, knn_evidence([Neighbour("beer", 0.85)] * 5, NAMES, SCALE), trust)
    assert mixed.argmax() == NAMES.index("beer") and abs(mixed[3] - 0.1) < 1e-12


def test_labels_that_claim_other_categories_are_trusted_less() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 16))
    vectors = np.concatenate([c + 0.1 * rng.normal(size=(10, 16)) for c in centres])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    clean = ["food"] * 10 + ["animal"] * 10
    muddled = ["food"] * 10 + ["animal", "food"] * 5  # half the second cluster says food
    scale = similarity_scale(vectors)
    clean_trust = label_reliability(vectors, clean, NAMES, scale, 3)[0]
    assert clean_trust > label_reliability(vectors, muddled, NAMES, scale, 3)[0]


def test_the_scale_is_measured_on_the_models_own_photos() -> None:
    rng = np.random.default_rng(1)
    loose = rng.normal(size=(200, 32))
    tight = loose + 4.0  # every vector shares a large common part, as a post-ReLU embedding's do
    for raw in (loose, tight):
        raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    assert similarity_scale(tight).far > similarity_scale(loose).far + 0.3
    assert similarity_scale(loose[:2]) == SimilarityScale(0.9, 0.98)

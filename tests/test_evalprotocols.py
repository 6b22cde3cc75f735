"""Split hygiene of the evaluation protocols: no source on both sides, thresholds from the training side only."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from photosorter.evalprotocols import Sortable, Thresholds, cross_set, leave_one_source_out, source_folds

NAMES = ("food", "animal", "other")


def _twins_set(rng: np.random.Generator) -> Sortable:
    """Each source holds two copies of one random photo, labelled at random: only a source on both sides
    of a split could get them right through kNN."""
    vectors, labels, sources = [], [], []
    for source in range(30):
        base = rng.normal(size=32)
        label = NAMES[int(rng.integers(0, 2))]
        for _ in range(2):
            vectors.append(base + 0.01 * rng.normal(size=32))
            labels.append(label)
            sources.append(f"repo{source}")
    embeddings = np.asarray(vectors) / np.linalg.norm(vectors, axis=1, keepdims=True)
    return Sortable(embeddings, np.tile([0.4, 0.35, 0.25], (len(labels), 1)), labels, sources)


def test_leave_one_source_out_never_teaches_a_photo_with_its_own_source() -> None:
    data = _twins_set(np.random.default_rng(3))
    result = leave_one_source_out(data, NAMES, 1, 2, Thresholds(0.0, 0.0))
    assert result["sources"] == 30
    assert result["blend"]["accuracy"] < 0.75  # a twin teaching its twin would make it 1.0


@given(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=80), st.integers(2, 6), st.integers(0, 5))
def test_source_folds_keep_every_source_in_one_fold(sources: list[str], folds: int, seed: int) -> None:
    fold = source_folds(sources, folds, seed)
    for source in set(sources):
        assert len({int(f) for f, s in zip(fold, sources, strict=True) if s == source}) == 1


def test_thresholds_are_chosen_without_looking_at_the_sorted_photos() -> None:
    rng = np.random.default_rng(4)
    train = _twins_set(rng)
    test = _twins_set(rng)
    flipped = Sortable(test.embeddings, rng.dirichlet(np.ones(3), len(test.labels)),
                       [NAMES[(NAMES.index(label) + 1) % 3] for label in test.labels], test.sources)
    first = cross_set(train, test, NAMES, 3, 2, Thresholds(0.1, 0.25))["thresholds_from_train"]
    second = cross_set(train, flipped, NAMES, 3, 2, Thresholds(0.1, 0.25))["thresholds_from_train"]
    assert first == second

"""Which photos the digest asks about: unsure ones, unlike each other, spread over categories."""

from __future__ import annotations

import numpy as np

from photosorter.core.asking import order_to_ask
from photosorter.core.digest import DigestPhoto, pick_for_review


def _unit(rows: list[list[float]]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_a_near_twin_of_a_photo_already_asked_about_waits() -> None:
    vectors = _unit([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 0, 1]])
    order = order_to_ask([0.0, 0.0, 0.2, 0.9], vectors, 4)
    assert order[:2] == [0, 2]  # the twin (1) of the first pick comes after a different unsure photo
    assert set(order) == {0, 1, 2, 3}


def test_photos_like_the_labelled_ones_teach_little() -> None:
    vectors = _unit([[1, 0, 0], [0, 1, 0]])
    assert order_to_ask([0.0, 0.1], vectors, 1, known=_unit([[1, 0.02, 0]])) == [1]


def test_picks_spread_over_the_categories_the_sorter_sees() -> None:
    vectors = _unit([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    order = order_to_ask([0.0, 0.05, 0.1, 0.3], vectors, 2, predicted=["food", "food", "food", "beer"])
    assert order == [0, 3]


def test_the_digest_uses_embeddings_when_it_has_them() -> None:
    photos = [DigestPhoto(i, f"{i}.jpg", "food", 0.5, margin, False) for i, margin in enumerate((0.0, 0.01, 0.5))]
    vectors = dict(enumerate(_unit([[1, 0], [1, 0.001], [0, 1]])))
    assert [p.photo_id for p in pick_for_review(photos, 2)] == [0, 1]  # least sure first
    assert [p.photo_id for p in pick_for_review(photos, 2, vectors)] == [0, 2]  # the twin of 0 teaches little

"""The map's 2D projection: the main direction of variation comes out, in the unit square."""

from __future__ import annotations

import numpy as np

from photosorter.core.projection import fit_axes, project, project_2d


def test_two_groups_land_apart_and_every_point_in_the_unit_square() -> None:
    rng = np.random.default_rng(1)
    centre = rng.normal(size=64)
    a = centre + rng.normal(scale=0.1, size=(300, 64)) + 3 * np.eye(64)[0]
    b = centre + rng.normal(scale=0.1, size=(300, 64)) - 3 * np.eye(64)[0]
    points = project_2d(np.vstack([a, b]).astype(np.float32))
    assert points.shape == (600, 2) and points.min() >= 0 and points.max() <= 1
    gap = abs(points[:300, 0].mean() - points[300:, 0].mean())
    assert gap > 0.8  # the groups sit at opposite ends of the first axis
    assert max(points[:300, 0].std(), points[300:, 0].std()) < 0.05


def test_tiny_and_empty_libraries_give_points_too() -> None:
    assert project_2d(np.zeros((0, 8), np.float32)).shape == (0, 2)
    assert project_2d(np.ones((2, 8), np.float32)).shape == (2, 2)


def test_a_sample_read_in_chunks_gives_the_axes_and_points_of_the_whole() -> None:
    rng = np.random.default_rng(2)
    sample = (rng.normal(size=(500, 64)) + 2 * np.eye(64)[rng.integers(4, size=500)]).astype(np.float32)
    mean, axes = fit_axes([sample.copy()])
    chunked_mean, chunked_axes = fit_axes([chunk.copy() for chunk in np.array_split(sample, 7)])
    assert np.allclose(mean, chunked_mean, atol=1e-6)
    assert np.allclose(np.abs(axes @ chunked_axes.T), np.eye(2), atol=1e-4)  # the same two axes, up to sign
    unit = sample / np.linalg.norm(sample, axis=1, keepdims=True)
    assert np.allclose(project(sample, mean, axes), (unit - mean) @ axes.T, atol=1e-5)

"""The kNN index: exact below a size, an HNSW graph with exact rescoring above it (small sizes here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photosorter.ml.index import UsearchIndex

DIM = 16
SMALL = DIM * 100  # floats: more than 100 vectors walk the graph


def clustered(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, DIM))
    return (centres[rng.integers(0, 12, count)] + rng.normal(scale=0.3, size=(count, DIM))).astype(np.float32)


def filled(count: int, exact_max_floats: int = SMALL) -> UsearchIndex:
    index = UsearchIndex(DIM, exact_max_floats=exact_max_floats)
    for key, vector in enumerate(clustered(count, 0), start=1):
        index.upsert(key, vector, ("food", "beer", "scenery")[key % 3])
    return index


def test_a_small_index_searches_exactly_and_a_large_one_walks_the_graph() -> None:
    assert filled(100).exact and not filled(101).exact


def test_the_graph_finds_the_exact_neighbours_with_exact_similarities() -> None:
    graph, exact = filled(600), filled(600, exact_max_floats=10**9)
    queries = clustered(30, 1)
    agree = sum(graph.search(q, 5) == exact.search(q, 5) for q in queries)
    assert agree >= 28  # HNSW is approximate; with rescoring it misses at most a rare neighbour here


def test_relabelled_and_removed_photos_leave_the_graph_too() -> None:
    index, vectors = filled(300), clustered(300, 0)
    assert not index.exact
    queries = clustered(10, 2)
    index.search(queries[0], 5)  # builds the graph; what follows updates it
    for key, category in index.categories.items():
        if category == "food":
            index.upsert(key, vectors[key - 1], "other")
        elif category == "beer":
            index.remove(key)
    assert len(index) == 200
    found = {n.category for q in queries for n in index.search(q, 10)}
    assert found <= {"other", "scenery"} and "other" in found


def test_a_saved_large_index_comes_back_with_its_graph_and_the_same_answers(tmp_path: Path) -> None:
    index = filled(400)
    queries = clustered(10, 3)
    before = [index.search(q, 5) for q in queries]
    index.save(tmp_path / "knn.usearch")
    loaded = UsearchIndex.load(tmp_path / "knn.usearch", DIM, index.categories)
    assert loaded is not None and loaded._graph is not None
    assert [loaded.search(q, 5) for q in queries] == before


def test_compacting_a_large_index_keeps_its_answers() -> None:
    index = filled(400)
    for key in range(1, 400, 4):
        index.remove(key)
    queries = clustered(10, 4)
    before = [index.search(q, 3) for q in queries]
    index.compact()
    assert sum(index.search(q, 3) == b for q, b in zip(queries, before, strict=True)) >= 9
    assert len(index) == 300

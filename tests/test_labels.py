"""Labels teach the kNN index, persist across runs, and move photos in the library."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photosorter.ml.index import UsearchIndex
from tests.conftest import write_photo
from tests.test_sort_folder import files_under, run_cli


def test_label_moves_a_library_photo_and_persists(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    write_photo(inbox, "red.jpg", (220, 20, 20))
    assert run_cli("sort", inbox, "--library", library, "--data", data, "--model", tiny_model).returncode == 0
    result = run_cli("label", library / "food" / "red.jpg", "beer", "--library", library, "--data", data,
                     "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(library).as_posix() for p in files_under(library)] == ["beer/red.jpg"]
    status = run_cli("status", "--library", library, "--data", data, "--model", tiny_model)
    labels = dict(line.split() for line in status.stdout.split("labels:")[1].splitlines()[1:13])
    assert labels["beer"] == "1" and labels["food"] == "0"
    in_library = dict(line.split() for line in status.stdout.split("photos in the library:")[1]
                      .split("labels:")[0].splitlines()[1:])
    assert in_library["beer"] == "1" and in_library["food"] == "0" and in_library["_unsure"] == "0"
    assert f"model: {tiny_model}" in status.stdout
    assert "last run: " in status.stdout and "placed 1, unsure 0, duplicates 0, failed 0" in status.stdout


def test_label_takes_several_photos_at_once(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    write_photo(inbox, "red.jpg", (220, 20, 20))
    write_photo(inbox, "green.jpg", (20, 220, 20))
    assert run_cli("sort", inbox, "--library", library, "--data", data, "--model", tiny_model).returncode == 0
    result = run_cli("label", library / "food" / "red.jpg", library / "scenery" / "green.jpg", "beer",
                     "--library", library, "--data", data, "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(library).as_posix() for p in files_under(library)] == ["beer/green.jpg", "beer/red.jpg"]


def test_labelled_examples_change_what_similar_photos_become(tmp_path: Path, tiny_model: Path) -> None:
    examples, inbox, library, data = tmp_path / "ex", tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    common = ("--library", library, "--data", data, "--model", tiny_model)
    for category, colour in (("beer", (200, 30, 30)), ("food", (30, 30, 200))):
        for i in range(12):  # the neighbours compare labelled categories: red is beer rather than food
            write_photo(examples / category, f"ex{i}.jpg", colour, noise_seed=i)
        labelled = run_cli("label", "--folder", examples / category, category, *common)
        assert labelled.returncode == 0, labelled.stderr
    assert len(files_under(examples)) == 24  # examples outside the library stay where they are
    write_photo(inbox, "new.jpg", (210, 25, 25), noise_seed=99)
    assert run_cli("sort", inbox, *common).returncode == 0
    assert [p.relative_to(library).as_posix() for p in files_under(library)] == ["beer/new.jpg"]


def test_an_unknown_category_is_refused_with_the_known_ones(tmp_path: Path, tiny_model: Path) -> None:
    photo = write_photo(tmp_path, "a.jpg", (200, 30, 30))
    result = run_cli("label", photo, "fod", "--library", tmp_path / "l", "--data", tmp_path / "d",
                     "--model", tiny_model)
    assert result.returncode != 0 and "no category 'fod'" in result.stderr and "food" in result.stderr


def test_rebuilt_index_answers_exactly_like_the_saved_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 32)).astype(np.float32)
    categories = {i + 1: ("food", "beer", "other")[i % 3] for i in range(300)}
    index = UsearchIndex(32)
    for key, vector in zip(categories, vectors, strict=True):
        index.upsert(key, vector, categories[key])
    index.save(tmp_path / "knn.usearch")
    loaded = UsearchIndex.load(tmp_path / "knn.usearch", 32, categories)
    rebuilt = UsearchIndex(32)
    for key, vector in reversed(list(zip(categories, vectors, strict=True))):
        rebuilt.upsert(key, vector, categories[key])
    assert loaded is not None
    for query in rng.normal(size=(20, 32)).astype(np.float32):
        assert index.search(query, 5) == loaded.search(query, 5) == rebuilt.search(query, 5)


def test_compacting_the_index_keeps_its_answers(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    index = UsearchIndex(16)
    for key in range(1, 60):
        index.upsert(key, rng.normal(size=16), "food" if key % 2 else "beer")
    for key in range(1, 60, 3):
        index.upsert(key, rng.normal(size=16), "other")  # re-labels leave removed entries behind
    query = rng.normal(size=16)
    before = index.search(query, 5)
    index.compact()
    assert index.search(query, 5) == before and len(index) == 59


def test_an_index_that_does_not_match_the_labels_is_not_used(tmp_path: Path) -> None:
    index = UsearchIndex(4)
    index.upsert(1, np.ones(4), "food")
    index.save(tmp_path / "knn.usearch")
    assert UsearchIndex.load(tmp_path / "knn.usearch", 4, {1: "food", 2: "beer"}) is None
    (tmp_path / "knn.usearch").write_bytes(b"damaged")
    assert UsearchIndex.load(tmp_path / "knn.usearch", 4, {1: "food"}) is None


def test_label_by_photo_number_moves_it_and_sorting_reports_events(tmp_path: Path, tiny_model: Path) -> None:
    from photosorter.cli.build import build_sorter, open_state
    from photosorter.config import load_settings
    from photosorter.records import PhotoEvent

    settings = load_settings({"library": str(tmp_path / "lib"), "data": str(tmp_path / "data"),
                              "model": str(tiny_model), "settle_seconds": 0}, environ={}, dotenv_path=tmp_path / "none")
    write_photo(tmp_path / "inbox", "red.jpg", (220, 20, 20))
    events: list[PhotoEvent] = []
    state = open_state(settings)
    sorter = build_sorter(settings, state, on_sorted=events.append)
    sorter.sort_folder(tmp_path / "inbox")
    assert [(e.category, e.library_path) for e in events] == [("food", "food/red.jpg")]
    moved = sorter.label_photo(events[0].photo_id, "beer", source="email", detail="<msg@x>")
    assert moved == tmp_path / "lib" / "beer" / "red.jpg" and moved.is_file()
    assert state.current_labels() == {events[0].photo_id: "beer"}
    state.close()

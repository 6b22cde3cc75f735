"""``photosorter evaluate``: the floors of ../shared/eval/README.md with the real MobileNetV2, the report
files, and split hygiene (near-duplicates never on both sides of a split)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.cli import main
from photosorter.core.metrics import group_folds
from photosorter.evaluation import Rules, cross_validate, embed_labelled_folder
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.modelspec import read_model_folder
from tests.conftest import shared_path

ZERO_SHOT_FLOOR = 0.85  # ../shared/eval/README.md (zero-shot, no labels)
KNN_FLOOR = 0.80  # ../shared/eval/README.md (kNN k=5 leave-one-out, near-duplicates held out)
ZERO_SHOT_WILD_FLOOR = 0.80  # issue 12: zero-shot with signals on ../shared/eval-wild
CROSS_SET_FLOOR = 0.85  # issue 12: label ../shared/eval, sort ../shared/eval-wild
USER_LOOP_FLOOR = 0.85  # issue 12: 5 labels per category, sort the rest
CATEGORY_FLOOR = 0.70  # issue 12: no category below it in any of the three protocols above, on eval-wild
# MobileNetV2's outputs on eval-wild are the same with AVX-512 VNNI (here) and under qemu's Zen 1 (AVX2, no
# VNNI): largest class-probability difference 2e-16, no zero-shot decision differs; so are these figures.


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], Path, Path]:
    work = tmp_path_factory.mktemp("evaluate")
    out = work / "out" / "mobilenet.json"
    code = main(["evaluate", str(shared_path("eval", "photos")), "--model", str(shared_path("models", "mobilenet-v2")),
                 "--against", str(shared_path("eval-wild", "photos")), "--json", str(out),
                 "--data", str(work / "data"), "--folds", "0", "--log-level", "warning"])
    assert code == 0
    return json.loads(out.read_text()), out, work / "data"


@pytest.fixture(scope="module")
def wild_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same evaluation with eval-wild as the set sorted: its user loop is the person's own photos."""
    work = tmp_path_factory.mktemp("evaluate-wild")
    out = work / "wild.json"
    code = main(["evaluate", str(shared_path("eval-wild", "photos")), "--model",
                 str(shared_path("models", "mobilenet-v2")), "--against", str(shared_path("eval", "photos")),
                 "--json", str(out), "--data", str(work / "data"), "--folds", "0", "--log-level", "warning"])
    assert code == 0
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def below(recall: dict[str, float]) -> dict[str, float]:
    return {category: value for category, value in recall.items() if value < CATEGORY_FLOOR}


def test_the_user_loop_on_the_wild_photos_reaches_the_floor_in_every_category(wild_run: dict[str, Any]) -> None:
    loop = wild_run["user_loop"]
    assert loop["labels_per_category"][2] == 5
    assert loop["accuracy"][2] >= USER_LOOP_FLOOR  # measured 0.870
    assert below(loop["recall"][2]) == {}  # lowest measured: other 0.73


def test_no_wild_category_falls_below_the_floor_zero_shot_or_after_labelling_eval(
        shared_run: tuple[dict[str, Any], Path, Path]) -> None:
    cross = shared_run[0]["cross_set"]["label_this_sort_other"]
    assert below(cross["zero_shot"]["recall"]) == {}  # lowest measured: beer 0.71, other 0.74
    assert below(cross["blend"]["recall"]) == {}  # lowest measured: other 0.74, scenery 0.82


def test_zero_shot_reaches_the_floor(shared_run: tuple[dict[str, object], Path, Path]) -> None:
    result = shared_run[0]
    assert result["zero_shot"]["accuracy"] >= ZERO_SHOT_FLOOR  # type: ignore[index]


def test_knn_leave_one_group_out_reaches_the_floor(shared_run: tuple[dict[str, object], Path, Path]) -> None:
    assert shared_run[0]["knn"]["accuracy"] >= KNN_FLOOR  # type: ignore[index]


def test_labelling_eval_sorts_the_wild_photos_above_the_floor(shared_run: tuple[dict[str, object], Path, Path]) -> None:
    cross = shared_run[0]["cross_set"]["label_this_sort_other"]  # type: ignore[index]
    assert cross["blend"]["accuracy"] >= CROSS_SET_FLOOR  # configured thresholds
    assert cross["blend_thresholds_from_train"]["accuracy"] >= CROSS_SET_FLOOR  # chosen on eval alone


def test_zero_shot_with_signals_sorts_the_wild_photos_above_the_floor(
        shared_run: tuple[dict[str, object], Path, Path]) -> None:
    cross = shared_run[0]["cross_set"]["label_this_sort_other"]  # type: ignore[index]
    assert cross["zero_shot"]["accuracy"] >= ZERO_SHOT_WILD_FLOOR  # defaults (chosen on ../shared/eval)
    assert cross["zero_shot_thresholds_from_train"]["accuracy"] >= ZERO_SHOT_WILD_FLOOR  # chosen on eval alone


def test_the_user_loop_with_five_labels_per_category_reaches_the_floor(
        shared_run: tuple[dict[str, object], Path, Path]) -> None:
    loop = shared_run[0]["user_loop"]
    assert loop["labels_per_category"] == [1, 3, 5, 10]  # type: ignore[index]
    assert loop["accuracy"][2] >= USER_LOOP_FLOOR  # type: ignore[index]


def test_asking_is_measured_against_random_labels_paired_over_splits_with_spread(
        shared_run: tuple[dict[str, object], Path, Path]) -> None:
    asking = shared_run[0]["asking"]
    assert asking["labels"] == [10, 20, 40]  # type: ignore[index]
    assert all(0.0 < value <= 1.0 for value in asking["asked"] + asking["random"])  # type: ignore[index,operator]
    gains = [round(a - r, 4) for a, r in zip(asking["asked"], asking["random"], strict=True)]  # type: ignore[index]
    assert all(abs(g - m) <= 0.0002 for g, m in zip(gains, asking["gain"], strict=True))  # type: ignore[index]
    assert len(asking["gain_sd"]) == 3 and asking["splits"] >= 10  # type: ignore[index,operator]


def test_leave_one_source_out_keeps_each_source_on_one_side(shared_run: tuple[dict[str, object], Path, Path]) -> None:
    loso = shared_run[0]["loso"]
    assert loso["sources"] == 7  # type: ignore[index]  # source_repo of ../shared/eval/manifest.csv
    assert loso["blend"]["photos"] == loso["knn"]["photos"] == 197  # type: ignore[index]


def test_json_has_each_method_with_accuracy_and_per_category(
        shared_run: tuple[dict[str, object], Path, Path]) -> None:
    result = shared_run[0]
    for key in ("zero_shot", "knn", "blend"):
        scores = result[key]
        assert 0.0 <= scores["accuracy"] <= 1.0  # type: ignore[index]
        assert set(scores["per_category"]["text"]) == {"precision", "recall", "f1", "support"}  # type: ignore[index]
    assert result["split"]["photos"] == 197  # type: ignore[index]  # exact duplicates counted once


def test_curve_and_both_crop_variants_are_reported(shared_run: tuple[dict[str, object], Path, Path]) -> None:
    result = shared_run[0]
    curve = result["labels_curve"]
    assert curve["labels_per_category"] == [1, 2, 5, 10, "all"]  # type: ignore[index]
    assert len(curve["blend"]) == 5 and len(curve["knn"]) == 5  # type: ignore[index]
    assert set(result["variants"]) == {"center", "pad"}  # type: ignore[arg-type]


def test_run_record_png_and_runs_log(shared_run: tuple[dict[str, object], Path, Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    result, out, data = shared_run
    run = result["run"]
    assert run["model"] == "mobilenet-v2" and len(run["dataset_hash"]) == 16 and run["date"]  # type: ignore[index]
    assert run["settings"]["knn_k"] == 5  # type: ignore[index]
    with Image.open(out.with_suffix(".png")) as png:
        assert png.size[0] > 400
    assert main(["evaluate", "--compare", "--data", str(data)]) == 0
    table = capsys.readouterr().out
    assert "mobilenet-v2" in table and run["dataset_hash"] in table  # type: ignore[index]
    assert "LOSO" in table and f"{result['zero_shot_signals']['accuracy']:.3f}" in table  # type: ignore[index]
    logged = json.loads((data / "evaluations.jsonl").read_text().splitlines()[-1])
    assert {"git_revision", "settings", "loso", "user_loop", "cross_set", "zero_shot_signals"} <= set(logged)


def jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_near_duplicates_never_straddle_a_split(tmp_path: Path, tiny_model: Path) -> None:
    rng = np.random.default_rng(5)
    twins = []
    for category, colour in (("food", (200, 40, 40)), ("scenery", (40, 200, 40)), ("screenshot", (40, 40, 200))):
        folder = tmp_path / "set" / category
        folder.mkdir(parents=True)
        for i in range(6):
            shapes = rng.normal(0, 70, (6, 8, 1)).astype(np.float32)  # coarse light and dark patches
            patches = np.asarray(Image.fromarray(shapes[:, :, 0]).resize((64, 48), Image.Resampling.BILINEAR))
            base = np.clip(np.asarray(colour) + patches[:, :, None], 0, 255).astype(np.uint8)
            (folder / f"{i}.jpg").write_bytes(jpeg(base))
            if i < 2:  # a re-encoded, resized twin of the same shot
                smaller = np.asarray(Image.fromarray(base).resize((56, 42)))
                (folder / f"{i}-twin.jpg").write_bytes(jpeg(smaller, quality=70))
                twins.append((folder / f"{i}.jpg", folder / f"{i}-twin.jpg"))
    embedder = OnnxEmbedder(read_model_folder(tiny_model, {}), threads=1)
    data = embed_labelled_folder(tmp_path / "set", embedder, decode_image, LocalFiles())
    group_of = dict(zip(data.paths, data.groups, strict=True))
    assert all(group_of[a] == group_of[b] for a, b in twins)  # the twins were recognised as near-duplicates
    for seed in range(5):
        fold_of = dict(zip(data.paths, group_folds(data.labels, data.groups, 3, seed).tolist(), strict=True))
        assert all(fold_of[a] == fold_of[b] for a, b in twins)
    names = ("food", "scenery", "screenshot", "other")
    priors = np.full((len(data.paths), len(names)), 0.25)
    result = cross_validate(data, priors, Rules(names, 3, 5, 0.1, 0.25), folds=3)
    assert result["split"]["near_duplicate_groups"] == len(twins)
    assert result["knn"]["accuracy"] == 1.0  # colours are separable, and no twin answered for itself


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 15)), min_size=1, max_size=60),
       st.integers(2, 6), st.integers(0, 3))
def test_group_folds_keep_every_group_in_one_fold(rows: list[tuple[str, int]], folds: int, seed: int) -> None:
    labels = [label for label, _ in rows]
    groups = [group for _, group in rows]
    fold = group_folds(labels, groups, folds, seed)
    for group in set(groups):
        assert len({int(f) for f, g in zip(fold, groups, strict=True) if g == group}) == 1
    assert fold.min() >= 0 and fold.max() < folds


def test_folders_are_read_as_a_person_types_a_category(tmp_path: Path) -> None:
    from photosorter.cli.evaluate import _with_categories
    from photosorter.config import load_settings
    from photosorter.errors import ConfigError
    from photosorter.evaluation import LabelledSet

    settings = load_settings(environ={}, dotenv_path=tmp_path / "none")
    data = LabelledSet(paths=[tmp_path / "a", tmp_path / "b", tmp_path / "c"], labels=["animals", "Scenery", "scr"],
                       embeddings=np.zeros((3, 4)), class_probs=None, groups=[0, 1, 2])
    assert _with_categories(data, tmp_path, settings).labels == ["animal", "scenery", "screenshot"]
    with pytest.raises(ConfigError, match=r"folders cars/ \(no category 'cars'\) are not categories"):
        _with_categories(LabelledSet([tmp_path / "a"], ["cars"], np.zeros((1, 4)), None, [0]), tmp_path, settings)

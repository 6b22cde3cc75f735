"""The model self-check: reference embeddings made in float32, compared on the CPU the model runs on."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import stat
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from photosorter.cli import main
from photosorter.ml.catalogue import CATALOGUE
from photosorter.ml.modelspec import MANIFEST, read_model_folder, sha256_file
from photosorter.ml.selfcheck import RECORD_FILE, check_on_this_cpu, last_check, make_self_check, reference_images
from tests.conftest import settings_env, shared_path, write_photo


def _with_references(tiny_model: Path, folder: Path, *, damaged: bool, keep_float: bool) -> Path:
    """A copy of the tiny model whose manifest carries self-check references made from its float graph; with
    ``damaged``, model.onnx's projection weights are scrambled (the float graph is kept as model-fp32.onnx)."""
    shutil.copytree(tiny_model, folder)
    shutil.copyfile(folder / "model.onnx", folder / "model-fp32.onnx")
    manifest = json.loads((folder / MANIFEST).read_text())
    float_spec = dataclasses.replace(read_model_folder(folder, CATALOGUE), image_file="model-fp32.onnx")
    manifest["self_check"] = make_self_check(float_spec, float_graph="model-fp32.onnx")
    if not keep_float:
        del manifest["self_check"]["float_graph"]
        (folder / "model-fp32.onnx").unlink()
    if damaged:
        graph = onnx.load(str(folder / "model.onnx"))
        for tensor in graph.graph.initializer:
            if tensor.name == "projection":
                weights = numpy_helper.to_array(tensor)
                scrambled = np.random.default_rng(1).normal(0, 1, weights.shape).astype(np.float32)
                tensor.CopyFrom(numpy_helper.from_array(scrambled, "projection"))
        onnx.save(graph, str(folder / "model.onnx"))
        manifest["files"]["model.onnx"]["sha256"] = sha256_file(folder / "model.onnx")
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_reference_images_are_the_same_bytes_every_time() -> None:
    first, second = reference_images(64), reference_images(64)
    assert [image.tobytes() for image in first] == [image.tobytes() for image in second]
    assert len(first) == 3 and all(image.size == (64, 64) for image in first)


def test_an_agreeing_model_passes_and_the_outcome_is_recorded_privately(tiny_model: Path, tmp_path: Path) -> None:
    folder = _with_references(tiny_model, tmp_path / "model", damaged=False, keep_float=True)
    spec = read_model_folder(folder, CATALOGUE)
    data = tmp_path / "data"
    assert check_on_this_cpu(spec, data) is spec
    result = last_check(data)
    assert result is not None and result.ok and not result.fell_back and result.graph == "model.onnx"
    assert result.min_cosine > 0.9999  # the same float graph on both sides
    assert stat.S_IMODE((data / RECORD_FILE).stat().st_mode) == 0o600


def test_a_damaged_graph_warns_with_the_figure_and_falls_back_to_float32(
        tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _with_references(tiny_model, tmp_path / "model", damaged=True, keep_float=True)
    spec = read_model_folder(folder, CATALOGUE)
    with caplog.at_level(logging.WARNING, logger="photosorter.ml.selfcheck"):
        checked = check_on_this_cpu(spec, tmp_path / "data")
    assert checked.image_file == "model-fp32.onnx"
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "agrees with its float32 reference at cosine" in warning and "using its float32 graph" in warning
    result = last_check(tmp_path / "data")
    assert result is not None and not result.ok and result.fell_back and result.min_cosine < 0.99
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="photosorter.ml.selfcheck"):  # once per CPU: the record decides
        assert check_on_this_cpu(spec, tmp_path / "data").image_file == "model-fp32.onnx"
    assert not caplog.records


def test_a_damaged_graph_without_a_float_graph_warns_and_is_used_as_it_is(
        tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _with_references(tiny_model, tmp_path / "model", damaged=True, keep_float=False)
    spec = read_model_folder(folder, CATALOGUE)
    with caplog.at_level(logging.WARNING, logger="photosorter.ml.selfcheck"):
        assert check_on_this_cpu(spec, tmp_path / "data") is spec
    assert any("no float32 graph to fall back on" in r.getMessage() for r in caplog.records)


def test_model_reference_command_writes_the_references_into_the_manifest(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    shutil.copyfile(folder / "model.onnx", folder / "model-fp32.onnx")
    assert main(["model", "reference", str(folder), "model-fp32.onnx", "--data", str(tmp_path / "data")]) == 0
    entry = json.loads((folder / MANIFEST).read_text())["self_check"]
    assert len(entry["embeddings"]) == 3 and entry["float_graph"]["file"] == "model-fp32.onnx"


def test_sort_with_a_damaged_graph_sorts_on_float32_and_status_says_so(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _with_references(tiny_model, tmp_path / "model", damaged=True, keep_float=True)
    for key, value in settings_env(tmp_path / "library", tmp_path / "data", folder).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    write_photo(tmp_path / "inbox", "red.jpg", (220, 20, 20))
    assert main(["sort", str(tmp_path / "inbox")]) == 0
    assert (tmp_path / "library" / "food" / "red.jpg").exists()  # the float graph's answer
    capsys.readouterr()
    assert main(["status"]) == 0
    assert "BELOW 0.99, using the float32 graph" in capsys.readouterr().out


def test_the_shipped_mobilenet_references_agree_on_this_cpu(tmp_path: Path) -> None:
    spec = read_model_folder(shared_path("models", "mobilenet-v2"), CATALOGUE)
    assert check_on_this_cpu(spec, tmp_path) is spec
    result = last_check(tmp_path)
    # 8-bit QAT graph vs its float32 weights: 0.99497 with AVX-512 VNNI and under qemu's Zen 1 (AVX2, no VNNI):
    # uint8 x uint8 kernels, which never saturate.
    assert result is not None and result.min_cosine > 0.99

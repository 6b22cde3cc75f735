"""Models load when work arrives and are let go after the idle time (an injected clock, nothing timed);
the int8/float32 choice is made once per CPU, logged, and remembered."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from photosorter.cli.build import build_sorter, model_lifetime, open_state
from photosorter.config import Settings, load_settings
from photosorter.daemon import Daemon
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.faces import FaceModelFiles, OnnxFaces
from photosorter.ml.lifetime import ModelLifetime
from photosorter.ml.modelspec import read_model_folder, sha256_file
from tests.conftest import write_photo
from tests.test_daemon import BERLIN, FakeClock
from tests.test_model_worker import worker_pids

IDLE_S = 300.0


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pixels() -> list[np.ndarray]:
    return [np.full((16, 16, 3), (200, 30, 30), dtype=np.uint8)]


def test_an_idle_model_is_unloaded_after_the_idle_time_and_loaded_again_on_demand(tiny_model: Path) -> None:
    clock = Ticks()
    embedder = OnnxEmbedder(read_model_folder(tiny_model, {}), threads=1, lifetime=ModelLifetime(IDLE_S, clock))
    first, _ = embedder.embed_images(pixels())
    assert embedder.lifetime.held == ("tiny-classifier image",)
    clock.now += IDLE_S - 1
    assert embedder.lifetime.release_idle() == ()
    clock.now += 1
    assert embedder.lifetime.release_idle() == ("tiny-classifier image",)
    assert embedder.lifetime.held == ()
    again, _ = embedder.embed_images(pixels())
    assert embedder.lifetime.held == ("tiny-classifier image",)
    np.testing.assert_array_equal(first, again)


def test_use_keeps_a_model_loaded(tiny_model: Path) -> None:
    clock = Ticks()
    embedder = OnnxEmbedder(read_model_folder(tiny_model, {}), threads=1, lifetime=ModelLifetime(IDLE_S, clock))
    for _ in range(3):
        embedder.embed_images(pixels())
        clock.now += IDLE_S - 10
        assert embedder.lifetime.release_idle() == ()


def test_without_an_idle_time_models_stay_loaded(tiny_model: Path) -> None:
    clock = Ticks()
    embedder = OnnxEmbedder(read_model_folder(tiny_model, {}), threads=1, lifetime=ModelLifetime(None, clock))
    embedder.embed_images(pixels())
    clock.now += 1e9
    assert embedder.lifetime.release_idle() == ()
    assert embedder.lifetime.next_release_s() is None


def tiny_face_embedder(path: Path) -> Path:
    """A stand-in for MobileFace's contract: ``data`` [n, 3, 112, 112] -> ``embedding`` [n, 256]."""
    projection = np.random.default_rng(1).normal(size=(3, 256)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["data", "axes"], ["mean"], keepdims=0),
         helper.make_node("MatMul", ["mean", "projection"], ["embedding"])],
        "tiny_face", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 256])],
        [numpy_helper.from_array(np.asarray([2, 3], dtype=np.int64), "axes"),
         numpy_helper.from_array(projection, "projection")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


def test_face_models_are_unloaded_when_idle_and_loaded_again(tmp_path: Path) -> None:
    clock = Ticks()
    embedder = tiny_face_embedder(tmp_path / "face.onnx")
    faces = OnnxFaces(FaceModelFiles(tmp_path / "detector.onnx", embedder, "test"), threads=1,
                      lifetime=ModelLifetime(IDLE_S, clock))
    crop = np.full((112, 112, 3), 90, dtype=np.uint8)
    first = faces.embed_aligned([crop])
    assert faces.lifetime.held == ("faces face",)
    clock.now += IDLE_S
    assert faces.lifetime.release_idle() == ("faces face",)
    np.testing.assert_array_equal(first, faces.embed_aligned([crop]))
    assert faces.lifetime.held == ("faces face",)


@pytest.fixture
def daemon_settings(tmp_path: Path, tiny_model: Path) -> Settings:
    return load_settings({"library": str(tmp_path / "lib"), "data": str(tmp_path / "data"), "model": str(tiny_model),
                          "inbox": str(tmp_path / "inbox"), "inbox_poll_minutes": 5, "model_idle_minutes": 10,
                          "settle_seconds": 0},
                         environ={}, dotenv_path=tmp_path / "none")


def test_the_daemon_unloads_idle_models_between_runs_and_a_new_photo_loads_them(daemon_settings: Settings) -> None:
    clock, inbox = FakeClock(), Path(daemon_settings.library.inbox)
    inbox.mkdir(parents=True)
    state = open_state(daemon_settings)
    models = model_lifetime(daemon_settings, clock.monotonic)
    daemon = Daemon(settings=daemon_settings, sorter=build_sorter(daemon_settings, state, lifetime=models),
                    state=state, clock=clock, zone=BERLIN, models=models)
    write_photo(inbox, "a.jpg", (200, 20, 20))
    daemon.run_due_parts()
    loaded = models.held  # the image model, and the face models the sort used
    assert "tiny-classifier image" in loaded and any(key.startswith("faces") for key in loaded)
    first_worker = worker_pids()  # model_worker (the default): the models run in one child process
    assert len(first_worker) == 1
    clock.advance(5 * 60)
    daemon.run_due_parts()  # an empty inbox needs no model, and 10 minutes have not passed
    assert models.held == loaded
    clock.advance(5 * 60)
    daemon.run_due_parts()
    assert models.held == () and worker_pids() == []  # the worker ended with its last model
    write_photo(inbox, "b.jpg", (20, 200, 20))
    clock.advance(5 * 60)
    daemon.run_due_parts()
    assert set(models.held) == set(loaded) and len(worker_pids()) == 1 and worker_pids() != first_worker
    assert len(list(Path(daemon_settings.library.path).rglob("*.jpg"))) == 2
    models.release_all()
    assert worker_pids() == []
    state.close()


def with_float_graph(tiny_model: Path, folder: Path, *, sha256: str | None = None) -> Path:
    shutil.copytree(tiny_model, folder)
    shutil.copyfile(folder / "model.onnx", folder / "model-fp32.onnx")
    manifest = json.loads((folder / "photosorter-model.json").read_text())
    manifest["self_check"] = {"images": "not the current set: no self-check, only the float graph's name",
                              "float_graph": {"file": "model-fp32.onnx",
                                              "sha256": sha256 or sha256_file(folder / "model-fp32.onnx")}}
    (folder / "photosorter-model.json").write_text(json.dumps(manifest))
    return folder


def test_the_faster_graph_is_measured_once_per_cpu_logged_and_remembered(
        tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = read_model_folder(with_float_graph(tiny_model, tmp_path / "model"), {})
    caplog.set_level(logging.INFO, logger="photosorter.ml.runtime")
    first = OnnxEmbedder(spec, threads=1, cache_dir=tmp_path / "cache", fastest_graph=True)
    first.embed_images(pixels())
    assert first.graph is not None and first.graph.precision in ("int8", "float32")
    assert set(first.graph.timings_ms) == {"int8", "float32"}
    (measured,) = [r.getMessage() for r in caplog.records]
    assert "graph chosen" in measured and "int8" in measured and "float32" in measured
    caplog.clear()
    again = OnnxEmbedder(spec, threads=1, cache_dir=tmp_path / "cache", fastest_graph=True)
    again.embed_images(pixels())
    assert again.graph == first.graph
    (recalled,) = [r.getMessage() for r in caplog.records]
    assert "measured on this CPU before" in recalled


def test_a_folder_without_a_float_graph_keeps_its_graph_unmeasured(tiny_model: Path, tmp_path: Path) -> None:
    embedder = OnnxEmbedder(read_model_folder(tiny_model, {}), threads=1, cache_dir=tmp_path, fastest_graph=True)
    embedder.embed_images(pixels())
    assert embedder.graph is not None and embedder.graph.file == "model.onnx" and not embedder.graph.timings_ms


def test_a_float_graph_that_does_not_match_its_sha256_is_never_loaded(
        tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = read_model_folder(with_float_graph(tiny_model, tmp_path / "model", sha256="0" * 64), {})
    embedder = OnnxEmbedder(spec, threads=1, cache_dir=tmp_path / "cache", fastest_graph=True)
    embedder.embed_images(pixels())
    assert embedder.graph is not None and embedder.graph.file == "model.onnx"
    assert "does not match its sha256" in caplog.text


def test_evaluation_and_export_checks_run_the_graph_the_manifest_names(tiny_model: Path, tmp_path: Path) -> None:
    spec = read_model_folder(with_float_graph(tiny_model, tmp_path / "model"), {})
    embedder = OnnxEmbedder(spec, threads=1)
    embedder.embed_images(pixels())
    assert embedder.graph is not None and embedder.graph.file == "model.onnx"

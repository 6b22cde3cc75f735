"""``photosorter model export`` on a tiny random-weight CLIP with the real CLIP tokenizer, run in the export
virtualenv (torch, transformers, optimum: ``.ci/run`` makes it), then loaded by the runtime here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from photosorter.cli import main
from photosorter.config import load_settings
from photosorter.errors import ConfigError
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.modelspec import read_model_folder, verify_files
from photosorter.ml.preprocess import fit_to_input
from photosorter.ml.prior import ZeroShotPrior
from tests.conftest import settings_env, shared_path

ROOT = Path(__file__).resolve().parents[1]
EXPORT_PYTHON = Path(os.environ.get("PHOTOSORTER_EXPORT_PYTHON", ROOT / ".venv-export" / "bin" / "python"))
INSTALL = ("bash tests/install_test_tools.sh (or: python3 -m venv .venv-export && "
           ".venv-export/bin/pip install torch==2.13.0 && .venv-export/bin/pip install -e '.[export]')")

pytestmark = pytest.mark.slow


def export_python() -> Path:
    if not EXPORT_PYTHON.is_file():
        pytest.fail(f"the export virtualenv is missing ({EXPORT_PYTHON}); make it with: {INSTALL} "
                    "(or set PHOTOSORTER_EXPORT_PYTHON)")
    return EXPORT_PYTHON


def run_export_venv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -W error: photosorter's own code must not warn; the export module silences torch/transformers itself.
    return subprocess.run([str(export_python()), "-W", "error", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for category in ("animal", "food", "screenshot"):
        for photo in sorted(shared_path("eval", "photos", category).glob("*.jpg"))[:2]:
            shutil.copyfile(photo, folder / f"{category}-{photo.name}")
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, photos: Path) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("export")
    source = work / "tiny-clip-hf"
    made = run_export_venv(str(ROOT / "tests" / "tinyclip_source.py"), str(source),
                           str(shared_path("models", "clip-tokenizer")), cwd=work)
    assert made.returncode == 0, made.stderr
    result = run_export_venv("-m", "photosorter", "model", "export", str(source), str(work / "model"),
                             "--images", str(photos), "--keep-float", "--data", str(work / "data"), cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return work / "model", result.stdout


def test_export_prints_sizes_and_float_int8_agreement(exported: tuple[Path, str]) -> None:
    _, output = exported
    assert "vision_model_quantized.onnx" in output and "text_model_quantized.onnx" in output
    assert "float vs int8 image embeddings: mean cosine" in output
    assert "float vs int8 text embeddings: mean cosine" in output


def test_exported_folder_is_int8_with_checked_files(exported: tuple[Path, str]) -> None:
    folder, _ = exported
    spec = read_model_folder(folder, {})
    verify_files(spec)
    assert spec.kind == "clip" and spec.image_file == "vision_model_quantized.onnx" and spec.batch == 1
    assert spec.text is not None and spec.text.file == "text_model_quantized.onnx" and spec.text.attention_mask is None
    assert {"tokenizer.json", "preprocessor_config.json"} <= set(spec.files)
    quantized = {node.op_type for node in _graph_ops(folder / spec.text.file)}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & quantized or "DynamicQuantizeMatMul" in quantized
    assert (folder / spec.text.file).stat().st_size < (folder / "text_model.onnx").stat().st_size / 3


def test_runtime_runs_the_prompt_prior_on_photos(exported: tuple[Path, str], photos: Path, tmp_path: Path) -> None:
    spec = read_model_folder(exported[0], {})
    settings = load_settings(dotenv_path=tmp_path / "none", environ={})
    embedder = OnnxEmbedder(spec, threads=1)
    prior = ZeroShotPrior(embedder, settings.classify.categories, tmp_path / "cache")
    pixels = [fit_to_input(Image.open(p).convert("RGB"), spec.preprocess) for p in sorted(photos.iterdir())]
    embeddings, probs = embedder.embed_images(pixels)
    assert probs is None and embeddings.shape == (len(pixels), 16)
    for embedding in embeddings:
        distribution = prior(embedding, None)
        assert distribution.shape == (len(settings.classify.names),) and abs(distribution.sum() - 1) < 1e-6


def test_sort_runs_with_the_exported_model(exported: tuple[Path, str], photos: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(photos, inbox)
    for key, value in settings_env(tmp_path / "library", tmp_path / "data", exported[0]).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    assert main(["sort", str(inbox)]) == 0
    assert not any(inbox.iterdir())


@pytest.fixture(scope="module")
def exported_classifier(tmp_path_factory: pytest.TempPathFactory, photos: Path) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("export-classifier")
    source = work / "tiny-vit-hf"
    made = run_export_venv(str(ROOT / "tests" / "tinyvit_source.py"), str(source), cwd=work)
    assert made.returncode == 0, made.stderr
    result = run_export_venv("-m", "photosorter", "model", "export", str(source), str(work / "model"),
                             "--images", str(photos), "--data", str(work / "data"), cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return work / "model", result.stdout


def test_an_image_classifier_exports_and_sorts_with_its_classes_mapped_to_categories(
        exported_classifier: tuple[Path, str], photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, output = exported_classifier
    assert "float vs int8 image embeddings: mean cosine" in output
    spec = read_model_folder(folder, {})
    verify_files(spec)
    assert spec.kind == "classifier" and spec.text is None
    assert (folder / "labels.txt").read_text().splitlines()[1] == "pizza, pizza pie"
    inbox = tmp_path / "inbox"
    shutil.copytree(photos, inbox)
    for key, value in settings_env(tmp_path / "library", tmp_path / "data", folder).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    assert main(["sort", str(inbox)]) == 0
    assert not any(inbox.iterdir())
    placed = {p.parent.name for p in (tmp_path / "library").rglob("*.jpg")}
    assert placed <= {"animal", "food", "screenshot", "other", "_unsure"}  # random weights: its classes or other


def test_quantize_command_makes_a_smaller_graph_that_agrees(exported: tuple[Path, str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = exported[0] / "text_model.onnx"
    target = tmp_path / "text_int8.onnx"
    assert main(["model", "quantize", str(source), str(target), "--data", str(tmp_path / "data")]) == 0
    assert target.stat().st_size < source.stat().st_size / 3
    ids = np.full((2, 77), 49407, dtype=np.int64)
    ids[:, 0], ids[0, 1], ids[1, 1] = 49406, 320, 1929
    outputs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})[0]
               for p in (source, target)]
    cosine = np.sum(outputs[0] * outputs[1], axis=1) / np.prod([np.linalg.norm(o, axis=1) for o in outputs], axis=0)
    assert cosine.min() > 0.99


def test_export_without_the_extra_says_how_to_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if "torch" in sys.modules or _importable("torch"):
        pytest.skip("this virtualenv has torch; the message is for one without")
    code = main(["model", "export", "openai/clip-vit-base-patch32", str(tmp_path / "out"),
                 "--data", str(tmp_path / "data")])
    assert code == ConfigError.exit_code
    assert "pip install torch==2.13.0" in capsys.readouterr().err


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _graph_ops(path: Path) -> list[object]:
    import onnx

    return list(onnx.load(str(path)).graph.node)

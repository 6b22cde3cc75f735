"""``photosorter model export`` on a tiny random-weight CLIP with the real CLIP tokenizer, run in the export
virtualenv (torch, transformers, optimum: ``.ci/run`` makes it), then loaded by the runtime here."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosorter.cli import main
from photosorter.config import load_settings
from photosorter.errors import ConfigError
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.modelspec import read_model_folder, verify_files
from photosorter.ml.preprocess import fit_to_input
from photosorter.ml.prior import ZeroShotPrior
from photosorter.ml.selfcheck import check_on_this_cpu, last_check
from tests.conftest import settings_env, shared_path

ROOT = Path(__file__).resolve().parents[1]
EXPORT_PYTHON = Path(os.environ.get("PHOTOSORTER_EXPORT_PYTHON", ROOT / ".venv-export" / "bin" / "python"))
INSTALL = ("bash tests/install_test_tools.sh (or: python3 -m venv .venv-export && "
           ".venv-export/bin/pip install torch==2.13.0 && "
           ".venv-export/bin/pip install -c requirements/export.txt -e '.[export]')")

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


def test_exported_folder_passes_its_self_check_on_this_cpu(exported: tuple[Path, str], tmp_path: Path) -> None:
    spec = read_model_folder(exported[0], {})
    assert spec.self_check["float_graph"]["file"] == "vision_model.onnx"
    assert check_on_this_cpu(spec, tmp_path) is spec
    result = last_check(tmp_path)
    assert result is not None and result.min_cosine > 0.99  # measured 0.9999 (tiny random-weight ViT)


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


PROMPT_IDS = np.full((2, 77), 49407, dtype=np.int64)
PROMPT_IDS[:, 0], PROMPT_IDS[0, 1], PROMPT_IDS[1, 1] = 49406, 320, 1929
AGREEMENT_SCRIPT = """
import sys, numpy as np, onnxruntime as ort
ids = np.load(sys.argv[3])
a, b = (ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})[0]
        for p in sys.argv[1:3])
print(" ".join(str(c) for c in np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
"""
# A CPU without VNNI (AVX2 only), the kind many home servers have, emulated whatever this machine is.
NO_VNNI_CPU = "EPYC"  # AMD Zen 1: AVX2, no AVX-512, no VNNI


@pytest.fixture(scope="module")
def quantized_text(exported: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("quantize")
    source, target = exported[0] / "text_model.onnx", work / "text_int8.onnx"
    assert main(["model", "quantize", str(source), str(target), "--data", str(work / "data")]) == 0
    return source, target


def _cosines(source: Path, target: Path, cpu: str | None, tmp_path: Path) -> np.ndarray:
    ids = tmp_path / "ids.npy"
    np.save(ids, PROMPT_IDS)
    command = [sys.executable, "-c", AGREEMENT_SCRIPT, str(source), str(target), str(ids)]
    if cpu is not None:
        qemu = shutil.which("qemu-x86_64")
        if qemu is None:
            pytest.fail("qemu-x86_64 is missing: apt-get install -y qemu-user")
        command = [qemu, "-cpu", cpu, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.array([float(x) for x in done.stdout.split()])


def test_quantize_command_makes_a_smaller_graph_that_agrees(quantized_text: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    source, target = quantized_text
    assert target.stat().st_size < source.stat().st_size / 3
    # uint8 weights per channel, measured: 0.99957 / 0.99978 with AVX-512 VNNI and the same without
    # (int8 weights gave 0.98597 without VNNI: photosorter/ml/quantize.py).
    assert _cosines(source, target, None, tmp_path).min() > 0.99


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="emulates an x86 CPU; this machine is "
                    "not x86, where the quantized kernels differ anyway")
def test_quantized_graph_agrees_on_a_cpu_without_vnni(quantized_text: tuple[Path, Path], tmp_path: Path) -> None:
    # onnxruntime picks its integer kernels by CPUID; qemu's user-mode emulation reports a Zen 1, so the AVX2
    # kernels run here even on an AVX-512 VNNI machine. Measured: 0.99957 / 0.99978 (int8 weights: 0.98597).
    assert _cosines(*quantized_text, NO_VNNI_CPU, tmp_path).min() > 0.99


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

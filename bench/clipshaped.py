"""The default model's real cost: a CLIP with ViT-B/32's exact shapes and random weights, exported and
quantized by ``photosorter model export`` exactly as the default is shipped (int8 MatMul/Gather).

Made once with the export virtualenv (torch, optimum) and kept in ``~/.cache/photosorter-bench``:
``clip-int8`` as the default ships (image and text towers int8), ``clip-float`` with the float32 graphs
kept beside them (the naive baseline's and the int8/float32 rows' model).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from bench.common import ROOT, row, timed
from bench.sorting import model_spec
from photosorter.config import load_settings
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.modelspec import MANIFEST
from photosorter.ml.prior import ZeroShotPrior

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "photosorter-bench"
EXPORT_PYTHON = Path(os.environ.get("PHOTOSORTER_EXPORT_PYTHON", ROOT / ".venv-export" / "bin" / "python"))


def clip_models(photos: list[Path]) -> tuple[Path, Path]:
    """(int8 folder, folder with the float32 graphs too), exported now if not cached."""
    int8, both = CACHE / "clip-int8", CACHE / "clip-float"
    if (int8 / MANIFEST).is_file() and (both / MANIFEST).is_file():
        return int8, both
    if not EXPORT_PYTHON.is_file():
        raise SystemExit(f"the export virtualenv is missing ({EXPORT_PYTHON}): bash tests/install_test_tools.sh, "
                         "or set PHOTOSORTER_EXPORT_PYTHON")
    CACHE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="clip-shaped-") as tmp:
        source, images = Path(tmp) / "hf", Path(tmp) / "images"
        images.mkdir()
        for photo in photos[:8]:
            (images / photo.name).symlink_to(photo)
        print("  (exporting the CLIP-shaped model once; about 3 minutes)", flush=True)
        subprocess.run([str(EXPORT_PYTHON), str(ROOT / "bench" / "clip_shaped_source.py"), str(source),
                        str(ROOT / ".." / "shared" / "models" / "clip-tokenizer")], check=True, env=env)
        for out, extra in ((int8, []), (both, ["--keep-float"])):
            subprocess.run([str(EXPORT_PYTHON), "-m", "photosorter", "model", "export", str(source), str(out),
                            "--images", str(images), "--data", str(Path(tmp) / "data"), *extra],
                           check=True, env=env, capture_output=True)
    return int8, both


def prompt_rows(model: Path, work: Path) -> None:
    """The category prompts go through the text tower once per model and prompt set; later runs read them."""
    settings = load_settings({"library": str(work / "lib"), "data": str(work / "data")}, environ={},
                             dotenv_path=Path("/nonexistent"))
    figures = []
    for _ in range(2):
        embedder = OnnxEmbedder(model_spec(model), threads=2)
        with timed() as took:
            ZeroShotPrior(embedder, settings.classify.categories, work / "cache")
        figures.append(took[0])
    count = sum(len(c.prompts) for c in settings.classify.categories)
    row(f"CLIP-shaped: {count} category prompts, first run / cached",
        f"{figures[0] * 1000:7.0f} ms / {figures[1] * 1000:5.1f} ms")

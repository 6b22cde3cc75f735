"""Memory of one daemon-like process, run by bench/run.py in a fresh interpreter (the figures of the
benchmark's own process would include everything it measured before):

    python bench/memory_probe.py MODEL FACES INBOX WORK CORES   ->  one JSON line

Builds the sorter as the daemon does with ``model_worker`` off (models loaded on demand in this
process, released when idle; ``photosorter sort`` runs them so too), and reports resident memory idle
before work, the peak during a sort of INBOX, and idle again after the models were released.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RSS
from photosorter.adapters.state import SqliteState
from photosorter.cli.build import build_sorter, model_lifetime
from photosorter.config import load_settings


def main(model: str, faces: str, inbox: Path, work: Path, cores: int) -> None:
    settings = load_settings({"library": str(work / "library"), "data": str(work / "data"), "model": model,
                              "log_level": "warning", "model_threads": cores, "faces": faces != "off",
                              "face_model": None if faces == "off" else faces, "settle_seconds": 0,
                              "model_worker": False},
                             environ={}, dotenv_path=Path("/nonexistent"))
    state = SqliteState(settings.library.data / "state.sqlite3")
    models = model_lifetime(settings)
    sorter = build_sorter(settings, state, lifetime=models)  # CLIP: the prompts are embedded (and cached) here
    models.release_all()
    gc.collect()
    idle_before = RSS.current() / 1e6
    RSS.reset()
    report = sorter.sort_folder(inbox)
    peak = RSS.peak_mb
    models.release_all()
    gc.collect()
    print(json.dumps({"idle_before_mb": round(idle_before, 1), "peak_mb": round(peak, 1),
                      "idle_after_mb": round(RSS.current() / 1e6, 1), "anon_after_mb": round(anon_mb(), 1),
                      "photos": report.handled}))


def anon_mb() -> float:
    """The private part of resident memory (the rest is shared library code the kernel can drop)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("RssAnon:")) * 1024 / 1e6


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))

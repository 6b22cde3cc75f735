"""The face stage on ../shared/faces: three-way accuracy (me / people / none) and ROC AUC of the me score
over many choices of 3 reference photos, and its latency per photo (2 cores).

    .venv/bin/python bench/bench_faces.py [--photos DIR] [--models DIR] [--min-side N] [--choices N]

Photos are decoded the way the sorter decodes them (short side >= ``--min-side``, JPEG draft mode);
the face stage then sees at most 640 px on the long side. Reference photos are chosen among the
``me/`` photos with exactly one clear face (what a person labels first); the fixed choice the tests
use is printed first.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photosorter.adapters.files import LocalFiles  # noqa: E402
from photosorter.adapters.images import decode_image  # noqa: E402
from photosorter.core.faces import ME_THRESHOLD, evaluate_references  # noqa: E402
from photosorter.face_evaluation import DECODE_MIN_SIDE, evaluate_faces, scan_face_folder  # noqa: E402
from photosorter.ml.faces import OnnxFaces, resolve_face_models  # noqa: E402

# The documented fixed choice (tests/test_faces_shared.py): three portraits of the person alone.
FIXED_REFERENCES = ("me/deepface__tests_unit_dataset_img1.jpg", "me/deepface__tests_unit_dataset_img2.jpg",
                    "me/facenet__data_test_images_angelina_jolie_1.jpg")
THRESHOLDS = [round(0.3 + 0.05 * i, 2) for i in range(9)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=Path, default=ROOT / ".." / "shared" / "faces")
    parser.add_argument("--models", type=Path, default=ROOT / ".." / "shared" / "models" / "faces")
    parser.add_argument("--min-side", type=int, default=DECODE_MIN_SIDE)
    parser.add_argument("--choices", type=int, default=1000)
    parser.add_argument("--threshold", type=float, default=ME_THRESHOLD)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = OnnxFaces(resolve_face_models(str(args.models), Path("/nonexistent")))
    scan_face_folder(args.photos, model, decode_image, LocalFiles(), args.min_side)  # warm up the sessions
    scan = scan_face_folder(args.photos, model, decode_image, LocalFiles(), args.min_side)
    names = [photo.name for photo in scan.photos]
    fixed = evaluate_references(scan.photos, [names.index(n) for n in FIXED_REFERENCES], THRESHOLDS, args.threshold)
    print(f"{len(scan.photos)} photos, decoded with short side >= {args.min_side}, me_threshold {args.threshold}")
    print(f"fixed references {', '.join(fixed.references)}: {fixed.correct.get(args.threshold, '?')}/{fixed.total} "
          f"correct, AUC {fixed.auc:.3f}; wrong: {', '.join(fixed.wrong) or 'none'}")
    summary, results = evaluate_faces(scan, references=3, choices=args.choices, thresholds=THRESHOLDS,
                                      threshold=args.threshold)
    print(f"over {summary.choices} choices of 3 references: AUC mean {summary.auc[0]:.3f} "
          f"(min {summary.auc[1]:.3f}, max {summary.auc[2]:.3f})")
    print("me_threshold  correct of 45: mean  min  max")
    for value, (mean, low, high) in sorted(summary.accuracy.items()):
        print(f"  {value:.2f}                  {mean:5.2f} {low:4d} {high:4d}")
    wrong: dict[str, int] = {}
    for result in results:
        for name in result.wrong:
            wrong[name] = wrong.get(name, 0) + 1
    print("most often wrong at the threshold:", ", ".join(f"{n} ({c}/{len(results)})" for n, c in
                                                         sorted(wrong.items(), key=lambda kv: -kv[1])[:5]))
    ms = scan.face_ms
    print(f"face stage per photo (detect + align + embed): median {statistics.median(ms):.1f} ms, "
          f"p95 {percentile(ms, 0.95):.1f} ms, max {max(ms):.1f} ms")


if __name__ == "__main__":
    main()

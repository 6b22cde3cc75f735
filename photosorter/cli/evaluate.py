"""``evaluate``: how well the model, the kNN and their blend sort a folder of labelled photos."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photosorter import __version__
from photosorter.cli.commands import Options, described
from photosorter.config import Settings
from photosorter.errors import ConfigError, ModelError

if TYPE_CHECKING:  # numpy, Pillow, onnxruntime and the evaluation code: only when it runs, so --help stays quick
    import numpy as np
    from PIL import Image

    from photosorter.core.signals import Signals
    from photosorter.evaluation import LabelledSet, Scan
    from photosorter.ml.embedder import OnnxEmbedder
    from photosorter.ml.faces import OnnxFaces
    from photosorter.ml.prior import ZeroShotPrior

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    evaluate = commands.add_parser("evaluate", parents=options.only("data", "model"), **described("evaluate"))
    evaluate.add_argument("folder", type=Path, nargs="?", metavar="DIR",
                          help="folder with one subfolder of photos per category")
    evaluate.add_argument("--json", type=Path, help="write the results here (and a PNG next to it)")
    evaluate.add_argument("--compare", action="store_true", help="print every run in the runs log")
    evaluate.add_argument("--folds", type=int, default=5,
                          help="cross-validation folds (default: %(default)s; 0: leave one near-duplicate group out)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed for folds and label draws")
    evaluate.add_argument("--against", type=Path, metavar="FOLDER",
                          help="a second labelled folder: label all of one, sort the other, both ways (cross-set)")
    evaluate.set_defaults(handler=run_evaluate)


def runs_log(settings: Settings) -> Path:
    from photosorter import scorecard

    return settings.library.data / scorecard.RUNS_LOG


def run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter import scorecard

    if args.folder is None:
        if not args.compare:
            raise ConfigError(["evaluate: give a folder of labelled photos, or --compare"])
        print(scorecard.compare_table(scorecard.read_runs(runs_log(settings))))
        return 0
    if not args.folder.is_dir():
        raise ConfigError([f"evaluate: {args.folder} is not a folder"])
    if args.folds < 2 and args.folds != 0:
        raise ConfigError(["evaluate: --folds must be at least 2 (or 0: leave one group out)"])
    if args.against is not None and not args.against.is_dir():
        raise ConfigError([f"evaluate: {args.against} is not a folder"])
    result = evaluate_folder(args.folder, settings, folds=args.folds, seed=args.seed, against=args.against)
    stamp = result["run"]["date"].replace(":", "").replace("-", "")[:15]
    out = args.json or settings.library.data / "evaluations" / f"{stamp}-{result['run']['dataset_hash']}.json"
    scorecard.write_json(result, out)
    png = out.with_suffix(".png")
    scorecard.draw_png(result, png)
    scorecard.append_run(result, runs_log(settings))
    logged = scorecard.log_to_mlflow(result, [out, png])
    print_summary(result)
    print(f"wrote {out} and {png}; appended to {runs_log(settings)}" + ("; logged to MLflow" if logged else ""))
    if args.compare:
        print(scorecard.compare_table(scorecard.read_runs(runs_log(settings))))
    return 0


def _embed(folder: Path, settings: Settings, embedder: OnnxEmbedder, prior: ZeroShotPrior, crop: str,
           scan: Scan | None) -> tuple[LabelledSet, np.ndarray]:
    import numpy as np

    from photosorter.adapters.files import LocalFiles
    from photosorter.adapters.images import decode_image
    from photosorter.evaluation import embed_labelled_folder

    data = embed_labelled_folder(folder, embedder, decode_image, LocalFiles(), crop=crop, scan=scan)
    if not data.paths:
        raise ConfigError([f"evaluate: no readable photos in {folder}/<category>/"])
    data = _with_categories(data, folder, settings)
    probs = data.class_probs
    return data, np.stack([prior(e, probs[i] if probs is not None else None) for i, e in enumerate(data.embeddings)])


def _with_categories(data: LabelledSet, folder: Path, settings: Settings) -> LabelledSet:
    """Folder names read as a person types a category (``animals/`` is animal), as label and replies do."""
    from dataclasses import replace

    from photosorter.core.replies import CategoryNames

    names = CategoryNames(settings.classify.categories)
    resolved = {name: names.resolve(name) for name in set(data.labels)}
    unknown = sorted(f"{name}/ ({why})" for name, (category, why) in resolved.items() if category is None)
    if unknown:
        raise ConfigError([f"evaluate: in {folder}, folders {', '.join(unknown)} are not categories "
                           f"(known: {', '.join(settings.classify.names)})"])
    return replace(data, labels=[str(resolved[name][0]) for name in data.labels])


def evaluate_folder(folder: Path, settings: Settings, folds: int = 5, seed: int = 0,
                    against: Path | None = None) -> dict[str, Any]:
    from photosorter.cli.build import load_model
    from photosorter.evaluation import Rules, cross_validate, dataset_hash, judge, judge_cross
    from photosorter.ml.embedder import OnnxEmbedder
    from photosorter.ml.prior import ZeroShotPrior
    from photosorter.options import CROP_MODES

    spec = load_model(settings)
    embedder = OnnxEmbedder(spec, threads=settings.model.threads)
    prior = ZeroShotPrior(embedder, settings.classify.categories, settings.library.data / "cache")
    classify = settings.classify
    rules = Rules(classify.names, classify.knn_k, classify.knn_trust_labels, classify.unsure_margin,
                  classify.other_min_score)
    scan, signals_on = build_scan(settings)
    results: dict[str, dict[str, Any]] = {}
    chosen: tuple[LabelledSet, np.ndarray] | None = None
    for crop in (settings.model.crop, *[c for c in CROP_MODES if c != settings.model.crop]):
        data, priors = _embed(folder, settings, embedder, prior, crop, scan if chosen is None else None)
        results[crop] = cross_validate(data, priors, rules, folds=folds, seed=seed)
        chosen = chosen or (data, priors)
    assert chosen is not None
    result = results[settings.model.crop]
    result.update(judge(*chosen, rules, seed=seed))
    if against is not None:
        other = _embed(against, settings, embedder, prior, settings.model.crop, scan)
        result["cross_set"] = {"label_this_sort_other": judge_cross(*chosen, *other, rules),
                               "label_other_sort_this": judge_cross(*other, *chosen, rules),
                               "other": str(against)}
    result["variants"] = {crop: {key: r[key]["accuracy"] for key in ("zero_shot", "knn", "blend")}
                          for crop, r in results.items()}
    result["run"] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "photosorter": __version__,
        "model": spec.name, "model_fingerprint": spec.fingerprint, "dataset": str(folder),
        "dataset_hash": dataset_hash(chosen[0], folder), "git_revision": git_revision(),
        "categories": {c: chosen[0].labels.count(c) for c in sorted(set(chosen[0].labels))},
        "settings": {"crop": settings.model.crop, "knn_k": classify.knn_k,
                     "knn_trust_labels": classify.knn_trust_labels, "unsure_margin": classify.unsure_margin,
                     "other_min_score": classify.other_min_score, "folds": folds, "seed": seed,
                     "signals": signals_on},
    }
    return result


def build_scan(settings: Settings) -> tuple[Scan, list[str]]:
    """The sorter's signal stages for an evaluation: what the file says, and faces when on and found."""
    import numpy as np

    from photosorter.adapters.filemeta import read_file_hints
    from photosorter.cli.build import load_face_models
    from photosorter.core.faces import judge_faces
    from photosorter.core.signals import READ_FROM, Signals
    from photosorter.ml.faces import OnnxFaces
    from photosorter.ml.textread import OnnxTextReader

    faces: OnnxFaces | None = None
    if settings.faces.enabled:
        try:
            faces = OnnxFaces(load_face_models(settings), threads=settings.model.threads)
        except ModelError as exc:
            log.warning("evaluation without faces: %s", exc.message)

    text = OnnxTextReader(threads=settings.model.threads) if settings.classify.text_signal else None

    def scan(data: bytes, image: Image.Image) -> Signals:
        verdict = None
        if faces is not None:
            found, _ = faces.analyse(np.asarray(image.convert("RGB")))
            verdict = judge_faces(found, [-1.0] * len(found), me_threshold=settings.faces.me_threshold)
        # text on every photo; apply_signals uses it only where the sorter would have looked
        coverage, words = text.look(image, READ_FROM) if text is not None else (None, None)
        return Signals(faces=verdict, file=read_file_hints(data), text_coverage=coverage, words=words)

    return scan, ["file"] + (["faces"] if faces is not None else []) + (["text"] if text is not None else [])


def git_revision() -> str:
    """The checkout's commit when photosorter runs from a git work tree, else the empty string."""
    try:
        done = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def print_summary(result: dict[str, Any]) -> None:
    run, split = result["run"], result["split"]
    print(f"{run['model']} on {run['dataset']} ({split['photos']} photos, dataset {run['dataset_hash']}; "
          f"{split['folds']}-fold, {split['near_duplicate_groups']} near-duplicate groups kept on one side)")
    print(f"{'':<14}{'zero-shot':>10}{'kNN':>8}{'blend':>8}")
    print(f"{'accuracy':<14}" + "".join(f"{result[k]['accuracy']:>{w}.3f}"
                                         for k, w in (("zero_shot", 10), ("knn", 8), ("blend", 8))))
    for crop, scores in result["variants"].items():
        print(f"{'crop=' + crop:<14}{scores['zero_shot']:>10.3f}{scores['knn']:>8.3f}{scores['blend']:>8.3f}")
    print(f"per category (blend):{'P':>9}{'R':>7}{'F1':>7}{'n':>5}")
    for name, row in result["blend"]["per_category"].items():
        print(f"  {name:<19}{row['precision']:>9.2f}{row['recall']:>7.2f}{row['f1']:>7.2f}{int(row['support']):>5}")
    curve = result["labels_curve"]
    print("labels per category: " + "  ".join(
        f"{n}: kNN {k:.3f} blend {b:.3f}" for n, k, b in zip(curve["labels_per_category"], curve["knn"],
                                                            curve["blend"], strict=True)))
    print_protocols(result)


def print_protocols(result: dict[str, Any]) -> None:
    """The table the README shows: accuracy (``_unsure`` counts as not right) per category and overall."""
    loop = result["user_loop"]
    five = loop["labels_per_category"].index(5) if 5 in loop["labels_per_category"] else -1
    columns: list[tuple[str, dict[str, Any]]] = [
        ("zero-shot", result["zero_shot_signals"]),
        ("LOSO kNN", result["loso"]["knn"]),
        ("LOSO", result["loso"]["blend"]),
        ("LOSO*", result["loso"]["blend_inner_thresholds"]),
    ]
    if five >= 0:
        columns.append(("loop K=5", {"accuracy": loop["accuracy"][five], "unsure": loop["unsure"][five],
                                     "recall": loop["recall"][five]}))
    cross = result.get("cross_set")
    if cross:
        columns.append(("cross", cross["label_other_sort_this"]["blend"]))
        columns.append(("cross*", cross["label_other_sort_this"]["blend_thresholds_from_train"]))
    print("accuracy (_unsure counts as wrong; * = thresholds chosen inside the training side)")
    print(f"{'':<14}" + "".join(f"{name:>11}" for name, _ in columns))
    print(f"{'all':<14}" + "".join(f"{col['accuracy']:>11.3f}" for _, col in columns))
    print(f"{'unsure':<14}" + "".join(f"{col['unsure']:>11}" for _, col in columns))
    for category in result["zero_shot_signals"]["recall"]:
        print(f"{category:<14}" + "".join(f"{col['recall'].get(category, 0.0):>11.2f}" for _, col in columns))
    print("user loop (K labels per category, sort the rest): " + "  ".join(
        f"{k}: {a:.3f}" for k, a in zip(loop["labels_per_category"], loop["accuracy"], strict=True)))
    asking = result["asking"]
    print(f"labels asked for by the sorter vs at random (half the sources held out, {asking['splits']} splits, "
          "mean ± sd; gain = asked - random per split): " + "  ".join(
              f"{n}: {a:.3f}±{asd:.3f} vs {r:.3f}±{rsd:.3f} (gain {g:+.3f}±{gsd:.3f})"
              for n, a, asd, r, rsd, g, gsd in zip(asking["labels"], asking["asked"], asking["asked_sd"],
                                                   asking["random"], asking["random_sd"], asking["gain"],
                                                   asking["gain_sd"], strict=True))
          + f"; no labels {asking['no_labels']:.3f}, the whole pool labelled {asking['whole_pool']:.3f}")
    without = result["zero_shot_signals"]["without"]
    if without:
        print("zero-shot without each signal: " + "  ".join(f"{k}: {v:.3f}" for k, v in without.items()))
    print("coverage (unsure margin: placed, accuracy of placed): " + "  ".join(
        f"{row['unsure_margin']}: {row['placed']:.2f} {row['accuracy_of_placed']:.3f}" for row in result["coverage"]))
    if cross:
        back = cross["label_this_sort_other"]
        print(f"cross-set: label {result['run']['dataset']}, sort {cross['other']}: {back['blend']['accuracy']:.3f} "
              f"(thresholds from the labelled side {back['blend_thresholds_from_train']['accuracy']:.3f})")

"""``evaluate``: how well the model, the kNN and their blend sort a folder of labelled photos."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from photosorter import __version__, scorecard
from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.config import CROP_MODES, Settings
from photosorter.errors import ConfigError
from photosorter.evaluation import LabelledSet, Rules, cross_validate, dataset_hash, embed_labelled_folder
from photosorter.ml.download import resolve_model
from photosorter.ml.embedder import OnnxEmbedder
from photosorter.ml.prior import ZeroShotPrior


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    evaluate = commands.add_parser("evaluate", parents=[common],
                                   help="score zero-shot, kNN and blend on DIR/<category>/* photos")
    evaluate.add_argument("folder", type=Path, nargs="?", help="folder with one subfolder of photos per category")
    evaluate.add_argument("--json", type=Path, help="write the results here (and a PNG next to it)")
    evaluate.add_argument("--compare", action="store_true", help="print every run in the runs log")
    evaluate.add_argument("--folds", type=int, default=5,
                          help="cross-validation folds (default: %(default)s; 0: leave one near-duplicate group out)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed for folds and label draws")
    evaluate.set_defaults(handler=run_evaluate)


def runs_log(settings: Settings) -> Path:
    return settings.library.data / scorecard.RUNS_LOG


def run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    if args.folder is None:
        if not args.compare:
            raise ConfigError(["evaluate: give a folder of labelled photos, or --compare"])
        print(scorecard.compare_table(scorecard.read_runs(runs_log(settings))))
        return 0
    if not args.folder.is_dir():
        raise ConfigError([f"evaluate: {args.folder} is not a folder"])
    if args.folds < 2 and args.folds != 0:
        raise ConfigError(["evaluate: --folds must be at least 2 (or 0: leave one group out)"])
    result = evaluate_folder(args.folder, settings, folds=args.folds, seed=args.seed)
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


def evaluate_folder(folder: Path, settings: Settings, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    spec = resolve_model(settings.model.name, settings.model_cache_dir, settings.model.base_url)
    embedder = OnnxEmbedder(spec, threads=settings.model.threads)
    prior = ZeroShotPrior(embedder, settings.classify.categories, settings.library.data / "cache")
    classify = settings.classify
    rules = Rules(classify.names, classify.knn_k, classify.knn_trust_labels, classify.unsure_margin,
                  classify.other_min_score)
    results: dict[str, dict[str, Any]] = {}
    chosen: LabelledSet | None = None
    for crop in (settings.model.crop, *[c for c in CROP_MODES if c != settings.model.crop]):
        data = embed_labelled_folder(folder, embedder, decode_image, LocalFiles(), crop=crop)
        if not data.paths:
            raise ConfigError([f"evaluate: no readable photos in {folder}/<category>/"])
        unknown = sorted(set(data.labels) - set(classify.names))
        if unknown:
            raise ConfigError([f"evaluate: folders {', '.join(unknown)} are not categories "
                               f"(known: {', '.join(classify.names)})"])
        probs = data.class_probs
        priors = np.stack([prior(e, probs[i] if probs is not None else None) for i, e in enumerate(data.embeddings)])
        results[crop] = cross_validate(data, priors, rules, folds=folds, seed=seed)
        chosen = chosen or data
    assert chosen is not None
    result = results[settings.model.crop]
    result["variants"] = {crop: {key: r[key]["accuracy"] for key in ("zero_shot", "knn", "blend")}
                          for crop, r in results.items()}
    result["run"] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "photosorter": __version__,
        "model": spec.name, "model_fingerprint": spec.fingerprint, "dataset": str(folder),
        "dataset_hash": dataset_hash(chosen, folder),
        "categories": {c: chosen.labels.count(c) for c in sorted(set(chosen.labels))},
        "settings": {"crop": settings.model.crop, "knn_k": classify.knn_k,
                     "knn_trust_labels": classify.knn_trust_labels, "unsure_margin": classify.unsure_margin,
                     "other_min_score": classify.other_min_score, "folds": folds, "seed": seed},
    }
    return result


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

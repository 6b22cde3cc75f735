"""``me`` (the person's reference faces: add, show, remove, forget, evaluate) and ``resort``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.images import decode_image
from photosorter.cli.library import build_face_stage, build_sorter, open_state
from photosorter.config import Settings
from photosorter.core.faces import ME, PEOPLE
from photosorter.errors import ConfigError
from photosorter.face_evaluation import evaluate_faces, scan_face_folder
from photosorter.facestage import FaceStage, forget_faces
from photosorter.ml.faces import OnnxFaces, resolve_face_models

log = logging.getLogger(__name__)

THRESHOLDS = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    me = commands.add_parser("me", parents=[common], help="teach photosorter your face; list, remove, forget it")
    actions = me.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[common], help="label PHOTO as me and add one of its faces")
    add.add_argument("photo", type=Path)
    add.add_argument("--face", type=int, help="which face, numbered left to right from 1 (default: the largest)")
    add.set_defaults(handler=run_me_add)
    show = actions.add_parser("show", parents=[common], help="list your reference faces")
    show.set_defaults(handler=run_me_show)
    remove = actions.add_parser("remove", parents=[common], help="take reference faces out (numbers from me show)")
    remove.add_argument("ids", type=int, nargs="+")
    remove.set_defaults(handler=run_me_remove)
    forget = actions.add_parser("forget", parents=[common],
                                help="delete your reference faces and every stored face embedding")
    forget.add_argument("--yes", action="store_true", help="do not ask")
    forget.set_defaults(handler=run_me_forget)
    evaluate = actions.add_parser("evaluate", parents=[common],
                                  help="accuracy and ROC AUC on FOLDER/me, FOLDER/others (, FOLDER/none)")
    evaluate.add_argument("folder", type=Path)
    evaluate.add_argument("--references", type=int, default=3, help="reference photos per choice (default 3)")
    evaluate.add_argument("--choices", type=int, default=200, help="how many reference choices at most")
    evaluate.set_defaults(handler=run_me_evaluate)
    resort = commands.add_parser("resort", parents=[common],
                                 help="classify the photos in some category folders again (after teaching faces)")
    resort.add_argument("--category", action="append", dest="categories",
                        help=f"a category folder to reconsider (repeatable; default: {ME} and {PEOPLE})")
    resort.set_defaults(handler=run_resort)


def run_me_add(args: argparse.Namespace, settings: Settings) -> int:
    if ME not in settings.classify.names:
        raise ConfigError([f"categories: there is no {ME!r} category"])
    state = open_state(settings)
    try:
        sorter = build_sorter(settings, state, faces_required=True)
        assert sorter.faces is not None
        before = {r.id for r in sorter.faces.references()}
        if sorter.label([args.photo], ME, face=args.face) != 1:
            return 1
        added = [r for r in sorter.faces.references() if r.id not in before]
        if not added:
            print(f"labelled {args.photo} as {ME}, but found no face in it to learn")
            return 1
        found = sorter.faces.faces(added[0].photo_id)
        count = len(found[0]) if found else 1
        print(f"added face {added[0].number} of {count} (numbered left to right) as reference {added[0].id}; "
              f"{len(sorter.faces.references())} reference faces")
    finally:
        state.close()
    return 0


@contextmanager
def _reference_faces(settings: Settings) -> Iterator[FaceStage]:
    """The face stage over the state file, which is closed again afterwards."""
    state = open_state(settings)
    try:
        stage = build_face_stage(settings, state, required=True)
        assert stage is not None
        yield stage
    finally:
        state.close()


def run_me_show(args: argparse.Namespace, settings: Settings) -> int:
    with _reference_faces(settings) as stage:
        references = stage.references()
        print(f"{len(references)} reference faces")
        for reference in references:
            added = dt.datetime.fromtimestamp(reference.created).isoformat(timespec="seconds")
            print(f"  {reference.id:>4}  face {reference.number} of {reference.photo_path} (added {added})")
    return 0


def run_me_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _reference_faces(settings) as stage:
        missing = [i for i in args.ids if not stage.remove_reference(i)]
        for number in missing:
            print(f"no reference face {number} (see: photosorter me show)")
        print(f"removed {len(args.ids) - len(missing)}; {len(stage.references())} reference faces left")
    return 1 if missing else 0


def run_me_forget(args: argparse.Namespace, settings: Settings) -> int:
    if not args.yes and sys.stdin.isatty():
        answer = input("Delete your reference faces and every stored face? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1
    state = open_state(settings)
    try:
        references, faces = forget_faces(state, settings.library.data)
    finally:
        state.close()
    print(f"forgot {references} reference faces and {faces} stored faces")
    return 0


def run_me_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    if not args.folder.is_dir():
        raise ConfigError([f"folder: {args.folder} is not a folder"])
    files = resolve_face_models(settings.faces.model, settings.model_cache_dir, settings.model.base_url)
    scan = scan_face_folder(args.folder, OnnxFaces(files, threads=settings.model.threads), decode_image, LocalFiles())
    threshold = settings.faces.me_threshold
    summary, _ = evaluate_faces(scan, references=args.references, choices=args.choices,
                                thresholds=sorted({*THRESHOLDS, threshold}), threshold=threshold)
    print(f"{len(scan.photos)} photos, {summary.choices} choices of {args.references} reference photos, "
          f"{summary.total} photos decided per choice")
    print(f"ROC AUC of the me score: mean {summary.auc[0]:.3f} (min {summary.auc[1]:.3f}, max {summary.auc[2]:.3f})")
    print("me_threshold  correct (mean, min, max)")
    for value, (mean, low, high) in sorted(summary.accuracy.items()):
        mark = "  <- setting" if value == threshold else ""
        print(f"  {value:.2f}        {mean:5.1f} {low:3d} {high:3d}  of {summary.total}{mark}")
    return 0


def run_resort(args: argparse.Namespace, settings: Settings) -> int:
    categories = [c.lower() for c in (args.categories or [ME, PEOPLE])]
    state = open_state(settings)
    try:
        moved = build_sorter(settings, state).resort(categories)
    finally:
        state.close()
    print(f"resorted {', '.join(categories)}: moved {sum(moved.values())} photos")
    for folder, count in sorted(moved.items()):
        print(f"  to {folder:<14}{count:>6}")
    return 0

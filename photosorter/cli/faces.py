"""``me`` (the person's reference faces: add, show, remove, forget, evaluate) and ``resort``."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from photosorter.cli.commands import CATEGORY_HELP, Options, described
from photosorter.cli.library import category_named
from photosorter.config import Settings
from photosorter.errors import ConfigError

if TYPE_CHECKING:  # the model stack is imported by the handlers that run, so --help stays quick
    from photosorter.facestage import FaceStage

log = logging.getLogger(__name__)

THRESHOLDS = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    me = commands.add_parser("me", **described("me"))
    actions = me.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do")
    add = actions.add_parser("add", parents=options.everything,
                             **described("me add", summary="label PHOTO as me and keep one of its faces as yours",
                                         examples=("photosorter me add portrait.jpg",
                                                   "photosorter me add group.jpg --face 2")))
    add.add_argument("photo", type=Path, metavar="PHOTO", help="a photo with your face in it")
    add.add_argument("--face", type=int, metavar="N",
                     help="which face, numbered left to right from 1 (default: the largest)")
    add.set_defaults(handler=run_me_add)
    show = actions.add_parser("show", parents=options.only("data"),
                              **described("me show", summary="list your reference faces with their numbers",
                                          examples=("photosorter me show",)))
    show.set_defaults(handler=run_me_show)
    remove = actions.add_parser("remove", parents=options.only("data"),
                                **described("me remove", summary="take reference faces out (numbers from me show)",
                                            examples=("photosorter me remove 3",)))
    remove.add_argument("ids", type=int, nargs="+", metavar="N", help="reference face numbers, as me show lists them")
    remove.set_defaults(handler=run_me_remove)
    forget = actions.add_parser("forget", parents=options.only("data"),
                                **described("me forget", summary="delete your reference faces and every stored face",
                                            examples=("photosorter me forget --yes",)))
    forget.add_argument("--yes", action="store_true", help="do not ask")
    forget.set_defaults(handler=run_me_forget)
    evaluate = actions.add_parser(
        "evaluate", parents=options.only("data", "model"),
        **described("me evaluate", summary="accuracy and ROC AUC on FOLDER/me, FOLDER/others (, FOLDER/none)",
                    examples=("photosorter me evaluate ../shared/faces",)))
    evaluate.add_argument("folder", type=Path, metavar="FOLDER",
                          help="folder with me/ (photos of you), others/ and optionally none/ (no faces)")
    evaluate.add_argument("--references", type=int, default=3, metavar="N",
                          help="reference photos per choice (default 3)")
    evaluate.add_argument("--choices", type=int, default=200, metavar="N",
                          help="how many reference choices at most (default 200)")
    evaluate.set_defaults(handler=run_me_evaluate)
    resort = commands.add_parser("resort", parents=options.everything, **described("resort"))
    resort.add_argument("--category", action="append", dest="categories", metavar="CATEGORY",
                        help="a category folder to reconsider (repeatable; default: me and people); "
                             f"{CATEGORY_HELP}")
    resort.set_defaults(handler=run_resort, check=check_resort)


def run_me_add(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import build_sorter, open_state
    from photosorter.core.faces import ME

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
    from photosorter.cli.build import build_face_stage, open_state

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
    from photosorter.cli.build import open_state
    from photosorter.facestage import forget_faces

    if not args.yes:
        if not sys.stdin.isatty():  # nobody to ask: deleting needs --yes
            raise ConfigError(["me forget: deletes every stored face; nobody can confirm here (no terminal), so add "
                               "--yes"])
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
    from photosorter.adapters.files import LocalFiles
    from photosorter.adapters.images import decode_image
    from photosorter.cli.build import load_face_models
    from photosorter.face_evaluation import evaluate_faces, scan_face_folder
    from photosorter.ml.faces import OnnxFaces

    if not args.folder.is_dir():
        raise ConfigError([f"folder: {args.folder} is not a folder"])
    files = load_face_models(settings)
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


def check_resort(args: argparse.Namespace, settings: Settings) -> None:
    """The categories to resort into ``args.categories`` (each once), or a ``ConfigError`` before any lock
    (which would make the library)."""
    from photosorter.core.faces import ME, PEOPLE

    args.categories = list(dict.fromkeys(category_named(settings, c) for c in (args.categories or [ME, PEOPLE])))


def run_resort(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import build_sorter, open_state

    categories = args.categories
    state = open_state(settings)
    try:
        moved = build_sorter(settings, state).resort(categories)
    finally:
        state.close()
    print(f"resorted {', '.join(categories)}: moved {sum(moved.values())} photos")
    for folder, count in sorted(moved.items()):
        print(f"  to {folder:<14}{count:>6}")
    return 0

"""``sort`` and ``label``: the library commands (the Sorter they run is assembled in ``cli.build``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from photosorter.cli.commands import CATEGORY_HELP, Options, described
from photosorter.config import DEFAULT_SOURCE, Settings, saved_path
from photosorter.core.companions import VIDEOS_FOLDER
from photosorter.core.placement import DUPLICATES_FOLDER, FAILED_FOLDER, UNSURE_FOLDER
from photosorter.core.replies import CategoryNames
from photosorter.errors import ConfigError
from photosorter.records import RunReport

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    sort = commands.add_parser("sort", parents=options.everything, **described("sort"))
    sort.add_argument("inbox", type=Path, nargs="?", metavar="INBOX",
                      help="folder of photos to sort (they are moved; default: the saved or configured inbox)")
    sort.set_defaults(handler=run_sort, check=check_sort)
    label = commands.add_parser("label", parents=options.everything, **described("label"))
    label.add_argument("photos", nargs="*", type=Path, metavar="PHOTO", help="photos that show CATEGORY")
    label.add_argument("category", metavar="CATEGORY", help=CATEGORY_HELP)
    label.add_argument("--folder", type=Path, metavar="DIR", help="also label every photo in DIR (and its subfolders)")
    label.set_defaults(handler=run_label, check=check_label)


def library_folders(settings: Settings) -> tuple[str, ...]:
    """The folders photosorter files photos into: an inbox may not lie inside one."""
    return (*settings.classify.names, UNSURE_FOLDER, FAILED_FOLDER, DUPLICATES_FOLDER, VIDEOS_FOLDER)


def preview_folder(settings: Settings) -> Path:
    """Where sources leave small renditions of the photos they deliver (see ``adapters.previews``)."""
    return settings.library.data / "previews"


def print_report(report: RunReport) -> None:
    total = report.handled + report.videos + len(report.skipped)
    rate = total / report.elapsed_s if report.elapsed_s > 0 else 0.0
    print(f"Sorted {total} files in {report.elapsed_s:.1f} s ({rate:.1f}/s)")
    for category, count in sorted(report.placed.items()):
        print(f"  {category:<14}{count:>6}")
    print(f"  unsure (in _unsure): {report.unsure}")
    print(f"  duplicates (in _duplicates): {report.duplicates}")
    if report.videos:
        print(f"  videos (in videos, not classified): {report.videos}")
    print(f"  failed (in _failed or left in place): {len(report.failed)}")
    for failure in report.failed:
        print(f"    {failure.name}: {failure.reason}")
    if report.skipped:
        print(f"  skipped (left in the inbox): {len(report.skipped)}")
        for failure in report.skipped:
            print(f"    {failure.name}: {failure.reason}")


def category_named(settings: Settings, typed: str) -> str:
    """The category a person typed: its name, title, plural, a synonym or an unambiguous prefix (the same
    matching as email replies); a ``ConfigError`` listing the categories otherwise."""
    name, why = CategoryNames(settings.classify.categories).resolve(typed)
    if name is None:
        raise ConfigError([f"category: {why}; the categories are {', '.join(settings.classify.names)}"])
    return name


def chosen_values(settings: Settings, **given: str | Path | None) -> dict[str, str]:
    """The settings worth saving: ``given`` ones, and those the person set (not defaults); paths made absolute."""
    current = {"library": settings.library.path, "inbox": settings.library.inbox, "model": settings.model.name,
               "face_model": settings.faces.model}
    values: dict[str, str] = {}
    for key, value in current.items():
        if given.get(key) is not None:
            value = given[key]  # type: ignore[assignment]
        elif settings.source_of(key) == DEFAULT_SOURCE or settings.source_of(key).startswith("saved"):
            continue
        path = Path(str(value)).expanduser()
        values[key] = str(path.resolve()) if key in ("library", "inbox") or path.exists() else str(value)
    return values


def check_sort(args: argparse.Namespace, settings: Settings) -> None:
    """The inbox to sort (given, else saved or configured) into ``args.inbox``, or a ``ConfigError``; run before
    the writers' lock, which makes the library: a sort refused here leaves no empty library behind."""
    from photosorter.placing import check_inbox

    inbox = args.inbox if args.inbox is not None else (Path(settings.library.inbox) if settings.library.inbox else None)
    if inbox is None:
        raise ConfigError(["inbox: give the folder to sort (photosorter sort INBOX), or save one with "
                           "photosorter init --inbox INBOX"])
    if not inbox.exists():
        raise ConfigError([f"inbox: {inbox} does not exist"])
    if not inbox.is_dir():
        raise ConfigError([f"inbox: {inbox} is a file, not a folder"])
    check_inbox(inbox, settings.library.path, library_folders(settings))
    args.inbox = inbox


def run_sort(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import build_sorter, open_state, remember  # the model stack, only when it runs

    inbox = args.inbox
    first = not saved_path(settings.library.data).exists()
    state = open_state(settings)
    try:
        print_report(build_sorter(settings, state).sort_folder(inbox))
    finally:
        state.close()
    if first:  # the first sort remembers its choices, so the next commands need no flags
        values = chosen_values(settings, inbox=inbox, library=settings.library.path)
        path = remember(settings, values)
        if path is not None:
            log.info("saved %s to %s: later commands use them (change with photosorter init)",
                     ", ".join(sorted(values)), path)
    return 0


def check_label(args: argparse.Namespace, settings: Settings) -> None:
    """The photos to label into ``args.photos`` and the category's name into ``args.category``, or a
    ``ConfigError`` (before the writers' lock, as for sort)."""
    paths = list(args.photos)
    if args.folder:
        paths += sorted(p for p in args.folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise ConfigError(["label: give PHOTO... CATEGORY or --folder DIR CATEGORY"])
    args.photos, args.category = paths, category_named(settings, args.category)


def run_label(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import build_sorter, open_state

    paths, category = args.photos, args.category
    state = open_state(settings)
    try:
        sorter = build_sorter(settings, state)
        sorter.recover()  # a move a killed run left half done is settled before a label moves anything
        before = state.library_counts()
        count = sorter.label(paths, category)
        after = state.library_counts()
    finally:
        state.close()
    print(f"labelled {count} of {len(paths)} photos as {category}")
    left = {folder: n - after.get(folder, 0) for folder, n in before.items() if n > after.get(folder, 0)}
    if left:  # library photos the labels moved, also those with the same bytes as a labelled file elsewhere
        print(f"moved {sum(left.values())} library photos into {category}/ (from "
              + ", ".join(f"{folder}/ {n}" for folder, n in sorted(left.items())) + ")")
    return 0 if count == len(paths) else 1

"""``init`` (save the setup in the data folder) and ``status`` (the settings, where each came from, and counts)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from pathlib import Path

from photosorter.cli.commands import Options, described
from photosorter.config import STATE_FILE, Settings, read_saved, save_settings, saved_path
from photosorter.options import OPTIONS

log = logging.getLogger(__name__)

SHOWN = (("library", "library"), ("data", "data"), ("inbox", "inbox"), ("model", "model"),
         ("face_model", "face model"))


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    init = commands.add_parser("init", parents=options.everything, **described("init"))
    init.description = ("Save the given choices in <data>/settings.json; every later command reads them (a flag "
                        "or PHOTOSORTER_ variable still wins). A model given here is fetched now, so its "
                        "download happens once, here.")
    init.add_argument("--inbox", type=Path, metavar="DIR",
                      help="folder that photosorter sort (with no INBOX) and photosorter run sort from")
    init.set_defaults(handler=run_init)
    status = commands.add_parser("status", parents=options.everything, **described("status"))
    status.add_argument("--all", action="store_true", dest="every_setting",
                        help="list every setting with its value and where it came from (secrets as ***)")
    status.set_defaults(handler=run_status)


def run_init(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import open_model  # the model stack, only when needed
    from photosorter.cli.library import chosen_values

    values = chosen_values(settings, inbox=args.inbox)
    if "model" in values:
        open_model(settings)  # download (or check) now; a chosen model that cannot be had is an error here
    path = save_settings(settings.library.data, values)
    settings.library.path.mkdir(parents=True, exist_ok=True)
    print(f"saved in {path}:")
    for key, value in sorted(read_saved(settings.library.data).items()):
        print(f"  {key}: {value}")
    if settings.source_of("data") != "default":
        print(f"the data folder is not the default: give --data {settings.library.data} "
              f"(or PHOTOSORTER_DATA={settings.library.data}) to later commands")
    return 0


def _value(settings: Settings, key: str) -> str:
    value = {"library": settings.library.path, "data": settings.library.data, "inbox": settings.library.inbox,
             "model": settings.model.name, "face_model": settings.faces.model}[key]
    return str(value) if str(value) else "(none)"


def setting_lines(settings: Settings) -> list[str]:
    """Every option as ``key: value  (source)``; secrets print as ***, categories by name."""
    lines = []
    for option in OPTIONS:
        value = getattr(getattr(settings, option.section), option.name)
        if option.key == "categories":
            value = ", ".join(c.name for c in value)
        elif isinstance(value, tuple):
            value = ", ".join(map(str, value))
        lines.append(f"  {option.key}: {value if str(value) else '(empty)'}  ({settings.source_of(option.key)})")
    return lines


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    for key, title in SHOWN:
        print(f"{title}: {_value(settings, key)}  ({settings.source_of(key)})")
    if getattr(args, "every_setting", False):  # callers in-process (bench) may pass a bare Namespace
        print("every setting:")
        print("\n".join(setting_lines(settings)))
    library_exists = settings.library.path.is_dir()
    if not library_exists:
        print(f"the library {settings.library.path} does not exist (yet): photosorter sort INBOX creates it")
    if not (settings.library.data / STATE_FILE).is_file():
        print(f"nothing sorted yet with the data folder {settings.library.data} "
              f"(settings saved: {'yes' if saved_path(settings.library.data).is_file() else 'no'})")
        return 0
    from photosorter.adapters.state import SqliteState  # numpy and Pillow: after the settings are printed
    from photosorter.ml.selfcheck import last_check

    state = SqliteState(settings.library.data / STATE_FILE, writer=False)  # holds no lock: never repairs
    try:
        if library_exists:
            counts = state.library_counts()
            print("photos in the library:")
            for name in (*settings.classify.names, "_unsure", "_duplicates", "_failed"):
                print(f"  {name:<14}{counts.get(name, 0):>6}")
        labels = state.label_counts()
        print("labels:")
        for name in settings.classify.names:
            print(f"  {name:<14}{labels.get(name, 0):>6}")
        last = state.last_run()
        if last:
            started = dt.datetime.fromtimestamp(float(last["started"]))  # type: ignore[arg-type]
            print(f"last run: {started.isoformat(timespec='seconds')} with {last['model']}: placed {last['placed']}, "
                  f"unsure {last['unsure']}, duplicates {last['duplicates']}, failed {last['failed']}")
        else:
            print("last run: never")
        check = last_check(settings.library.data)
        if check is None:
            print("model check: not run yet on this data folder")
        else:
            checked = dt.datetime.fromtimestamp(check.checked_at).isoformat(timespec="seconds")
            verdict = "ok" if check.ok else "BELOW 0.99" + (", using the float32 graph" if check.fell_back else "")
            print(f"model check: {check.model} on {check.cpu}: cosine {check.min_cosine:.4f} to its float32 "
                  f"reference, {verdict} ({checked}, graph {check.graph})")
    finally:
        state.close()
    return 0

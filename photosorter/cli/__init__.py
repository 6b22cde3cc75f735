"""Composition root: argv -> Settings -> adapters -> run. The only package that wires things together.

Each module here owns a group of subcommands: ``register(commands, options)`` adds them to the parser
(with the option groups of ``commands.Options`` that apply) and sets ``handler(args, settings) -> exit
status`` on each. Only the chosen command's module is imported (``commands.COMMANDS`` says which), and
those modules import the heavy libraries (onnxruntime, usearch, numpy, Pillow, pyicloud, aiohttp, the mail
stack) inside the handlers that need them, the model stack through ``cli.build``: ``COMMAND --help`` and
argument errors load none of them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence

from photosorter import __version__
from photosorter.adapters.filesystem import PRIVATE_UMASK, make_private
from photosorter.adapters.locks import writer_locks
from photosorter.cli.commands import COMMANDS, Options
from photosorter.config import Settings, load_settings
from photosorter.errors import ConfigError, PhotosorterError
from photosorter.progress import BarAwareHandler

log = logging.getLogger("photosorter")

# Commands that change the state or the library: one at a time per data folder and per library (the daemon
# takes the same locks while it works; a library not there yet is made and locked). The others only read and
# run beside them.
WRITERS = frozenset({"sort", "label", "resort", "sync", "me", "replies", "digest"})
FILLERS = WRITERS - {"me", "digest"}  # writers that put photos in the library: they make it when it is not there


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first word that is not an option), if it is one."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS else None


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The full parser of the chosen command's module; the other commands only as names with a summary, so
    their modules (and what they import) stay unloaded."""
    parser = argparse.ArgumentParser(
        prog="photosorter", description="Sort a photo library into categories on the CPU.",
        epilog="first run: photosorter sort INBOX --library LIBRARY\n"
               "photosorter COMMAND --help shows a command's options and examples",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"photosorter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv)
    loaded = COMMANDS[chosen].module if chosen else None
    options = Options()
    for name, command in COMMANDS.items():
        if command.module != loaded:
            commands.add_parser(name, help=command.summary)
        elif name == next(n for n, c in COMMANDS.items() if c.module == loaded):
            importlib.import_module(f"photosorter.cli.{loaded}").register(commands, options)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    given = {key: getattr(args, key, None) for key in ("library", "data", "model", "face_model", "log_level")}
    return load_settings(given, options_path=getattr(args, "options", None))


def setup_logging(level: str) -> None:
    """One line per event, readable in the add-on log panel."""
    handler = BarAwareHandler(sys.stderr)  # a progress bar on the terminal steps aside for log lines
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv).parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"photosorter: invalid setting {problem}", file=sys.stderr)
        return exc.exit_code
    setup_logging(settings.general.log_level)
    for note in settings.notes:
        log.warning("%s", note)
    umask = os.umask(PRIVATE_UMASK)  # every file we write is private to us; restored for callers in-process
    try:
        try:
            healed = make_private(settings.library.data)
        except OSError as exc:
            log.error("cannot use the data folder %s: %s", settings.library.data, exc.strerror or exc)
            return 1
        if healed:
            log.info("made %d files and folders in %s private to photosorter (0600/0700)", healed,
                     settings.library.data)
        if getattr(args, "check", None) is not None:  # arguments checked before any lock makes a library
            args.check(args, settings)
        if args.command not in WRITERS:
            return int(args.handler(args, settings))
        with writer_locks(settings.library.data, settings.library.path, args.command,
                          fills_library=args.command in FILLERS):
            return int(args.handler(args, settings))
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return exc.exit_code
    except PhotosorterError as exc:
        log.error("%s", exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        log.warning("interrupted; state is saved, run again to continue")
        return 130
    except sqlite3.OperationalError as exc:  # a part that let SQLite's own error through: disk full, I/O error
        log.error("the state database in %s failed: %s; free space or fix the disk, then run again (a restart is "
                  "safe)", settings.library.data, exc)
        return 1
    finally:
        os.umask(umask)

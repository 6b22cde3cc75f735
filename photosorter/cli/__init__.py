"""Composition root: argv -> Settings -> adapters -> run. The only package that wires things together.

Each module here owns a group of subcommands: ``register(commands, common)`` adds them to the parser
and sets ``handler(args, settings) -> exit status`` on each.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from photosorter import __version__
from photosorter.adapters.filesystem import PRIVATE_UMASK, make_private
from photosorter.cli import evaluate, faces, icloud, library, mail, model, mqtt, run, setup, web
from photosorter.config import Settings, load_settings
from photosorter.errors import ConfigError, PhotosorterError

log = logging.getLogger("photosorter")

COMMAND_GROUPS = (setup, library, run, web, mqtt, model, evaluate, icloud, faces, mail)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--library", help="sorted library folder (PHOTOSORTER_LIBRARY)")
    common.add_argument("--data", help="state, index and model cache folder (PHOTOSORTER_DATA)")
    common.add_argument("--model", help="model folder or built-in model name (PHOTOSORTER_MODEL)")
    common.add_argument("--face-model", help="face models folder or built-in set (PHOTOSORTER_FACE_MODEL)")
    common.add_argument("--options", type=Path, help="add-on options JSON file (e.g. /data/options.json)")
    common.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    parser = argparse.ArgumentParser(prog="photosorter", description="Sort a photo library into categories.")
    parser.add_argument("--version", action="version", version=f"photosorter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands, common)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings({"library": args.library, "data": args.data, "model": args.model,
                          "face_model": args.face_model, "log_level": args.log_level}, options_path=args.options)


def setup_logging(level: str) -> None:
    """One line per event, readable in the add-on log panel."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
    finally:
        os.umask(umask)

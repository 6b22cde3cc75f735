"""The light half of the CLI: every command's module, one-line summary and example, and the option groups.

``photosorter --help`` and the dispatch read only this module; the module that runs a command is imported
when that command is chosen, and the heavy libraries it needs (onnxruntime, pyicloud, the evaluation code)
only when its handler runs. Options are offered only where they mean something: ``--library`` where photos are sorted or
counted, ``--model``/``--face-model`` where a model runs, ``--data`` wherever state is read.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photosorter.core.categories import DEFAULT_CATEGORIES


@dataclass(frozen=True)
class Command:
    module: str  # photosorter.cli.<module> registers and runs it
    summary: str
    examples: tuple[str, ...]


COMMANDS: dict[str, Command] = {
    "init": Command("setup", "save library, inbox and model for the commands after it",
                    ("photosorter init --library ~/Pictures/sorted --inbox ~/Pictures/new",
                     "photosorter init --model clip-vit-b32          # download the better model now")),
    "status": Command("setup", "each setting and where it came from; photo and label counts; last run",
                      ("photosorter status", "photosorter status --library /srv/photos")),
    "sort": Command("library", "move every photo from INBOX into LIBRARY/<category>/",
                    ("photosorter sort ~/Pictures/new --library ~/Pictures/sorted",
                     "photosorter sort                               # the saved inbox and library")),
    "label": Command("library", "teach a category with example photos (library photos move there too)",
                     ("photosorter label IMG_0001.jpg IMG_0002.jpg food",
                      "photosorter label --folder ~/Pictures/beers beer")),
    "resort": Command("faces", "classify again the photos in some category folders (after teaching faces)",
                      ("photosorter resort --category people --category me",)),
    "me": Command("faces", "teach photosorter your face; list, remove or forget the reference faces",
                  ("photosorter me add portrait.jpg", "photosorter me add group.jpg --face 2", "photosorter me show")),
    "digest": Command("mail", "send the daily digest now, or write it to files to look at",
                      ("photosorter digest --dry-run                  # HTML and .eml in <data>/digests",
                       "photosorter digest --send-now")),
    "replies": Command("mail", "apply the corrections people sent by replying to the digest",
                       ("photosorter replies --once",)),
    "icloud": Command("icloud", "sign in to iCloud, or give the running daemon a 2FA code",
                      ("photosorter icloud login", "photosorter icloud code 123456")),
    "sync": Command("icloud", "fetch new photos from iCloud once, then sort them", ("photosorter sync",)),
    "run": Command("run", "run continuously: sync iCloud, sort the inbox, publish to MQTT, mail the digest",
                   ("photosorter run", "photosorter run --options /data/options.json   # as the add-on does")),
    "web": Command("web", "serve the web page (review, library, map, health) without the daemon",
                   ("photosorter web --port 8099",)),
    "health": Command("health", "exit 0 while a running daemon's loop is alive (the add-on's health check)",
                      ("photosorter health --data /data",)),
    "evaluate": Command("evaluate", "score zero-shot, kNN and blend on DIR/<category>/* photos",
                        ("photosorter evaluate ~/labelled --json results.json", "photosorter evaluate --compare")),
    "model": Command("model", "export, quantize and check models",
                     ("photosorter model export openai/clip-vit-base-patch32 models/clip-b32",
                      "photosorter model check")),
    "mqtt": Command("mqtt", "check the MQTT broker settings and list the topics and entities",
                    ("photosorter mqtt",)),
}

CATEGORY_HELP = ("a category: " + ", ".join(c.name for c in DEFAULT_CATEGORIES) +
                 " by default (photosorter status lists yours); prefixes, plurals and a few synonyms work")


def described(name: str, *, summary: str | None = None, examples: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``add_parser`` keywords for a command: its summary as help and description, its examples as epilog."""
    command = COMMANDS.get(name)
    text = summary or (command.summary if command else "")
    shown = examples if examples is not None else (command.examples if command else ())
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in shown) if shown else None
    return {"help": text, "description": text[:1].upper() + text[1:] + ".", "epilog": epilog,
            "formatter_class": argparse.RawDescriptionHelpFormatter}


class Options:
    """Parent parsers for the option groups; a command takes the groups that apply to it."""

    def __init__(self) -> None:
        self.general = argparse.ArgumentParser(add_help=False)
        group = self.general.add_argument_group("settings")
        group.add_argument("--options", type=Path, metavar="FILE",
                           help="add-on options JSON file to read settings from (the add-on: /data/options.json)")
        group.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                           help="how much to log (PHOTOSORTER_LOG_LEVEL; default info)")
        self.data = argparse.ArgumentParser(add_help=False)
        self.data.add_argument("--data", metavar="DIR",
                               help="folder for state, kNN index, model cache and saved settings "
                                    "(PHOTOSORTER_DATA; default ~/.local/share/photosorter)")
        self.library = argparse.ArgumentParser(add_help=False)
        self.library.add_argument("--library", metavar="DIR",
                                  help="the sorted library, one folder per category "
                                       "(PHOTOSORTER_LIBRARY; default ~/Pictures/photosorter)")
        self.model = argparse.ArgumentParser(add_help=False)
        self.model.add_argument("--model", metavar="DIR|NAME",
                                help="model folder, or clip-vit-b32 (default, downloaded once) or mobilenet-v2 "
                                     "(built in) (PHOTOSORTER_MODEL)")
        self.model.add_argument("--face-model", metavar="DIR|NAME",
                                help="face models folder, or yunet-mobileface (built in, the default) "
                                     "(PHOTOSORTER_FACE_MODEL)")

    def only(self, *groups: str) -> list[argparse.ArgumentParser]:
        """The parents for ``groups`` (of data, library, model) plus the general settings options."""
        return [getattr(self, g) for g in groups] + [self.general]

    @property
    def everything(self) -> list[argparse.ArgumentParser]:
        return self.only("data", "library", "model")

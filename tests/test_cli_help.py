"""The CLI explains itself: help on every argument, an example per command, options only where they apply,
and --help / status load none of the heavy libraries (their speed is measured in the closing notes, not here)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from photosorter.cli import _parser
from photosorter.cli.commands import COMMANDS
from tests.conftest import write_photo
from tests.test_sort_folder import files_under, run_cli

HEAVY = ("pyicloud", "onnxruntime", "usearch", "numpy", "PIL", "aiohttp", "aiosmtplib", "imapclient", "paho",
         "photosorter.evaluation", "photosorter.pipeline", "photosorter.facestage", "photosorter.mailflow",
         "photosorter.web", "photosorter.cli.build")


def subcommand_parsers(command: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of a command and of each of its actions (``me add``, ``icloud code`` ...)."""
    found = []
    stack = [(command, _parser([command])._subparsers._group_actions[0].choices[command])]  # type: ignore[union-attr]
    while stack:
        name, parser = stack.pop()
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
    return found


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_argument_has_help_and_every_command_an_example(command: str) -> None:
    for name, parser in subcommand_parsers(command):
        for action in parser._actions:
            assert action.help, f"photosorter {name}: {action.dest} has no help"
        leaves = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if leaves:
            assert parser.epilog and "examples:\n  photosorter " in parser.epilog, f"photosorter {name}: no example"


@pytest.mark.parametrize(("command", "absent"), [
    ("health", "--library"), ("health", "--model"), ("mqtt", "--data"), ("mqtt", "--library"),
    ("model export", "--model"), ("model export", "--library"), ("icloud code", "--library"), ("me show", "--model")])
def test_options_are_offered_only_where_they_apply(command: str, absent: str) -> None:
    parsers = dict(subcommand_parsers(command.split()[0]))
    options = {o for action in parsers[command]._actions for o in action.option_strings}
    assert absent not in options and "--log-level" in options


@pytest.mark.parametrize("argv", [["--help"], ["status", "--data", "{tmp}"], ["health", "--data", "{tmp}"]])
def test_help_and_status_import_none_of_the_heavy_libraries(argv: list[str], tmp_path: Path) -> None:
    code = ("import sys\nfrom photosorter.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))")
    result = subprocess.run([sys.executable, "-c", code, *[a.format(tmp=tmp_path) for a in argv]],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


ASK_EVERY_COMMAND = """
import contextlib, io, sys
from photosorter.cli import main
from photosorter.cli.commands import COMMANDS
for name in COMMANDS:
    for argv in ([name, "--help"], [name, "--log-level", "loud"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), contextlib.suppress(SystemExit):
            main(argv)
        assert f"usage: photosorter {name}" in out.getvalue(), (argv, out.getvalue())
print(sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[1:]))))
"""


def test_every_commands_help_and_argument_errors_import_none_of_the_heavy_libraries() -> None:
    """``COMMAND --help`` and an argument error answer at once: the model stack, pyicloud, aiohttp and the mail
    libraries load only when a command runs (one interpreter asks every command, so this stays quick)."""
    result = subprocess.run([sys.executable, "-c", ASK_EVERY_COMMAND, *HEAVY], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


@pytest.mark.parametrize("command", ["label", "resort"])
def test_where_a_category_is_typed_the_help_lists_the_categories(command: str) -> None:
    from photosorter.core.categories import DEFAULT_CATEGORIES

    (_, parser), *_ = subcommand_parsers(command)
    text = " ".join(parser.format_help().split())
    assert all(f" {c.name}," in text or f" {c.name} " in text for c in DEFAULT_CATEGORIES), text
    assert "CATEGORY" in text and "CATEGORIES" not in text and "prefixes, plurals" in text


def test_label_takes_a_category_as_an_email_reply_would(tmp_path: Path, tiny_model: Path) -> None:
    photo = write_photo(tmp_path / "elsewhere", "dog.jpg", (120, 90, 60))
    common = ("--library", tmp_path / "lib", "--data", tmp_path / "data", "--model", tiny_model)
    typed_as = (("anim", "animal"), ("animals", "animal"), ("Dogs", "animal"), ("screen shot", "screenshot"))
    for typed, expected in typed_as:
        result = run_cli("label", photo, typed, *common)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"labelled 1 of 1 photos as {expected}"
    refused = run_cli("label", photo, "s", *common)
    assert refused.returncode == 1 and "the categories are screenshot, me, people" in refused.stderr


def test_resort_takes_a_category_as_label_does(tmp_path: Path, tiny_model: Path) -> None:
    result = run_cli("resort", "--category", "peop", "--category", "Dogs", "--category", "people",
                     "--library", tmp_path / "lib", "--data", tmp_path / "data", "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "resorted people, animal: moved 0 photos"


def test_a_missing_inbox_is_reported_as_missing(tmp_path: Path, tiny_model: Path) -> None:
    result = run_cli("sort", tmp_path / "nope", "--data", tmp_path / "data", "--model", tiny_model)
    assert result.returncode == 1 and f"inbox: {tmp_path / 'nope'} does not exist" in result.stderr
    write_photo(tmp_path, "file.jpg", (1, 2, 3))
    result = run_cli("sort", tmp_path / "file.jpg", "--data", tmp_path / "data", "--model", tiny_model)
    assert "is a file, not a folder" in result.stderr and files_under(tmp_path) == [tmp_path / "file.jpg"]


def test_an_unknown_variable_is_warned_about_once_with_the_closest_name(tmp_path: Path) -> None:
    result = run_cli("status", "--data", tmp_path, env={"PHOTOSORTER_KNN_KK": "7"})
    assert result.returncode == 0
    assert result.stderr.count("PHOTOSORTER_KNN_KK") == 1 and "did you mean PHOTOSORTER_KNN_K?" in result.stderr


def test_every_registered_command_is_listed_in_the_command_table() -> None:
    """A command a module registers but cli/commands.py does not list could never be chosen."""
    for name in COMMANDS:
        registered = set(_parser([name])._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
        assert registered == set(COMMANDS), f"add {sorted(registered - set(COMMANDS))} to cli/commands.py COMMANDS"

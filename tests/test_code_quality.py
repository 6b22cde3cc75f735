"""ruff and mypy run as part of the suite, and the layers keep their import direction."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "photosorter", "tests", "bench", "addon"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_core_imports_only_records_and_itself() -> None:
    for path in (ROOT / "photosorter" / "core").glob("*.py"):
        ours = {m for m in imports_of(path) if m.startswith("photosorter")}
        assert ours <= {"photosorter.records"} | {m for m in ours if m.startswith("photosorter.core")}, path


def test_only_the_composition_root_imports_adapters() -> None:
    for path in (ROOT / "photosorter").rglob("*.py"):
        if "cli" in path.parts or "adapters" in path.parts:
            continue
        assert not any(m.startswith("photosorter.adapters") for m in imports_of(path)), path


def test_adapters_never_import_each_other() -> None:
    shared = {"photosorter.adapters.sqlite",  # connection plumbing for the tables in the one state file
              "photosorter.adapters.vectors",  # how embeddings are stored in it (state, catalog, mail ledger read them)
              "photosorter.adapters.filesystem"}  # flushing a folder, sweeping stale leftovers
    adapters = ROOT / "photosorter" / "adapters"
    for path in adapters.rglob("*.py"):
        # an adapter that is a package (icloud/) may import its own modules, never another adapter
        own = f"photosorter.adapters.{path.relative_to(adapters).parts[0]}" if path.parent != adapters else None
        others = {m for m in imports_of(path) - shared if m.startswith("photosorter.adapters")}
        assert not {m for m in others if own is None or not (m == own or m.startswith(own + "."))}, path

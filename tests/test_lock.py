"""The lock files (requirements/*.txt, made by requirements/lock.sh with uv) and the virtualenv built from them."""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
REFRESH = "refresh the lock with: bash requirements/lock.sh"
# Installed by the tools themselves, not by the project's requirements.
TOOLING = {"pip", "setuptools", "wheel", "photosorter"}


def locked(name: str) -> dict[str, str]:
    """Package -> exact version, for the lines of requirements/<name>.txt that apply to this Python and machine."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
        if not line or line[0] in "# ":
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            (version,) = [spec.version for spec in requirement.specifier if spec.operator == "=="]
            pins[canonicalize_name(requirement.name)] = version
    return pins


def declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra_lines = [line for extra in extras for line in project["optional-dependencies"][extra]]
    lines = [*project["dependencies"], *extra_lines]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(("lock", "extras"), [("runtime", ()), ("test", ("test",)), ("export", ("export",))])
def test_lock_satisfies_every_declared_requirement(lock: str, extras: tuple[str, ...]) -> None:
    pins = locked(lock)
    for requirement in declared(*extras):
        name = canonicalize_name(requirement.name)
        if name == "torch" and lock == "export":
            continue  # installed first from its CPU build (tests/install_test_tools.sh), left out of the lock
        assert name in pins, f"{name} is declared in pyproject.toml but not in requirements/{lock}.txt: {REFRESH}"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements/{lock}.txt pins {name}=={pins[name]}, pyproject.toml asks {requirement.specifier}: {REFRESH}"


def test_runtime_lock_holds_no_training_stack() -> None:
    text = (ROOT / "requirements" / "runtime.txt").read_text().lower()
    for heavy in ("torch", "optimum", "transformers"):
        assert not re.search(rf"^{heavy}\b", text, re.M), heavy


def test_this_virtualenv_holds_exactly_the_locked_versions() -> None:
    pins = locked("test")
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}
    wrong = {name: (installed.get(name), version) for name, version in pins.items() if installed.get(name) != version}
    assert not wrong, f"installed vs locked: {wrong}; reinstall with: pip install -c requirements/test.txt -e '.[test]'"
    if os.environ.get("CI") == "true":  # a fresh virtualenv: nothing beyond the lock (a developer's may hold more)
        extra = set(installed) - set(pins) - TOOLING
        assert not extra, f"installed but not locked: {sorted(extra)}"

#!/usr/bin/env bash
# Install Home Assistant core 2024.3.3 (the newest release for Python 3.11) into its own virtualenv, for
# tests/test_home_assistant.py. Idempotent: does nothing when that virtualenv already has it.
#
# A plain `pip install homeassistant==2024.3.3` pulls today's versions of its dependencies and HA starts in
# recovery mode, so every install here uses the release's own constraints (package_constraints.txt, taken
# from the wheel) and only packages uploaded before the end of March 2024. The requirements of the
# integrations the test loads are installed the same way, and the test runs `hass --skip-pip`.
#
# Where: $PHOTOSORTER_HA_VENV, default ~/.cache/photosorter/home-assistant-2024.3.3 (shared by checkouts).
set -euo pipefail
VERSION=2024.3.3
CUTOFF=2024-03-30T00:00:00Z
VENV="${PHOTOSORTER_HA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/photosorter/home-assistant-$VERSION}"
# Integrations the test's configuration.yaml loads (with those HA always loads and their dependencies);
# recorder is not loaded, but analytics imports it; MQTT sets up its camera platform, which imports stream
# (numpy) without setting it up.
INTEGRATIONS="homeassistant http api config onboarding logger mqtt recorder camera"
EXTRA_REQUIREMENTS="numpy"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

# The stamp names this script's checksum: changing the script (say, an integration more) reinstalls.
STAMP="$VENV/.installed-$VERSION"
CHECKSUM="$(sha256sum "$0" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$CHECKSUM" ]; then
    echo "Home Assistant $VERSION already installed in $VENV"
    exit 0
fi
echo "installing Home Assistant $VERSION into $VENV"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade 'pip>=26'
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" -m pip download --quiet --no-deps --dest "$work" "homeassistant==$VERSION"
"$VENV/bin/python" - "$work" <<'PY'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
wheel = next(work.glob("homeassistant-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    (work / "constraints.txt").write_bytes(archive.read("homeassistant/package_constraints.txt"))
PY
install=("$VENV/bin/python" -m pip install --quiet --constraint "$work/constraints.txt"
         --uploaded-prior-to "$CUTOFF")
"${install[@]}" "$work"/homeassistant-*.whl
"$VENV/bin/python" - "$work/requirements.txt" $INTEGRATIONS <<'PY'
"""Requirements of the given integrations, of those Home Assistant always sets up, and of everything they
depend on, from their manifests."""
import json, pathlib, sys
import homeassistant.components as components
from homeassistant import bootstrap
root = pathlib.Path(components.__file__).parent
todo = [*sys.argv[2:], *bootstrap.CORE_INTEGRATIONS, *bootstrap.DEFAULT_INTEGRATIONS]
seen, requirements = set(), []
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    manifest = json.loads((root / name / "manifest.json").read_text())
    requirements += manifest.get("requirements", [])
    todo += manifest.get("dependencies", [])
pathlib.Path(sys.argv[1]).write_text("\n".join(sorted(set(requirements))) + "\n")
print("integrations:", " ".join(sorted(seen)))
PY
echo $EXTRA_REQUIREMENTS | tr ' ' '\n' >> "$work/requirements.txt"
cat "$work/requirements.txt"
"${install[@]}" --requirement "$work/requirements.txt"
"$VENV/bin/hass" --version
echo "$CHECKSUM" > "$STAMP"
echo "Home Assistant $VERSION installed in $VENV"

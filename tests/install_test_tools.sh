#!/usr/bin/env bash
# The two side virtualenvs some tests run in, made once and reused (both idempotent):
# - Home Assistant core 2024.3.3, the real MQTT discovery client of tests/test_home_assistant.py;
# - the export tools (torch, transformers, optimum) for tests/test_export.py, kept out of the runtime
#   virtualenv, which never holds torch. Rebuilt only when pyproject.toml or requirements/export.txt (the
#   lock) changes (the stamp holds their hash); torch is installed first and pinned, so the CPU build is
#   used, never CUDA; the rest comes at the locked versions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/servers/install_home_assistant.sh
stamp=".venv-export/.photosorter-stamp"
want="$(cat pyproject.toml requirements/export.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv .venv-export
    .venv-export/bin/pip install torch==2.13.0
    .venv-export/bin/pip install -c requirements/export.txt -e '.[export]'
    echo "$want" > "$stamp"
fi

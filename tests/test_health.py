"""``photosorter health``: healthy while the daemon's loop runs, unhealthy as soon as it stopped."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.daemons import daemon_env, running_daemon


def test_health_is_unhealthy_after_a_clean_stop(tmp_path: Path, tiny_model: Path) -> None:
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"library": str(tmp_path / "library"), "data": str(tmp_path / "data"),
                                   "inbox": str(tmp_path / "inbox"), "model": str(tiny_model)}))
    (tmp_path / "inbox").mkdir()
    env = daemon_env(tmp_path)
    health = [sys.executable, "-m", "photosorter", "health", "--data", str(tmp_path / "data")]
    with running_daemon(options, tmp_path) as daemon:
        deadline = time.monotonic() + 60
        while not (tmp_path / "data" / "heartbeat").exists() and time.monotonic() < deadline:
            assert daemon.poll() is None, daemon.communicate()[0]
            time.sleep(0.1)
        alive = subprocess.run(health, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert alive.returncode == 0 and alive.stdout.startswith("healthy"), alive.stdout
    stopped = subprocess.run(health, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert stopped.returncode == 1 and "not running" in stopped.stdout, stopped.stdout

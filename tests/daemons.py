"""``photosorter run`` in a child process, as the add-on starts it, for tests that look at it from outside."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def daemon_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "TZ": "UTC"}


@contextlib.contextmanager
def running_daemon(options: Path, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """The daemon with ``options`` (an options.json); stopped with SIGTERM at the end, which must exit 0."""
    daemon = subprocess.Popen([sys.executable, "-m", "photosorter", "run", "--options", str(options)],
                              env=daemon_env(cwd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        yield daemon
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)
    assert daemon.returncode == 0, output

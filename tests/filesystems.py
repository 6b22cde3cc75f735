"""Fixtures for the files tests: another device (cross-device moves), small and read-only mounts (disk full,
read-only inbox), the fake iCloud server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def other_filesystem() -> Iterator[Path]:
    """A folder on a different file system than the temp dir (/dev/shm is tmpfs on any Linux machine)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tempfile.gettempdir()).st_dev:
        pytest.fail("this test needs /dev/shm on its own file system (tmpfs), as on any Linux machine")
    folder = Path(tempfile.mkdtemp(dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mounted(target: Path, *options: str) -> Iterator[Path]:
    """Mount a small tmpfs (or a read-only bind) at ``target`` for the block; needs root (CI runs as root)."""
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount {' '.join(options)} at {target} ({done.stderr.strip()}): this test needs root "
                    "with CAP_SYS_ADMIN, as CI has")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def small_tmpfs(target: Path, size_kb: int) -> contextlib.AbstractContextManager[Path]:
    return mounted(target, "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs")


def read_only_bind(target: Path) -> contextlib.AbstractContextManager[Path]:
    """``target`` made read-only in place (a bind mount of itself, remounted read-only)."""
    @contextlib.contextmanager
    def bind() -> Iterator[Path]:
        with mounted(target, "--bind", str(target)):
            done = subprocess.run(["mount", "-o", "remount,ro,bind", str(target)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"cannot make {target} read-only ({done.stderr.strip()}): needs root")
            yield target
    return bind()


@pytest.fixture
def fake_icloud(tmp_path: Path) -> Iterator[object]:
    """The fake iCloud server (no 2FA) in its own folder; needs the shared recordings."""
    from tests.conftest import shared_path
    from tests.servers.fake_icloud import FakeICloud

    shared_path("icloud-recorded", "listing_photos.yml")
    (tmp_path / "fake-icloud").mkdir()
    server = FakeICloud(tmp_path / "fake-icloud", two_factor="none").start()
    yield server
    server.stop()

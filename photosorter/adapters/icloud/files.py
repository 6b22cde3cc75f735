"""Downloading an asset's files: streamed to a hidden temporary file on the file system they will live
on, size-checked, fsynced, then linked into place under a free name (never overwriting)."""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import logging
import os
import secrets
from pathlib import Path

import requests
from pyicloud.exceptions import PyiCloudAPIResponseException

from photosorter.adapters.filesystem import fsync_dir, remove_stale
from photosorter.core.naming import numbered_name
from photosorter.errors import SourceUnavailableError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = (10.0, 120.0)
PARTIAL_PREFIX = ".photosorter-icloud-"


class AssetDownloadError(SourceUnavailableError):
    """This asset's file did not arrive (HTTP 403/404/410, cut off, wrong size) while iCloud itself
    answers: the asset goes on the retry list and the sync goes on with the others."""


def download(session: requests.Session, url: str, folder: Path, name: str, size: int | None) -> tuple[Path, str]:
    """Stream ``url`` to a hidden temporary file in ``folder`` (the file system it will live on), check
    its size and fsync it. Returns (temporary file, sha256); the caller links it into place."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.part"
    digest = hashlib.sha256()
    written = 0
    try:
        try:
            response = session.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT_S)
        except PyiCloudAPIResponseException as exc:  # pyicloud's session raises for an HTTP error itself
            if isinstance(exc.code, int) and 400 <= exc.code < 500 and exc.code != 429:
                raise AssetDownloadError(f"download of {name} failed: HTTP {exc.code}") from exc
            raise
        with response:
            if response.status_code == 429 or response.status_code >= 500:
                response.raise_for_status()  # iCloud is busy or down: the whole sync backs off
            if response.status_code >= 400:
                raise AssetDownloadError(f"download of {name} failed: HTTP {response.status_code}")
            with open(partial, "wb") as handle:
                for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                    handle.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        if size is not None and written != size:
            raise AssetDownloadError(f"download of {name} was cut off ({written} of {size} bytes); "
                                     "it is fetched again on the next sync")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return partial, digest.hexdigest()


def _orphaned(name: str) -> bool:
    """A partial download whose process is gone (its pid is in the name), or is this one: a sweep runs before
    this process downloads anything into the folder (one writer per data folder holds the lock)."""
    pid = name[len(PARTIAL_PREFIX):].split("-", 1)[0]
    if not name.startswith(PARTIAL_PREFIX) or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def sweep_partials(folder: Path, older_than: float) -> None:
    """Remove what a download killed midway (power cut, SIGKILL) left: hidden, never a photo yet."""
    gone = remove_stale(folder, _orphaned, float("inf"))
    for name in gone + remove_stale(folder, lambda n: n.startswith(PARTIAL_PREFIX), older_than):
        log.info("removed %s, left by a download that was cut off", name)


def link_into_place(temp: Path, name: str, mtime: float, *, numbered: bool = True) -> Path:
    """Give a downloaded file its name beside it, never overwriting: the first free numbered variant
    (``IMG_1-2.jpg``), or, with ``numbered`` off, the file already there. ``mtime`` becomes its time.

    A file of that name holding the same bytes is this download already: a run killed after putting it in
    place but before remembering the asset fetches it again, and must not leave a second copy."""
    os.utime(temp, (mtime, mtime))
    number = 1
    while True:
        target = temp.parent / numbered_name(name, number)
        try:
            os.link(temp, target)
            break
        except FileExistsError:
            if not numbered or filecmp.cmp(temp, target, shallow=False):
                return target
            number += 1
    fsync_dir(temp.parent)
    return target

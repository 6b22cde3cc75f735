"""Downloading an asset's files: each streamed to a hidden temporary file on the file system it will live
on, size-checked, fsynced, then all linked into place under free names (never overwriting)."""

from __future__ import annotations

import contextlib
import errno
import filecmp
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import requests
from pyicloud.exceptions import PyiCloudAPIResponseException

from photosorter.adapters.filesystem import fsync_dir, remove_stale
from photosorter.core.naming import numbered_name
from photosorter.core.sync import SCREENSHOT_SUFFIX, companion_name, edited_name
from photosorter.errors import SourceError, SourceUnavailableError

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
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SourceError(f"no room for {name} in {folder}: the disk is full; free space, then sync again "
                              "(what arrived is kept, the rest comes next time)") from exc
        raise
    return partial, digest.hexdigest()


def fetch_files(session: requests.Session, photo: Any, wanted: list[tuple[str, str]], name: str,
                folders: dict[str, Path | None], now: float, resources: dict[str, Any],
                screenshot: bool = False) -> tuple[str | None, str | None, int]:
    """Download an asset's files (``wanted``: (version, role) from ``core.sync.plan_downloads``, among
    ``resources``) and only when every one has arrived whole put them in place,
    the still first: an asset is delivered complete or not at all. A ``screenshot`` (iCloud's mark) is
    noted beside the previews before the still appears. Returns (the still's or video's file name, its
    sha256, how many photos and videos)."""
    parts: list[tuple[str, Path, str, Any]] = []  # (role, temporary file, sha256, iCloud's resource)
    local = sha256 = None
    try:
        for key, role in wanted:
            resource = resources[key]
            folder = folders[role]
            if not resource.url:
                log.warning("iCloud: %s has no download address for its %s; skipped", name, key)
            elif folder is not None and (role != "live" or parts):  # a movie without its still: no
                temp, digest = download(session, resource.url, folder, name, resource.size)
                parts.append((role, temp, digest, resource))
        taken = photo.asset_date.timestamp()
        for role, _, digest, _ in parts:
            if screenshot and role in ("photo", "edit") and folders["preview"] is not None:
                save_mark(folders["preview"], f"{digest}{SCREENSHOT_SUFFIX}")
        for role, temp, digest, resource in parts:
            if role in ("photo", "video"):
                local, sha256 = link_into_place(temp, name, taken).name, digest
            elif role == "live" and local is not None:
                link_into_place(temp, companion_name(local, resource.filename, resource.type), taken)
            elif role == "edit" and local is not None:
                link_into_place(temp, edited_name(local, resource.type), taken)
            elif role == "preview" and sha256 is not None:
                link_into_place(temp, f"{sha256}.jpg", now, numbered=False)
    finally:
        for _, temp, _, _ in parts:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    return local, sha256, sum(1 for role, *_ in parts if role in ("photo", "video", "edit"))


def save_mark(folder: Path, name: str) -> None:
    """An empty file that says something of a photo (``adapters/previews.py`` reads it), durably."""
    folder.mkdir(parents=True, exist_ok=True)
    os.close(os.open(folder / name, os.O_CREAT | os.O_WRONLY, 0o600))
    os.utime(folder / name)  # pruned by age like the previews: from this download on
    fsync_dir(folder)


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

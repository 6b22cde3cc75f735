"""Find the model a setting names: a folder on disk, or a built-in model downloaded into the cache.

Downloads stream into ``<file>.part`` while hashing, are checked against the catalogue's size and
sha256, and only then renamed into place; a bad download is retried once and never loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from photosorter.errors import ModelError
from photosorter.ml.catalogue import CATALOGUE
from photosorter.ml.modelspec import MANIFEST, ModelSpec, read_model_folder, sha256_file, verify_files

log = logging.getLogger(__name__)

ATTEMPTS = 2
CHUNK = 1 << 20
TIMEOUT_S = 60


def _url(entry: dict[str, Any], file: str, base_url: str) -> str:
    if base_url:
        return f"{base_url.rstrip('/')}/{entry['name']}/{file}"
    url = entry.get("urls", {}).get(file)
    if not url:
        raise ModelError(f"built-in model {entry['name']} has no public download address for {file}: "
                         "set model_base_url to a mirror, or point model at a folder holding it")
    return str(url)


def _download(url: str, target: Path, size: int, sha256: str) -> None:
    partial = target.with_name(target.name + ".part")
    digest, received, last_log = hashlib.sha256(), 0, time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, partial.open("wb") as out:
            while block := response.read(CHUNK):
                out.write(block)
                digest.update(block)
                received += len(block)
                if time.monotonic() - last_log > 10:
                    log.info("downloading %s: %d of %d MB", target.name, received >> 20, size >> 20)
                    last_log = time.monotonic()
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        raise ModelError(f"download of {target.name} failed: {exc}", retryable=True) from exc
    if received != size or digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        what = f"{received} bytes instead of {size}" if received != size else "sha256 mismatch"
        raise ModelError(f"download of {target.name} is damaged ({what})", retryable=True)
    partial.replace(target)


def fetch_model(name: str, cache_dir: Path, base_url: str = "",
                catalogue: dict[str, dict[str, Any]] = CATALOGUE) -> Path:
    """Make sure the built-in model ``name`` is complete in ``cache_dir/name``; return that folder."""
    entry = catalogue[name]
    folder = cache_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, meta in entry["files"].items():
        target = folder / file
        if target.is_file() and target.stat().st_size == meta["size"] and sha256_file(target) == meta["sha256"]:
            continue
        url = _url(entry, file, base_url)
        for attempt in range(1, ATTEMPTS + 1):
            log.info("downloading model file %s (%d MB, attempt %d)", file, meta["size"] >> 20, attempt)
            try:
                _download(url, target, meta["size"], meta["sha256"])
                break
            except ModelError as exc:
                if attempt == ATTEMPTS:
                    raise
                log.warning("%s; retrying", exc.message)
    manifest = {k: v for k, v in entry.items() if k != "urls"}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.replace(folder / MANIFEST)
    return folder


def resolve_model(setting: str, cache_dir: Path, base_url: str = "",
                  catalogue: dict[str, dict[str, Any]] = CATALOGUE) -> ModelSpec:
    """The model a setting names, verified: a folder, or a built-in name (downloaded when missing)."""
    path = Path(setting).expanduser()
    if path.is_dir():
        spec = read_model_folder(path, catalogue)
        verify_files(spec)
        return spec
    if setting not in catalogue:
        raise ModelError(f"model {setting!r} is neither a folder nor a built-in model "
                         f"({', '.join(sorted(catalogue))})")
    # fetch_model checks every cached file's size and sha256 and downloads again what does not match.
    return read_model_folder(fetch_model(setting, cache_dir, base_url, catalogue), catalogue)

"""Find the model a setting names: a folder on disk, or a built-in model downloaded into the cache.

Downloads stream into ``<file>.part`` while hashing, are checked against the catalogue's size and
sha256, and only then renamed into place; a bad download is retried once and never loaded. Models
the package embeds (``photosorter/data/models``) are used from there and never downloaded.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

from photosorter.errors import ModelError
from photosorter.ml.catalogue import CATALOGUE
from photosorter.ml.modelspec import MANIFEST, ModelSpec, read_model_folder, sha256_file, verify_files
from photosorter.progress import Progress

log = logging.getLogger(__name__)

ATTEMPTS = 2
CHUNK = 1 << 20
TIMEOUT_S = 60


def embedded_folder(entry: dict[str, Any]) -> Path | None:
    """The package's own copy of a catalogue entry's files (``photosorter/data/models/<name>``), if complete."""
    if not entry.get("embedded"):
        return None
    folder = Path(str(resources.files("photosorter.data"))) / "models" / entry["name"]
    return folder if all((folder / name).is_file() for name in entry["files"]) else None


def _url(entry: dict[str, Any], file: str, base_url: str) -> str:
    if base_url:
        return f"{base_url.rstrip('/')}/{entry['name']}/{file}"
    url = entry.get("urls", {}).get(file)
    if not url:
        raise ModelError(f"built-in model {entry['name']} has no public download address for {file}: "
                         "set model_base_url to a mirror, or point model at a folder holding it")
    return str(url)


def _download(url: str, target: Path, size: int | None, sha256: str | None) -> str:
    """Stream ``url`` into ``target`` via ``<target>.part``; check size and sha256; return the sha256.

    When the catalogue does not know a file's size, the server's Content-Length must match instead.
    """
    partial = target.with_name(target.name + ".part")
    digest, received = hashlib.sha256(), 0
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        # no connection at all (offline, blocked, no such file): trying again at once would not help
        raise ModelError(f"download of {target.name} from {url} failed: {reason}", retryable=False) from exc
    try:
        with response, partial.open("wb") as out:
            announced = response.headers.get("Content-Length")
            expected = size if size is not None else (int(announced) if announced else None)
            # A bar on a terminal, a log line every 10 s otherwise; counted in MB.
            progress = Progress(-(-expected // CHUNK) if expected else 0, f"MB of {target.name}")
            while block := response.read(CHUNK):
                out.write(block)
                digest.update(block)
                received += len(block)
                if expected:
                    progress.advance(-(-received // CHUNK) - progress.done)
            progress.close()
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ModelError(f"download of {target.name} from {url} failed: {reason}", retryable=True) from exc
    problem = ""
    if expected is not None and received != expected:
        problem = f"{received} bytes instead of {expected}"
    elif sha256 and digest.hexdigest() != sha256:
        problem = "sha256 mismatch"
    if problem:
        partial.unlink(missing_ok=True)
        raise ModelError(f"download of {target.name} from {url} is damaged ({problem})", retryable=True)
    partial.replace(target)
    return digest.hexdigest()


def _recorded(folder: Path) -> dict[str, Any]:
    """File entries of a manifest written by an earlier download (checksums recorded then)."""
    try:
        return dict(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def fetch_model(name: str, cache_dir: Path, base_url: str = "",
                catalogue: dict[str, dict[str, Any]] = CATALOGUE) -> Path:
    """Make sure the built-in model ``name`` is complete in ``cache_dir/name``; return that folder.

    Files whose sha256 the catalogue pins are checked against it. For files it cannot pin (see
    catalogue.py), the first download's size and sha256 are recorded in the folder's manifest and
    every later start checks the cache against those.
    """
    entry = catalogue[name]
    folder = cache_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    recorded = _recorded(folder)
    files: dict[str, dict[str, Any]] = {}
    for file, meta in entry["files"].items():
        known = meta if meta.get("sha256") else recorded.get(file, {})
        target = folder / file
        if (known.get("sha256") and target.is_file() and target.stat().st_size == known.get("size")
                and sha256_file(target) == known["sha256"]):
            files[file] = {"sha256": known["sha256"], "size": known["size"]}
            continue
        url = _url(entry, file, base_url)
        for attempt in range(1, ATTEMPTS + 1):
            log.info("downloading %s from %s%s", file, url, f" (attempt {attempt})" if attempt > 1 else "")
            try:
                digest = _download(url, target, meta.get("size"), meta.get("sha256"))
                break
            except ModelError as exc:
                if attempt == ATTEMPTS or not exc.retryable:
                    raise
                log.warning("%s; retrying", exc.message)
        if not meta.get("sha256"):
            log.warning("model file %s has no published checksum; recorded sha256 %s on first download",
                        file, digest[:16])
        files[file] = {"sha256": digest, "size": target.stat().st_size}
    manifest = {k: v for k, v in entry.items() if k != "urls"} | {"files": files}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    tmp.replace(folder / MANIFEST)
    return folder


def resolve_model(setting: str, cache_dir: Path, base_url: str = "",
                  catalogue: dict[str, dict[str, Any]] = CATALOGUE) -> ModelSpec:
    """The model a setting names, verified: a folder, or a built-in name (embedded in the package, or
    downloaded when missing)."""
    path = Path(setting).expanduser()
    if setting in catalogue and not path.is_dir() and (embedded := embedded_folder(catalogue[setting])):
        path = embedded
    if path.is_dir():
        spec = read_model_folder(path, catalogue)
        verify_files(spec)
        return spec
    if setting not in catalogue:
        raise ModelError(f"model {setting!r} is neither a folder nor a built-in model "
                         f"({', '.join(sorted(catalogue))})")
    # fetch_model checks every cached file's size and sha256 and downloads again what does not match.
    return read_model_folder(fetch_model(setting, cache_dir, base_url, catalogue), catalogue)

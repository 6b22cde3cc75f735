"""iCloud Photos as a ``PhotoSource``: the only module that imports pyicloud.

One ``PyiCloudService`` lives as long as the process (cookies and session in the data folder,
``refresh_interval=None``), built without a network call. Its state is probed with
``get_auth_status()``. A password login (which may make Apple send a 2FA code) happens only on the
first check after start, when an earlier login succeeded and the session later expired, or when a person
asks (``login()``, or a code submitted while none is pending): never from a retry loop, and never again
after a rejected password. Errors are translated at this boundary.

Assets are tracked by iCloud asset id in the state database (table ``icloud_assets``), never by file
name or place, so moving photos into category folders never causes a download again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
from pyicloud import PyiCloudService
from pyicloud.common.cloudkit.client import CloudKitApiError, CloudKitAuthError, CloudKitRateLimited
from pyicloud.exceptions import (
    PyiCloudAPIResponseException,
    PyiCloudConnectionException,
    PyiCloudException,
    PyiCloudFailedLoginException,
    PyiCloudServiceNotActivatedException,
)
from pyicloud.services.photos_cloudkit import DirectionEnum

from photosorter.adapters.filesystem import fsync_dir, remove_stale
from photosorter.adapters.sqlite import connect
from photosorter.core import sync as plan
from photosorter.core.naming import numbered_name
from photosorter.errors import AuthRequiredError, SourceUnavailableError
from photosorter.records import AuthState, SyncProgress

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = (10.0, 120.0)
PARTIAL_PREFIX = ".photosorter-icloud-"
STALE_PARTIAL_S = 3600.0  # a partial download this old belongs to no running download

SCHEMA = """
CREATE TABLE IF NOT EXISTS icloud_assets (
    asset_id TEXT PRIMARY KEY,
    checksum TEXT,
    filename TEXT NOT NULL,
    local_name TEXT,
    sha256 TEXT,
    size INTEGER,
    item_type TEXT,
    added REAL,
    fetched REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS icloud_sync (key TEXT PRIMARY KEY, value TEXT);
"""


class IcloudAssets:
    """Which iCloud assets photosorter already has (state database, table ``icloud_assets``)."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path, SCHEMA, "the iCloud state")

    def close(self) -> None:
        self._db.close()

    def known(self, asset_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM icloud_assets WHERE asset_id=?", (asset_id,)).fetchone() is not None

    def count(self, library: str = "") -> int:
        """Assets known from one library: the personal one (ids without a ``/``) or ``<zone>/``."""
        if not library:
            row = self._db.execute("SELECT COUNT(*) FROM icloud_assets WHERE instr(asset_id, '/') = 0").fetchone()
        else:
            row = self._db.execute("SELECT COUNT(*) FROM icloud_assets WHERE substr(asset_id, 1, ?) = ?",
                                   (len(library), library)).fetchone()
        return int(row[0])

    def remember(self, asset_id: str, *, checksum: str | None, filename: str, local_name: str | None,
                 sha256: str | None, size: int | None, item_type: str, added: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO icloud_assets (asset_id, checksum, filename, local_name, sha256, "
                         "size, item_type, added, fetched) VALUES (?,?,?,?,?,?,?,?,?)",
                         (asset_id, checksum, filename, local_name, sha256, size, item_type, added, time.time()))

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM icloud_sync WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO icloud_sync (key, value) VALUES (?,?)", (key, value))


class _Service(PyiCloudService):  # type: ignore[misc]  # pyicloud is untyped for mypy here
    """pyicloud's service; ``server`` moves every Apple endpoint under one base URL (tests, mirrors)."""

    def __init__(self, *args: Any, server: str | None = None, **kwargs: Any) -> None:
        self._server = server.rstrip("/") if server else None
        super().__init__(*args, **kwargs)

    def _setup_endpoints(self) -> None:
        super()._setup_endpoints()
        if self._server:
            self._idmsa_endpoint = f"{self._server}/idmsa"
            self._auth_endpoint = f"{self._idmsa_endpoint}/appleauth/auth"
            self._home_endpoint = f"{self._server}/www"
            self._setup_endpoint = f"{self._server}/setup/ws/1"


class IcloudSource:
    """New photos from an iCloud Photo Library into a local inbox (a ``PhotoSource``)."""

    def __init__(self, apple_id: str, password: str, *, data_dir: Path, state_path: Path,
                 china_mainland: bool = False, media_folder: Path | None = None, videos: bool = True,
                 previews: Path | None = None, shared_library: bool = False, server: str | None = None,
                 clock: Callable[[], float] = time.time, chunk: int = plan.FIRST_SYNC_CHUNK) -> None:
        self.apple_id = apple_id
        self.media_folder = media_folder  # videos go here; live-photo movies stay beside their still
        self.videos = videos
        self.previews = previews  # where iCloud's small renditions go for the sorter (adapters.previews)
        self.chunk = chunk
        self.shared_library = shared_library  # also the iCloud Shared Library (zone SharedSync-…)
        self.more = False  # a first sync stopped after a chunk: call again (after sorting what came)
        self._clock = clock
        self._lock = threading.RLock()
        cookie_dir = data_dir / "icloud"
        cookie_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._api = _Service(apple_id, password, cookie_directory=str(cookie_dir), china_mainland=china_mainland,
                             refresh_interval=None, authenticate=False, server=server)
        self.assets = IcloudAssets(state_path)
        self._libraries: list[tuple[str, Any]] | None = None  # (state key prefix, pyicloud library)
        self._challenge: AuthState | None = None  # a code was asked for and not yet given
        self._blocked: AuthState | None = None  # password rejected / security key only: wait for a person
        self._auto_login = True  # one automatic login per start or per expired session
        self._code_tries: list[float] = []  # when codes were checked with Apple (plan.code_wait_s)
        self._state = AuthState(ok=True)
        self._failures = 0
        self._not_before = 0.0
        self._reported = ""

    def close(self) -> None:
        self.assets.close()

    # auth -----------------------------------------------------------------------------------------
    def auth_state(self) -> AuthState:
        """Whether syncing can run; may log in once (see the module docstring), never raises."""
        with self._lock:
            if self._challenge is not None or self._blocked is not None:
                return self._challenge or self._blocked  # type: ignore[return-value]
            try:
                if self._session_ok():
                    self._state = AuthState(ok=True)
                elif self._auto_login:
                    self._auto_login = False
                    self._state = self._login()
                else:
                    self._state = AuthState(ok=False, message="iCloud login needed: run photosorter icloud login")
            except SourceUnavailableError as exc:
                log.debug("iCloud status unknown: %s", exc.message)
            return self._state

    def login(self) -> AuthState:
        """A person asked to log in (``photosorter icloud login``): at most one code is sent."""
        with self._lock:
            self._blocked = None
            self._challenge = None
            if self._session_ok():
                self._state = AuthState(ok=True, message="already logged in")
            else:
                self._state = self._login()
            return self._state

    def submit_code(self, code: str) -> AuthState:
        """A 2FA code typed by a person (CLI, MQTT text entity, code file). A wrong code asks again.

        Apple hears of a code only while one is pending, at most ``CODE_TRIES`` times an hour; a code
        never starts a login (that could send another code, or retry a rejected password)."""
        with self._lock:
            digits = plan.normalise_code(code)
            if self._blocked is not None:
                return self._blocked
            if self._challenge is None:
                if self._state.ok:
                    return AuthState(ok=True, message="No iCloud code was needed; nothing was sent to Apple.")
                return AuthState(ok=False, message=("No iCloud code is pending, so nothing was sent to Apple. "
                                                    "Run: photosorter icloud login"))
            method = self._challenge.method
            if digits is None:
                return AuthState(ok=False, method=method, message="An iCloud code is 6 digits: enter it again.")
            wait_s = plan.code_wait_s(self._code_tries, self._clock())
            if wait_s > 0:
                log.warning("iCloud: a 2FA code came in too soon after %d tries; not checked", plan.CODE_TRIES)
                return AuthState(ok=False, method=method, message=(
                    f"{plan.CODE_TRIES} codes were tried within the hour, so this one was not checked (Apple "
                    f"locks an account after repeated wrong codes). Try again in {wait_s / 60:.0f} min."))
            self._code_tries.append(self._clock())
            try:
                accepted = self._api.validate_2fa_code(digits)
            except PyiCloudConnectionException as exc:
                raise SourceUnavailableError("cannot reach iCloud to check the code; enter it again") from exc
            except PyiCloudException as exc:
                log.warning("iCloud refused the code: %s", type(exc).__name__)
                accepted = False
            if not accepted or not self._api.is_trusted_session:
                log.info("iCloud: wrong 2FA code")
                self._state = AuthState(ok=False, method=method,
                                        message="Wrong code: enter the code shown on your device again.")
                return self._state
            self._challenge = None
            self._code_tries.clear()
            self._auto_login = True
            self._state = AuthState(ok=True, message="iCloud login complete")
            log.info("iCloud login complete; the session is trusted")
            return self._state

    def _session_ok(self) -> bool:
        try:
            status = self._api.get_auth_status()
        except PyiCloudConnectionException as exc:
            raise SourceUnavailableError(f"cannot reach iCloud: {type(exc).__name__}") from exc
        return bool(status.get("authenticated") and status.get("trusted_session"))

    def _login(self) -> AuthState:
        log.info("iCloud: logging in as %s", self.apple_id)
        try:
            self._api.authenticate(force_refresh=True)
        except PyiCloudFailedLoginException as exc:
            self._blocked = AuthState(ok=False, message=(
                "Apple rejected the Apple ID or password. Fix apple_password and restart; photosorter does not "
                "retry a rejected password, so the account is not locked."))
            log.error("iCloud login failed: %s", type(exc).__name__)
            return self._blocked
        except PyiCloudConnectionException as exc:
            self._auto_login = True  # nothing reached Apple, so nothing was sent: try again next time
            raise SourceUnavailableError("cannot reach iCloud to log in") from exc
        except PyiCloudException as exc:
            self._auto_login = True
            raise SourceUnavailableError(f"iCloud login failed for now: {type(exc).__name__}") from exc
        if self._api.requires_2fa:
            if self._api.two_factor_delivery_method == "security_key":
                self._blocked = AuthState(ok=False, message=plan.SECURITY_KEY_MESSAGE, method="security key")
                log.error("iCloud: %s", plan.SECURITY_KEY_MESSAGE)
                return self._blocked
            message, method = plan.describe_code_request(self._api.two_factor_delivery_method,
                                                         self._api.two_factor_delivery_notice)
            self._challenge = AuthState(ok=False, message=message, method=method)
            log.warning("iCloud: %s", message)
            return self._challenge
        if self._api.requires_2sa:
            self._blocked = AuthState(ok=False, message=(
                "This Apple ID uses the old two-step verification, which photosorter does not support; "
                "turn on two-factor authentication."))
            return self._blocked
        self._auto_login = True
        log.info("iCloud: logged in with the trusted session")
        return AuthState(ok=True)

    # sync -----------------------------------------------------------------------------------------
    def fetch_new(self, inbox: Path, on_progress: Callable[[SyncProgress], None] | None = None,
                  stop: Callable[[], bool] | None = None) -> int:
        """Download photos added since the last sync into ``inbox``; returns how many files arrived.
        ``stop`` is asked between assets (SIGTERM): what is left comes on the next sync."""
        with self._lock:
            if self._challenge is not None or self._blocked is not None:
                state = self._challenge or self._blocked
                raise AuthRequiredError(state.message if state else "iCloud login needed")
            now = self._clock()
            if now < self._not_before:
                wait_s = self._not_before - now
                raise SourceUnavailableError(f"iCloud asked photosorter to wait; next try in {wait_s:.0f} s")
            try:
                count = self._fetch(inbox, on_progress, stop or (lambda: False))
            except (PyiCloudServiceNotActivatedException, CloudKitRateLimited, PyiCloudAPIResponseException,
                    CloudKitApiError, CloudKitAuthError, PyiCloudException, requests.RequestException) as exc:
                raise self._translate(exc) from exc
            self._failures = 0
            if self._reported:
                log.info("iCloud works again")
                self._reported = ""
            return count

    def _translate(self, exc: Exception) -> Exception:
        self._failures += 1
        retry_after: float | None = None
        code: object = getattr(exc, "code", None)
        if isinstance(exc, CloudKitRateLimited):
            retry_after, why = exc.retry_after, "iCloud is rate limiting"
        elif isinstance(exc, PyiCloudServiceNotActivatedException):
            why = "iCloud Photo Library is not ready (still indexing, or not set up); trying again later"
        elif isinstance(exc, (CloudKitAuthError,)) or code in (401, 421, 450):
            self._libraries = None
            self._state = AuthState(ok=False, message="iCloud session expired; logging in again on the next check")
            return AuthRequiredError(self._state.message)
        elif code == "ACCESS_DENIED":
            why = ("iCloud denied access (ACCESS_DENIED): throttling, Advanced Data Protection, or 'Access iCloud "
                   "Data on the Web' off")
        elif isinstance(code, int) and (code == 429 or code >= 500):
            response = getattr(exc, "response", None)
            header = response.headers.get("Retry-After") if response is not None else None
            with contextlib.suppress(TypeError, ValueError):
                retry_after = float(header) if header else None
            why = f"iCloud answered HTTP {code}"
        elif isinstance(exc, (PyiCloudConnectionException, requests.ConnectionError, requests.Timeout)):
            why = "cannot reach iCloud"
        else:
            why = f"iCloud error: {type(exc).__name__}"
        wait = plan.backoff_s(self._failures, retry_after)
        self._not_before = self._clock() + wait
        if why != self._reported:
            log.warning("%s; waiting %.0f s", why, wait)
            self._reported = why
        return SourceUnavailableError(why)

    def _chosen_libraries(self) -> list[tuple[str, Any]]:
        """The personal library, and the Shared Library when chosen. Its assets and sync state are kept
        under the prefix ``<zone>/`` (iCloud's asset ids are only unique within a zone)."""
        if self._libraries is None:
            found = self._api.photos.libraries
            chosen: list[tuple[str, Any]] = [("", found["root"])]
            if self.shared_library:
                shared = [(f"{key.removeprefix('shared:')}/", library) for key, library in found.items()
                          if key.startswith("shared:SharedSync-")]
                if not shared:
                    log.warning("iCloud: this account has no Shared Library; syncing the personal library only")
                chosen += shared
            self._libraries = chosen
        return self._libraries

    def more_pending(self) -> bool:
        """Whether the last ``fetch_new`` stopped after a chunk of a first sync, with more to come."""
        return self.more

    def _fetch(self, inbox: Path, on_progress: Callable[[SyncProgress], None] | None,
               stop: Callable[[], bool]) -> int:
        self.more = False
        for folder in (inbox, self.previews, self.media_folder):
            if folder is not None:
                _sweep_partials(folder, self._clock() - STALE_PARTIAL_S)
        fetched = 0
        for prefix, library in self._chosen_libraries():
            fetched += self._fetch_library(prefix, library, inbox, on_progress, stop)
            if self.more or stop():
                break
        return fetched

    def _fetch_library(self, prefix: str, library: Any, inbox: Path,
                       on_progress: Callable[[SyncProgress], None] | None, stop: Callable[[], bool]) -> int:
        library.current_sync_token = None  # ask the server, not pyicloud's cache
        cursor = str(library.sync_cursor())
        backfill_done = self.assets.get(f"{prefix}backfill_done") == "1"
        if not plan.listing_needed(cursor, self.assets.get(f"{prefix}cursor"), backfill_done):
            log.debug("iCloud: nothing changed in %s", prefix or "the personal library")
            return 0
        walk = plan.plan_walk(known_assets=self.assets.count(prefix), backfill_done=backfill_done,
                              saved_rank=int(self.assets.get(f"{prefix}backfill_rank") or 0))
        album = library.recently_added()
        fetched = 0
        started = time.monotonic()
        if walk.head:
            known_run = 0
            for _, photos in _pages(album, 0):
                for photo in photos:
                    if stop():
                        return fetched  # the cursor stays unsaved: the next sync walks again
                    if self.assets.known(prefix + photo.id):
                        known_run += 1
                        if plan.stop_head_walk(known_run):
                            break
                        continue
                    known_run = 0
                    fetched += self._fetch_asset(prefix, photo, inbox)
                    if fetched >= self.chunk:  # back from a long time offline: sort these first
                        self.more = True
                        return fetched  # the cursor stays unsaved; the next walk skips what came
                else:
                    continue
                break
        if walk.backfill_from is not None:
            total = len(album)  # one count query: the first sync's progress has a total and an ETA
            log.info("iCloud: listing %s from position %d of %d", prefix or "the personal library",
                     walk.backfill_from, total)
            for next_rank, photos in _pages(album, walk.backfill_from):
                for photo in photos:
                    if stop():
                        return fetched  # resumes from the last saved page
                    if not self.assets.known(prefix + photo.id):
                        fetched += self._fetch_asset(prefix, photo, inbox)
                self.assets.put(f"{prefix}backfill_rank", str(next_rank))
                progress = plan.sync_progress(next_rank, total, fetched, first_done=walk.backfill_from,
                                              elapsed_s=time.monotonic() - started)
                log.info("iCloud first sync: %s", plan.describe_progress(progress))
                if on_progress is not None:
                    on_progress(progress)
                if fetched >= self.chunk:
                    self.more = True  # the sorter takes these first; the inbox never holds the whole library
                    log.info("iCloud first sync: %d files fetched; sorting them before the next chunk", fetched)
                    return fetched
            self.assets.put(f"{prefix}backfill_done", "1")
        self.assets.put(f"{prefix}cursor", cursor)
        return fetched

    def _fetch_asset(self, prefix: str, photo: Any, inbox: Path) -> int:
        """Download an asset's files (still, live movie, preview; or a video) and only when every one has
        arrived whole put them in place, the still first: an asset is delivered complete or not at all."""
        original = photo.resources.get("original")
        wanted = plan.plan_downloads(photo.item_type, photo.is_live_photo, tuple(photo.versions),
                                     videos=self.videos, previews=self.previews is not None)
        name = plan.local_name(photo.filename, photo.id)
        folders = {"photo": inbox, "live": inbox, "preview": self.previews, "video": self.media_folder or inbox}
        parts: list[tuple[str, Path, str, str]] = []  # (role, temporary file, sha256, iCloud's file name)
        local = sha256 = None
        try:
            for key, role in wanted:
                resource = photo.resources[key]
                folder = folders[role]
                if not resource.url:
                    log.warning("iCloud: %s has no download address for its %s; skipped", name, key)
                elif folder is not None and (role != "live" or parts):  # a movie without its still: no
                    temp, digest = _download(self._api.session, resource.url, folder, name, resource.size)
                    parts.append((role, temp, digest, resource.filename))
            taken = photo.asset_date.timestamp()
            for role, temp, digest, filename in parts:
                if role in ("photo", "video"):
                    local, sha256 = _link_into_place(temp, name, taken).name, digest
                elif role == "live" and local is not None:
                    _link_into_place(temp, plan.companion_name(local, filename), taken)
                elif role == "preview" and sha256 is not None:
                    _link_into_place(temp, f"{sha256}.jpg", self._clock(), numbered=False)
        finally:
            for _, temp, _, _ in parts:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
        self.assets.remember(prefix + photo.id, checksum=original.checksum if original else None,
                             filename=photo.filename, local_name=local, sha256=sha256, size=photo.size,
                             item_type=photo.item_type, added=photo.added_date.timestamp())
        return sum(1 for role, *_ in parts if role in ("photo", "video"))


def _pages(album: Any, start_rank: int) -> Iterator[tuple[int, list[Any]]]:
    """The recently-added index newest-first from ``start_rank``: (rank after the page, photos).

    pyicloud's own pager (``_iter_added_desc_photos``) always starts at the newest photo; this is the same
    trailing-window walk with a start, so a first sync can resume where it stopped.
    """
    page = int(album.page_size)
    rank = start_rank
    seen: set[str] = set()
    while True:
        window = [p for p in album._get_photos_at(rank + page - 1, DirectionEnum.DESCENDING, page)
                  if p.id not in seen]
        seen.update(p.id for p in window)
        if not window:
            return
        rank += len(window)
        yield rank, list(reversed(window))
        if len(window) < page:
            return


def _download(session: requests.Session, url: str, folder: Path, name: str, size: int | None) -> tuple[Path, str]:
    """Stream ``url`` to a hidden temporary file in ``folder`` (the file system it will live on), check
    its size and fsync it. Returns (temporary file, sha256); the caller links it into place."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.part"
    digest = hashlib.sha256()
    written = 0
    try:
        response = session.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT_S)
        with response, open(partial, "wb") as handle:
            for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                handle.write(chunk)
                digest.update(chunk)
                written += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if size is not None and written != size:
            raise SourceUnavailableError(f"download of {name} was cut off ({written} of {size} bytes); "
                                         "it is fetched again on the next sync")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return partial, digest.hexdigest()


def _sweep_partials(folder: Path, older_than: float) -> None:
    """Remove what a download killed midway (power cut, SIGKILL) left: hidden, never a photo yet."""
    for name in remove_stale(folder, lambda n: n.startswith(PARTIAL_PREFIX), older_than):
        log.info("removed %s, left by a download that was cut off", name)


def _link_into_place(temp: Path, name: str, mtime: float, *, numbered: bool = True) -> Path:
    """Give a downloaded file its name beside it, never overwriting: the first free numbered variant
    (``IMG_1-2.jpg``), or, with ``numbered`` off, the file already there. ``mtime`` becomes its time."""
    os.utime(temp, (mtime, mtime))
    number = 1
    while True:
        target = temp.parent / numbered_name(name, number)
        try:
            os.link(temp, target)
            break
        except FileExistsError:
            if not numbered:
                return target
            number += 1
    fsync_dir(temp.parent)
    return target


"""iCloud Photos as a ``PhotoSource``: the only package that imports pyicloud.

Signing in (the session's state, the password login, the 2FA code) lives in ``auth``; this module lists
and downloads. Errors are translated at this boundary.

Assets are tracked by iCloud asset id in the state database (``assets``), never by file name or place,
so moving photos into category folders never causes a download again. A record that cannot be read
(``records``) or an asset whose files do not arrive is skipped and listed as a problem by its id; the
others arrive all the same.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
from pyicloud.common.cloudkit.client import CloudKitApiError, CloudKitAuthError, CloudKitRateLimited
from pyicloud.exceptions import (
    PyiCloudAPIResponseException,
    PyiCloudConnectionException,
    PyiCloudException,
    PyiCloudServiceNotActivatedException,
)

from photosorter.adapters.icloud.assets import DOWNLOAD, RECORD, IcloudAssets
from photosorter.adapters.icloud.auth import IcloudLogin
from photosorter.adapters.icloud.files import PARTIAL_PREFIX, AssetDownloadError, fetch_files, sweep_partials
from photosorter.adapters.icloud.records import (
    can_look_up,
    edit_resources,
    lookup_asset,
    read_page,
    screenshot_mark,
)
from photosorter.adapters.icloud.service import REQUEST_TIMEOUT_S, Service
from photosorter.core import sync as plan
from photosorter.errors import AuthRequiredError, SourceUnavailableError
from photosorter.records import AuthState, SyncProgress

__all__ = ["PARTIAL_PREFIX", "IcloudAssets", "IcloudSource"]

log = logging.getLogger(__name__)

STALE_PARTIAL_S = 3600.0  # a partial download this old belongs to no running download
# what a malformed record makes pyicloud's asset properties raise
_RECORD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, UnicodeError)



class IcloudSource:
    """New photos from an iCloud Photo Library into a local inbox (a ``PhotoSource``)."""

    def __init__(self, apple_id: str, password: str, *, data_dir: Path, state_path: Path,
                 china_mainland: bool = False, media_folder: Path | None = None, videos: bool = True,
                 previews: Path | None = None, shared_library: bool = False, server: str | None = None,
                 clock: Callable[[], float] = time.time, chunk: int = plan.FIRST_SYNC_CHUNK,
                 timeout_s: float = REQUEST_TIMEOUT_S, edited: str = "original") -> None:
        self.media_folder = media_folder  # videos go here; live-photo movies stay beside their still
        self.videos = videos
        self.edited = edited  # an edited photo: its original, its edit or both (core.sync.plan_downloads)
        self.previews = previews  # where iCloud's small renditions go for the sorter (adapters.previews)
        self.chunk = chunk
        self.shared_library = shared_library  # also the iCloud Shared Library (zone SharedSync-…)
        self.more = False  # a first sync stopped after a chunk: call again (after sorting what came)
        self._clock = clock
        self._lock = threading.RLock()
        cookie_dir = data_dir / "icloud"
        cookie_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._api = Service(apple_id, password, cookie_directory=str(cookie_dir), china_mainland=china_mainland,
                             refresh_interval=None, authenticate=False, server=server, timeout_s=timeout_s)
        self.assets = IcloudAssets(state_path)
        self._libraries: list[tuple[str, Any]] | None = None  # (state key prefix, pyicloud library)
        self._auth = IcloudLogin(self._api, self.assets, apple_id=apple_id, clock=clock)
        self._failures = 0
        self._not_before = 0.0
        self._reported = ""
        self._odd_subtype = False  # an assetSubtypeV2 that is not a number was logged

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._api.close_push_bridge()
        self.assets.close()

    # auth (auth.IcloudLogin) ----------------------------------------------------------------------
    def auth_state(self) -> AuthState:
        """Whether syncing can run; may log in once (see ``auth``), never raises."""
        with self._lock:
            return self._auth.state()

    def login(self) -> AuthState:
        """A person asked to log in (``photosorter icloud login``): at most one code is sent."""
        with self._lock:
            return self._auth.login()

    def submit_code(self, code: str) -> AuthState:
        """A 2FA code typed by a person (CLI, MQTT text entity, code file); see ``IcloudLogin.submit_code``."""
        with self._lock:
            return self._auth.submit_code(code)

    # sync -----------------------------------------------------------------------------------------
    def fetch_new(self, inbox: Path, on_progress: Callable[[SyncProgress], None] | None = None,
                  stop: Callable[[], bool] | None = None) -> int:
        """Download photos added since the last sync into ``inbox``; returns how many files arrived.
        ``stop`` is asked between assets (SIGTERM): what is left comes on the next sync."""
        with self._lock:
            waiting = self._auth.waiting()
            if waiting is not None:
                raise AuthRequiredError(waiting.message)
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
            state = self._auth.expired("iCloud session expired; logging in again on the next check")
            return AuthRequiredError(state.message)
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

    def problems(self) -> list[str]:
        """Assets photosorter could not take and a person should know of (MQTT problem, digest)."""
        now = self._clock()
        with self._lock:
            found = self.assets.problems()
        lines = [plan.asset_problem_line(p.kind, p.name, p.detail, p.tries, p.first, now) for p in found]
        return [line for line in lines if line]

    def _fetch(self, inbox: Path, on_progress: Callable[[SyncProgress], None] | None,
               stop: Callable[[], bool]) -> int:
        self.more = False
        for folder in (inbox, self.previews, self.media_folder):
            if folder is not None:
                sweep_partials(folder, self._clock() - STALE_PARTIAL_S)
        fetched = 0
        for prefix, library in self._chosen_libraries():
            fetched += self._retry_stuck(prefix, library, inbox, stop)
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
            for _, photos in self._pages(prefix, album, 0):
                for photo in photos:
                    if stop():
                        return fetched  # the cursor stays unsaved: the next sync walks again
                    if self.assets.known(prefix + photo.id):
                        known_run += 1
                        if plan.stop_head_walk(known_run):
                            break
                        continue
                    known_run = 0
                    fetched += self._take(prefix, photo, inbox)
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
            for next_rank, photos in self._pages(prefix, album, walk.backfill_from):
                for photo in photos:
                    if stop():
                        return fetched  # resumes from the last saved page
                    if not self.assets.known(prefix + photo.id):
                        fetched += self._take(prefix, photo, inbox)
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

    def _pages(self, prefix: str, album: Any, start_rank: int) -> Iterator[tuple[int, list[Any]]]:
        """The recently-added index newest-first from ``start_rank``: (rank after the page, photos).

        pyicloud's own pager (``_iter_added_desc_photos``) always starts at the newest photo; this is the
        same trailing-window walk with a start, so a first sync can resume where it stopped. Records that
        cannot be read are set aside as problems (``records.read_page``)."""
        page = int(album.page_size)
        rank = start_rank
        seen: set[str] = set()
        while True:
            read = read_page(album, rank + page - 1, page)
            bad = [(asset_id, why) for asset_id, why in read.bad if asset_id not in seen]
            for asset_id, why in bad:
                self._record_problem(prefix, asset_id, asset_id, why)
            window = [p for p in read.photos if p.id not in seen]
            # Only the last page's ids: a window repeats assets of the page before it (photos added at the
            # head meanwhile shift the index; past its end the index repeats its last window), never older
            # ones, so memory stays flat however big the library (100k ids were ~15 MB).
            seen = {p.id for p in read.photos} | {asset_id for asset_id, _ in read.bad}
            repeated = len(read.photos) - len(window) + len(read.bad) - len(bad)
            if not window and not bad:  # past the end the index repeats its last window
                return
            rank += read.size - repeated
            yield rank, list(reversed(window))
            if read.size < page:
                return

    def _record_problem(self, prefix: str, asset_id: str, name: str, why: str) -> None:
        """An asset whose record cannot be read: skipped, logged and shown once (by its id)."""
        if self.assets.problem(prefix + asset_id) is None:
            log.warning("iCloud: skipped photo %s: %s", asset_id, why)
            self.assets.add_problem(prefix + asset_id, RECORD, name, why, self._clock())

    def _take(self, prefix: str, photo: Any, inbox: Path) -> int:
        """Fetch one asset from a walk; a malformed record or files that do not arrive set it aside (the
        walk goes on with the others), a failure of iCloud itself ends the sync."""
        try:
            return self._fetch_asset(prefix, photo, inbox)
        except AssetDownloadError as exc:
            self._download_failed(prefix + photo.id, str(getattr(photo, "filename", photo.id)), exc.message)
            return 0
        except _RECORD_ERRORS as exc:
            self._record_problem(prefix, photo.id, photo.id, f"its record is malformed ({type(exc).__name__})")
            return 0

    def _download_failed(self, key: str, name: str, why: str) -> None:
        problem = self.assets.add_problem(key, DOWNLOAD, name, why, self._clock())
        level = logging.WARNING if problem.tries in (1, plan.MAX_DOWNLOAD_TRIES) else logging.DEBUG
        log.log(level, "iCloud: %s (try %d); the other photos go on, it is tried again later", why, problem.tries)

    def _retry_stuck(self, prefix: str, library: Any, inbox: Path, stop: Callable[[], bool]) -> int:
        """Try again the assets of ``library`` whose files did not arrive, when due (``core.sync``)."""
        fetched = 0
        if not can_look_up(library):
            return 0
        for problem in self.assets.problems(prefix):
            if problem.kind != DOWNLOAD or stop() or not plan.retry_due(problem.tries, problem.last, self._clock()):
                continue
            photo = lookup_asset(library, problem.asset_id.removeprefix(prefix))
            if photo is None:
                log.info("iCloud: %s is no longer in the library; no more retries", problem.name)
                self.assets.forget_problem(problem.asset_id)
                continue
            try:
                fetched += self._fetch_asset(prefix, photo, inbox)
            except AssetDownloadError as exc:
                self._download_failed(problem.asset_id, problem.name, exc.message)
            else:
                log.info("iCloud: %s arrived after %d failed tries", problem.name, problem.tries)
        return fetched

    def _fetch_asset(self, prefix: str, photo: Any, inbox: Path) -> int:
        """Download an asset's files (still, live movie, preview; or a video) and only when every one has
        arrived whole put them in place, the still first: an asset is delivered complete or not at all."""
        original = photo.resources.get("original")
        resources = photo.resources if self.edited == "original" else {**photo.resources, **edit_resources(photo)}
        wanted = plan.plan_downloads(photo.item_type, photo.is_live_photo, tuple(resources), videos=self.videos,
                                     previews=self.previews is not None, edited=self.edited)
        first = resources[wanted[0][0]] if wanted else original  # the edit, in place of the original
        name = plan.local_name(photo.filename, photo.id, first.type if first else None)
        folders = {"photo": inbox, "live": inbox, "edit": inbox, "preview": self.previews,
                   "video": self.media_folder or inbox}
        screenshot = screenshot_mark(photo)
        if screenshot is None and not self._odd_subtype:  # hostile or new: said once, then ignored
            self._odd_subtype = True
            log.info("iCloud: an asset's subtype is not a number (%s); ignored", photo.id)
        local, sha256, count = fetch_files(self._api.session, photo, wanted, name, folders, self._clock(),
                                           screenshot=bool(screenshot), resources=resources)
        self.assets.remember(prefix + photo.id, checksum=original.checksum if original else None,
                             filename=photo.filename, local_name=local, sha256=sha256, size=photo.size,
                             item_type=photo.item_type, added=photo.added_date.timestamp())
        return count

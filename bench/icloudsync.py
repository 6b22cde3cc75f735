"""An iCloud library against the local fake server (tests/servers/fake_icloud.py, the recorded photos
copied with fresh ids, small bodies): the first sync (every chunk: listing, downloads of the still, its
live-photo movie and iCloud's rendition), then an idle poll. Requests counted by the server; the peak
is this process's (server included) above what it held before.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.common import RSS, row
from photosorter.adapters.icloud import IcloudSource
from tests.servers.fake_icloud import FakeICloud, recorded_photo_records


def icloud_rows(count: int, work: Path) -> None:
    recorded = len(recorded_photo_records("listing_photos.yml"))
    work.mkdir(parents=True, exist_ok=True)
    server = FakeICloud(Path(tempfile.mkdtemp(dir=work))).start()
    os.environ["REQUESTS_CA_BUNDLE"] = str(server.cert)  # requests prefers these to Session.verify
    os.environ["CURL_CA_BUNDLE"] = str(server.cert)
    try:
        server.load_recording(copies=max(1, count // recorded))
        total = len(server.photos)
        data = work / "icloud-data"
        source = IcloudSource(server.apple_id, server.password, data_dir=data, state_path=data / "state.sqlite3",
                              media_folder=work / "videos", previews=data / "previews", server=server.url)
        if not source.auth_state().ok:
            source.submit_code(server.code)
        before_requests = len(server.requests)
        before_rss = RSS.current()
        RSS.reset()
        started = time.perf_counter()
        fetched = source.fetch_new(work / "incoming")
        while source.more_pending():
            fetched += source.fetch_new(work / "incoming")
        elapsed = time.perf_counter() - started
        listing = server.count("records/query")
        requests = len(server.requests) - before_requests
        row(f"iCloud first sync, {total} photos: time / requests (listing)",
            f"{elapsed:7.1f} s / {requests} ({listing} listing)  {fetched} files")
        row(f"iCloud first sync, {total} photos: peak RSS growth / state file",
            f"{RSS.peak_mb - before_rss / 1e6:6.0f} MB / {(data / 'state.sqlite3').stat().st_size / 1e6:5.1f} MB")
        before = len(server.requests)
        started = time.perf_counter()
        assert source.auth_state().ok
        new = source.fetch_new(work / "incoming")
        row("iCloud idle poll (nothing new): requests / time",
            f"{len(server.requests) - before} / {(time.perf_counter() - started) * 1000:6.0f} ms  ({new} new)")
        source.close()
    finally:
        server.stop()

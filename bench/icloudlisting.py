"""A first sync's listing of a big iCloud library, by hand (``bench/run.py --icloud-listing 100000``; not in
--quick, not in CI): the fake server (tests/servers/fake_icloud.py, in a process of its own so that its
work and memory are not counted here) serves ``count`` generated records; the sync walks the whole
added-date index as a first sync does (``IcloudSource._pages``, each asset checked against the state and
remembered there, page by page), with no downloads. Then, the walk finished and its cursor saved, an idle
poll (``fetch_new`` with nothing new). Peak RSS is this process's growth over the walk: it must stay flat
(no list of all assets in memory).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from bench.common import RSS, row
from photosorter.adapters.icloud import IcloudSource
from tests.servers.fake_icloud import FakeICloud


def _serve(count: int, folder: str, pipe: Connection) -> None:
    """The child process: a fake iCloud with ``count`` generated photos, answering the bench's questions."""
    server = FakeICloud(Path(folder)).start()
    server.generate_library(count)
    pipe.send((server.url, str(server.cert), server.apple_id, server.password, server.code))
    while (question := pipe.recv()) != "stop":
        pipe.send(server.count(question) if question else len(server.requests))
    server.stop()


def icloud_listing_rows(count: int, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    child, pipe = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(count, tempfile.mkdtemp(dir=work),
                                                                                child))
    process.start()
    try:
        url, cert, apple_id, password, code = pipe.recv()

        def ask(part: str = "") -> int:
            pipe.send(part)
            return int(pipe.recv())

        os.environ["REQUESTS_CA_BUNDLE"] = cert  # requests prefers these to Session.verify
        os.environ["CURL_CA_BUNDLE"] = cert
        data = work / "icloud-data"
        source = IcloudSource(apple_id, password, data_dir=data, state_path=data / "state.sqlite3",
                              media_folder=work / "videos", previews=data / "previews", server=url)
        if not source.auth_state().ok:
            source.submit_code(code)
        before_requests, before_listing = ask(), ask("records/query")
        before_rss = RSS.current()
        RSS.reset()
        started = time.perf_counter()
        listed = 0
        for prefix, library in source._chosen_libraries():
            library.current_sync_token = None
            cursor = str(library.sync_cursor())
            album = library.recently_added()
            len(album)  # the count query a first sync makes for its progress
            for _, photos in source._pages(prefix, album, 0):
                listed += len(photos)
                source.assets._db.execute("BEGIN")  # one commit a page (a real sync commits per download)
                for photo in photos:
                    if not source.assets.known(prefix + photo.id):
                        source.assets.remember(prefix + photo.id, checksum=None, filename=photo.filename,
                                               local_name=None, sha256=None, size=photo.size,
                                               item_type=photo.item_type, added=photo.added_date.timestamp())
                source.assets._db.execute("COMMIT")
            source.assets.put(f"{prefix}backfill_done", "1")
            source.assets.put(f"{prefix}cursor", cursor)
        elapsed = time.perf_counter() - started
        peak = RSS.peak_mb - before_rss / 1e6
        row(f"iCloud first sync's listing, {count} photos: time / requests (listing)",
            f"{elapsed:7.1f} s / {ask() - before_requests} ({ask('records/query') - before_listing} listing); "
            f"{listed} listed")
        row(f"iCloud first sync's listing, {count} photos: peak RSS growth / state file",
            f"{peak:6.1f} MB / {sum(p.stat().st_size for p in data.glob('state.sqlite3*')) / 1e6:5.1f} MB")
        before = ask()
        started = time.perf_counter()
        assert source.auth_state().ok
        new = source.fetch_new(work / "incoming")
        row(f"iCloud idle poll, {count} known, nothing new: requests / time",
            f"{ask() - before} / {(time.perf_counter() - started) * 1000:6.0f} ms  ({new} new)")
        source.close()
    finally:
        pipe.send("stop")
        process.join(timeout=30)

"""The web page over HTTP (no browser): relabel, undo, the queue's order, and bad input changing nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from photosorter.adapters.catalog import SqliteCatalog
from photosorter.adapters.state import SqliteState
from photosorter.config import Settings
from photosorter.core.digest import DigestPhoto, pick_for_review
from photosorter.records import AuthState, StatusSnapshot
from photosorter.web import app as web_app
from photosorter.web.views import script_json
from tests.servers.mosquitto import free_port, wait_for_port
from tests.test_sort_folder import files_under
from tests.webpage import Page, library_settings, serving, sort_photos


@pytest.fixture
def settings(tmp_path: Path, tiny_model: Path) -> Settings:
    settings = library_settings(tmp_path, tiny_model)
    sort_photos(settings, tmp_path / "inbox")
    return settings


def library_files(settings: Settings) -> list[str]:
    return [p.relative_to(settings.library.path).as_posix() for p in files_under(settings.library.path)]


def labels(settings: Settings) -> list[tuple[int, str, str]]:
    with sqlite3.connect(settings.library.data / "state.sqlite3") as db:
        return [tuple(row) for row in db.execute("SELECT photo_id, category, source FROM labels ORDER BY id")]


def first_in_queue(page: Page) -> dict[str, object]:
    status, queue = page.get_json("/api/queue?limit=5")
    assert status == 200 and queue["items"], queue
    return queue["items"][0]  # type: ignore[no-any-return]


def test_the_queue_asks_about_unsure_and_least_sure_photos_first_like_the_digest(settings: Settings) -> None:
    with serving(settings) as page:
        status, queue = page.get_json("/api/queue?limit=60")
    state = SqliteState(settings.library.data / "state.sqlite3")
    photos = [state.photo(i) for i in range(1, 13)]
    state.close()
    expected = pick_for_review(DigestPhoto(p.id, "", p.category or "", p.score or 0, p.margin or 0,
                                           p.status.value == "unsure") for p in photos if p)
    assert status == 200 and queue["total"] == 12
    assert [item["id"] for item in queue["items"]] == [p.photo_id for p in expected]
    assert any(item["unsure"] for item in queue["items"]) and queue["items"][0]["unsure"]


def test_a_relabel_moves_the_file_records_the_label_and_leaves_the_queue(settings: Settings) -> None:
    with serving(settings) as page:
        photo = first_in_queue(page)
        status, done = page.post("/api/label", {"id": photo["id"], "category": "beer", "version": photo["version"]})
        assert status == 200, done
        assert done["folder"] == "beer" and done["label"] == "beer"
        _, queue = page.get_json("/api/queue?limit=60")
    assert photo["id"] not in [item["id"] for item in queue["items"]] and queue["total"] == 11
    assert labels(settings) == [(photo["id"], "beer", "web")]
    assert sum(name.startswith("beer/") for name in library_files(settings)) == 1


def test_undo_puts_the_photo_back_where_it_was_and_forgets_the_label(settings: Settings) -> None:
    before = library_files(settings)
    with serving(settings) as page:
        photo = first_in_queue(page)
        _, done = page.post("/api/label", {"id": photo["id"], "category": "beer", "version": photo["version"]})
        status, undone = page.post("/api/undo", {"action": done["action"]})
        assert status == 200, undone
        assert undone["folder"] == photo["folder"] and undone["label"] is None
        again, _ = page.post("/api/undo", {"action": done["action"]})
        assert again == 404
        assert first_in_queue(page)["id"] == photo["id"]
    assert library_files(settings) == before and labels(settings) == []


def test_a_double_click_or_a_second_tab_labels_once_and_the_second_gets_409(settings: Settings) -> None:
    with serving(settings) as page:
        photo = first_in_queue(page)
        first, _ = page.post("/api/label", {"id": photo["id"], "category": "food", "version": photo["version"]})
        second, answer = page.post("/api/label", {"id": photo["id"], "category": "beer", "version": photo["version"]})
    assert (first, second) == (200, 409) and "changed meanwhile" in answer["error"]
    assert labels(settings) == [(photo["id"], "food", "web")]


def test_a_labelled_photo_is_relabelled_from_its_page_and_a_stale_page_changes_nothing(settings: Settings) -> None:
    with serving(settings) as page:
        photo = first_in_queue(page)
        page.post("/api/label", {"id": photo["id"], "category": "food", "version": photo["version"]})
        shown = page.get_json(f"/api/photo/{photo['id']}")[1]  # the photo page, as it opens
        status, done = page.post("/api/label", {"id": photo["id"], "category": "beer", "version": shown["version"]})
        stale, _ = page.post("/api/label", {"id": photo["id"], "category": "text", "version": shown["version"]})
    assert shown["label"] == "food" and status == 200 and (done["folder"], done["label"]) == ("beer", "beer")
    assert stale == 409 and labels(settings) == [(photo["id"], "food", "web"), (photo["id"], "beer", "web")]
    assert sum(name.startswith("beer/") for name in library_files(settings)) == 1


@pytest.mark.parametrize("payload, status", [
    ({"id": 9999, "category": "food"}, 404),
    ({"id": 1, "category": "../../etc"}, 400),
    ({"id": 1, "category": "Food!"}, 400),
    ({"id": "1; DROP TABLE photos", "category": "food"}, 400),
    ({"id": True, "category": "food"}, 400),
    ({"id": 1}, 400),
    (b"not json", 400),
    ([1, "food"], 400),
])
def test_bad_labels_get_a_4xx_and_change_nothing(settings: Settings, payload: object, status: int) -> None:
    before = library_files(settings)
    with serving(settings) as page:
        got, answer = page.post("/api/label", payload)
    assert got == status and answer["error"]
    assert library_files(settings) == before and labels(settings) == []


def test_a_post_without_the_page_token_is_refused(settings: Settings) -> None:
    with serving(settings) as page:
        photo = first_in_queue(page)
        for token in ("", "guessed"):
            status, answer = page.post("/api/label", {"id": photo["id"], "category": "beer"}, token=token)
            assert status == 403 and "token" in answer["error"]
    assert labels(settings) == []


@pytest.mark.parametrize("path", ["/photo/../../etc/passwd", "/thumb/../../etc/passwd", "/static/../../../etc/passwd",
                                  "/thumb/%2e%2e%2fstate.sqlite3", "/image/-1", "/thumb/99999", "/api/photo/abc",
                                  "/static/../../adapters/state.py", "/image/1/../../../../etc/passwd"])
def test_paths_instead_of_ids_serve_nothing(settings: Settings, path: str) -> None:
    with serving(settings) as page:
        status, _, body = page.request("GET", path)
    assert 400 <= status < 500 and b"root:" not in body and b"SQLite" not in body and b"import" not in body


def test_a_thumbnail_wanted_by_many_at_once_is_decoded_once_and_its_file_never_replaced(tmp_path: Path) -> None:
    from photosorter.adapters.images import decode_image
    from photosorter.adapters.thumbnails import ThumbnailFolder
    from tests.conftest import write_photo

    source = write_photo(tmp_path, "red.jpg", (220, 20, 20))
    decoded: list[int] = []
    release = threading.Event()
    missed: list[int] = []  # callers that found no cached file and went to make it or wait for its maker

    class CountingLock:  # the folder's own lock, taken once by each caller that missed the cache
        def __init__(self, inner: threading.Lock) -> None:
            self.inner = inner

        def __enter__(self) -> None:
            self.inner.acquire()
            if not release.is_set():
                missed.append(1)
                if len(missed) == 8:
                    release.set()

        def __exit__(self, *exc: object) -> None:
            self.inner.release()

    def slow_decoder(data: bytes, side: int):  # type: ignore[no-untyped-def]
        decoded.append(side)
        release.wait(30)  # until all 8 callers missed the cache (bounded: a guard against a hang)
        return decode_image(data, side)

    thumbs = ThumbnailFolder(tmp_path / "thumbs", slow_decoder)
    thumbs._lock = CountingLock(thumbs._lock)  # type: ignore[assignment]
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: thumbs.get("ab" * 32, source, 160), range(8)))
    assert len(missed) == 8  # all 8 were there while the first was decoding
    assert decoded == [160] and len(set(made)) == 1 and made[0] is not None
    cached = thumbs.path_for("ab" * 32, 160)
    inode = cached.stat().st_ino
    ThumbnailFolder.save(cached, b"another process's bytes")  # made elsewhere meanwhile: the first file stays
    assert cached.stat().st_ino == inode and cached.read_bytes() == made[0]
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temp file left


def test_thumbnails_are_made_once_and_served_by_id_with_caching_headers(settings: Settings) -> None:
    with serving(settings) as page:
        status, headers, body = page.request("GET", "/thumb/1")
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
        assert "immutable" in headers["Cache-Control"]
        state = SqliteState(settings.library.data / "state.sqlite3")
        sha = state.photo(1).sha256  # type: ignore[union-attr]
        state.close()
        cached = settings.library.data / "thumbs" / "320" / sha[:2] / f"{sha}.jpg"
        assert cached.read_bytes() == body and cached.stat().st_mode & 0o077 == 0
        mtime = cached.stat().st_mtime_ns
        again, _, same = page.request("GET", "/thumb/1")
        unchanged, _, _ = page.request("GET", "/thumb/1", headers={"If-None-Match": headers["ETag"]})
    assert (again, same, unchanged) == (200, body, 304) and cached.stat().st_mtime_ns == mtime
    assert len(list((settings.library.data / "thumbs").rglob("*.jpg"))) == 12  # the queue's, made at start


def test_links_follow_the_ingress_prefix_and_a_strange_prefix_is_ignored(settings: Settings) -> None:
    with serving(settings) as page:
        ingress = page.open({"X-Ingress-Path": "/api/hassio_ingress/AbC-12_x"})
        strange = page.open({"X-Ingress-Path": '/x"><script>alert(1)</script>'})
        slashed = page.open({"X-Ingress-Path": "/api/hassio_ingress/AbC-12_x/"})
    assert '<base href="/api/hassio_ingress/AbC-12_x/">' in ingress and ingress == slashed
    assert '<base href="/">' in strange and "<script>alert" not in strange
    rest = ingress.replace('<base href="/', "")
    assert 'src="/' not in rest and 'href="/' not in rest  # every link is relative to the prefix


def test_the_page_carries_the_queues_first_page_as_data_that_cannot_end_its_element(settings: Settings) -> None:
    with serving(settings) as page:
        html_text = page.open({"X-Ingress-Path": "/api/hassio_ingress/AbC-12_x"})
        status, queue = page.get_json("/api/queue")
    block = re.search(r'<script type="application/json" id="first-queue">(.*?)</script>', html_text, re.S)
    assert block is not None and status == 200 and json.loads(block.group(1)) == queue
    assert len(queue["items"]) == 12 and queue["total"] == 12
    hostile = {"category": "</script><script>alert(1)</script><!--", "folder": "a&b>c"}
    escaped = script_json(hostile)
    assert not set("<>&") & set(escaped) and json.loads(escaped) == hostile


def test_standalone_says_anyone_on_the_port_can_relabel(settings: Settings) -> None:
    with serving(settings) as page:
        assert "anyone who can reach this port can relabel" in page.open()


def test_under_the_addon_only_the_ingress_proxy_may_connect(settings: Settings,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_TOKEN", "token-of-the-addon")
    with serving(settings, open_page=False) as page:  # this test connects from 127.0.0.1, not 172.30.32.2
        statuses = [page.request("GET", path)[0] for path in ("/", "/thumb/1", "/api/queue", "/static/app.js")]
        posted, answer = page.post("/api/label", {"id": 1, "category": "beer"})
    assert statuses == [403] * 4 and posted == 403 and "ingress" in answer["error"]
    assert labels(settings) == []


def test_under_the_addon_a_request_from_the_ingress_proxy_is_served(settings: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert web_app.INGRESS_PROXY == "172.30.32.2"  # the Supervisor's; no socket here can come from it, so
    monkeypatch.setattr(web_app, "INGRESS_PROXY", "127.0.0.2")  # the proxy is a loopback neighbour for the test
    monkeypatch.setenv("SUPERVISOR_TOKEN", "token-of-the-addon")
    with serving(settings, open_page=False) as page:
        statuses = [page.request("GET", "/api/queue", source=source)[0] for source in ("127.0.0.2", "127.0.0.3")]
        default, _, _ = page.request("GET", "/api/queue")  # from 127.0.0.1
    assert statuses == [200, 403] and default == 403


def test_the_map_has_a_point_per_photo_and_box_labelling_labels_each(settings: Settings) -> None:
    with serving(settings) as page:
        status, points = page.get_json("/api/map")
        assert status == 200 and len(points["ids"]) == len(points["x"]) == 12
        assert all(0 <= v <= 1 for v in points["x"] + points["y"])
        status, done = page.post("/api/label-many", {"ids": [*points["ids"][:3], 9999], "category": "scenery"})
    assert status == 200 and (done["labelled"], done["missing"]) == (3, 1)
    assert sorted(p for p, c, s in labels(settings) if c == "scenery") == sorted(points["ids"][:3])


def test_after_a_label_the_map_is_made_again_and_draws_that_photo_as_labelled(settings: Settings) -> None:
    with serving(settings) as page:
        before = page.get_json("/api/map")[1]
        photo = first_in_queue(page)
        page.post("/api/label", {"id": photo["id"], "category": "beer", "version": photo["version"]})
        served, after = page.get_json("/api/map")  # at once: the last map while the new one is made
        for _ in range(300):  # made on a worker thread; each request returns as soon as there is a map
            position = after["ids"].index(photo["id"])
            if after["labelled"][position]:
                break
            threading.Event().wait(0.1)
            after = page.get_json("/api/map")[1]
    assert served == 200 and not any(before["labelled"]) and len(after["ids"]) == 12
    assert after["labelled"] == [int(i == photo["id"]) for i in after["ids"]]
    assert after["folders"][after["folder"][position]] == "beer"


def test_the_health_page_counts_photos_labels_and_corrections(settings: Settings) -> None:
    runs = settings.library.data / "evaluations.jsonl"
    runs.write_text(json.dumps({"date": "2026-11-30T10:00:00", "model": "tiny", "blend": 0.8}) + "\n")
    with serving(settings) as page:
        photo = first_in_queue(page)
        page.post("/api/label", {"id": photo["id"], "category": "beer", "version": photo["version"]})
        status, health = page.get_json("/api/health")
    assert status == 200 and sum(health["counts"].values()) == 12 and health["labels"] == {"beer": 1}
    assert health["corrections"] == {"labels": 1, "changed": 1}
    assert health["runs"][0]["blend"] == 0.8 and health["problems"] == []


def test_the_health_page_shows_what_the_daemon_tells_home_assistant(settings: Settings) -> None:
    synced = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    snapshot = StatusSnapshot(library_counts={}, sorted_today=0, unsure=0, failed=0, last_sync=synced, sync=None,
                              auth=AuthState(False, "enter the code Apple sent", "sms"), paused=False,
                              problems=("mail: the SMTP server refused the login",),
                              drift="your photos look different lately: please label a few")
    with serving(settings, status=lambda: snapshot) as page:
        status, health = page.get_json("/api/health")
    assert status == 200 and health["daemon"] is True
    assert health["problems"] == ["mail: the SMTP server refused the login"]  # the MQTT Problem sensor's list
    assert health["drift"] == snapshot.drift and health["last_sync"] == synced.isoformat()
    icloud = {key: health["icloud"][key] for key in ("ok", "message", "method")}
    assert icloud == {"ok": False, "message": "enter the code Apple sent", "method": "sms"}


def test_photosorter_web_serves_the_page_until_sigterm_and_never_beside_a_daemon(settings: Settings) -> None:
    port = free_port()
    common = ["--library", str(settings.library.path), "--data", str(settings.library.data), "--model",
              settings.model.name]
    env = {**os.environ, "PHOTOSORTER_FACES": "false"}
    env.pop("SUPERVISOR_TOKEN", None)
    web = subprocess.Popen([sys.executable, "-m", "photosorter", "web", "--port", str(port), *common], env=env,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_port(port, 60)
        page = Page(port)
        assert "review" in page.open().lower() and page.get_json("/api/queue")[0] == 200
        second = subprocess.run([sys.executable, "-m", "photosorter", "web", "--port", str(free_port()), *common],
                                env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "already runs on" in second.stderr
    finally:
        web.send_signal(signal.SIGTERM)
        _, log = web.communicate(timeout=30)
    assert web.returncode == 0 and "anyone who can reach this address" in log and "web page stopped" in log
    assert f"web page on http://127.0.0.1:{port}/" in log  # loopback only unless web_host says otherwise


def test_a_library_folder_is_paged_newest_first_and_only_real_folders_are_listed(settings: Settings) -> None:
    with serving(settings) as page:
        counts = page.get_json("/api/health")[1]["counts"]
        folder = max(counts, key=counts.get)
        status, listing = page.get_json(f"/api/library?folder={folder}&page=0")
        bad = [page.get_json(f"/api/library?folder={name}")[0] for name in ("../data", "videos", "", "_Unsure")]
    assert status == 200 and listing["total"] == counts[folder] and len(listing["items"]) == counts[folder]
    ids = [item["id"] for item in listing["items"]]
    assert ids == sorted(ids, reverse=True)  # sorted one after another: newest is the highest id
    assert bad == [400, 400, 400, 400]


def test_a_folder_is_paged_without_gaps_or_repeats(settings: Settings) -> None:
    catalog = SqliteCatalog(settings.library.data / "state.sqlite3")
    try:
        folders = {folder: catalog.folder_page(folder, 0, 1)[1] for folder in ("_unsure", *settings.classify.names)}
        folder = max(folders, key=lambda name: folders[name])
        pages = [catalog.folder_page(folder, offset, 3) for offset in range(0, folders[folder] + 3, 3)]
    finally:
        catalog.close()
    ids = [record.id for records, _ in pages for record in records]
    assert folders[folder] >= 4 and all(total == folders[folder] for _, total in pages)
    assert ids == sorted(set(ids), reverse=True) and len(ids) == folders[folder] and pages[-1][0] == []


def test_a_photo_shows_its_best_categories_and_its_nearest_labelled_photos(settings: Settings) -> None:
    with serving(settings) as page:
        photos = page.get_json("/api/queue?limit=60")[1]["items"]
        for photo in photos[:3]:
            page.post("/api/label", {"id": photo["id"], "category": "food", "version": photo["version"]})
        status, details = page.get_json(f"/api/photo/{photos[5]['id']}")
        missing, _ = page.get_json("/api/photo/424242")
    assert status == 200 and details["label"] is None and 1 <= len(details["top"]) <= 3
    assert {n["id"] for n in details["neighbours"]} == {p["id"] for p in photos[:3]}
    assert all(n["category"] == "food" for n in details["neighbours"]) and missing == 404


def test_a_change_waiting_for_a_busy_sorter_is_called_off_with_503_and_never_applied(settings: Settings) -> None:
    worker, release = ThreadPoolExecutor(max_workers=1), threading.Event()
    worker.submit(release.wait)  # the sorter is busy (another process holds the library, a long sort)
    with serving(settings, worker=worker, sorter_wait_s=0.5) as page:
        status, queue = page.get_json("/api/queue")
        photo = queue["items"][0]
        posted, answer = page.post("/api/label", {"id": photo["id"], "category": "beer", "version": photo["version"]})
        release.set()
    assert status == 200 and posted == 503 and "busy" in answer["error"]
    assert labels(settings) == []

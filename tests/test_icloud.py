"""The real pyicloud client against the fake iCloud HTTPS server: login, 2FA, incremental sync, failures."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from photosorter.adapters.icloud import PARTIAL_PREFIX
from photosorter.core.companions import group_folder
from photosorter.errors import AuthRequiredError, SourceUnavailableError
from photosorter.records import SyncProgress
from tests.icloudfixtures import SIGNIN, files, logged_in, open_source
from tests.servers.fake_icloud import SHARED_ZONE, FakeICloud


# login and 2FA ------------------------------------------------------------------------------------
def test_login_without_2fa_needs_no_code(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "none"
    state = open_source(fake, tmp_path).auth_state()
    assert state.ok and fake.prompts == 0


def test_wrong_code_asks_again_right_code_logs_in_and_a_restart_reuses_the_session(
        fake: FakeICloud, tmp_path: Path) -> None:
    source = open_source(fake, tmp_path)
    state = source.auth_state()
    assert not state.ok and state.method == "trusted device" and "6-digit code" in state.message
    wrong = source.submit_code("000000")
    assert not wrong.ok and "Wrong code" in wrong.message
    assert source.auth_state() == state  # still waiting for the code, nothing new sent
    assert source.submit_code("123 456").ok
    assert source.auth_state().ok
    source.close()
    signins = fake.count(SIGNIN)
    restarted = open_source(fake, tmp_path)
    assert restarted.auth_state().ok
    assert fake.count(SIGNIN) == signins and fake.prompts == 1


def test_checking_again_while_a_code_is_pending_sends_no_new_code(fake: FakeICloud, tmp_path: Path) -> None:
    source = open_source(fake, tmp_path)
    for _ in range(5):
        assert not source.auth_state().ok
        with pytest.raises(AuthRequiredError):
            source.fetch_new(tmp_path / "inbox")
    assert fake.count(SIGNIN) == 1 and fake.prompts == 1


def test_sms_delivery_is_named(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "sms"
    source = open_source(fake, tmp_path)
    state = source.auth_state()
    assert state.method == "SMS" and "text message" in state.message and fake.prompts == 1
    assert source.submit_code(fake.code).ok


def test_security_key_only_account_gets_a_clear_message(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "security_key"
    state = open_source(fake, tmp_path).auth_state()
    assert not state.ok and state.method == "security key" and "security key only" in state.message


def test_a_rejected_password_is_never_retried(fake: FakeICloud, tmp_path: Path) -> None:
    source = open_source(fake, tmp_path, password="wrong password")
    for _ in range(3):
        state = source.auth_state()
        assert not state.ok and "rejected" in state.message
    assert fake.count(SIGNIN) == 1


def test_months_later_the_trusted_device_logs_in_again_without_a_code(fake: FakeICloud, tmp_path: Path) -> None:
    source = logged_in(fake, tmp_path)
    fake.expire_sessions()
    assert source.auth_state().ok
    assert fake.prompts == 1


def test_months_later_without_trust_one_code_is_asked_for_and_no_more(fake: FakeICloud, tmp_path: Path) -> None:
    source = logged_in(fake, tmp_path)
    fake.expire_sessions()
    fake.forget_trust()
    assert not source.auth_state().ok
    assert not source.auth_state().ok
    assert fake.prompts == 2
    assert source.submit_code(fake.code).ok


def test_the_password_never_reaches_the_log_or_the_data_folder(fake: FakeICloud, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = logged_in(fake, tmp_path)
    source.fetch_new(tmp_path / "inbox")
    open_source(fake, tmp_path, password="wrong password").login()
    assert fake.password not in caplog.text
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert fake.password.encode() not in path.read_bytes(), path


# syncing ------------------------------------------------------------------------------------------
def test_first_sync_of_a_library_with_several_pages_is_resumable(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(copies=4, limit=60)  # 240 photos: three pages of the added-date index
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)

    def stop_after_first_page(progress: SyncProgress) -> None:
        raise KeyboardInterrupt  # the process is stopped halfway

    with pytest.raises(KeyboardInterrupt):
        source.fetch_new(inbox, stop_after_first_page)
    first = len(files(inbox)) + len(files(tmp_path / "library"))
    downloads_before = fake.count("/content/")
    source.close()
    restarted = logged_in(fake, tmp_path)
    started = time.monotonic()
    restarted.fetch_new(inbox)
    elapsed = time.monotonic() - started
    assert restarted.assets.count() == 240
    downloads = fake.count("/content/")
    assert downloads == len(set(fake.contents) & {p.split("/")[3] for _, p in fake.requests if "/content/" in p})
    assert 0 < downloads_before < downloads and first > 0
    print(f"\nresumed first sync: {fake.count('records/query')} listing queries, {downloads} downloads, "
          f"second half in {elapsed:.1f} s")


def test_photos_taken_during_a_first_sync_shift_its_pages_without_losing_or_doubling_any(
        fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(copies=3, limit=70)  # 210 photos: three pages of the added-date index
    source = logged_in(fake, tmp_path)
    source.previews = None  # the stills are enough to count
    taken = iter([2, 1])

    def take_photos(progress: SyncProgress) -> None:  # between two pages: the index shifts by that many
        for n in range(next(taken, 0)):
            fake.add_new_photo(index=30 + n, tag=f"during{progress.done}-{n}")

    source.fetch_new(tmp_path / "inbox", take_photos)
    assert source.assets.count() == 210
    source.fetch_new(tmp_path / "inbox")  # the ones taken meanwhile come with the next sync's head walk
    assert source.assets.count() == 213
    downloaded = [p.split("/")[3] for _, p in fake.requests if "/content/" in p]
    assert len(downloaded) == len(set(downloaded))


def test_a_poll_with_nothing_new_costs_two_requests(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=30)
    source = logged_in(fake, tmp_path)
    source.fetch_new(tmp_path / "inbox")
    before = len(fake.requests)
    assert source.auth_state().ok
    assert source.fetch_new(tmp_path / "inbox") == 0
    idle = fake.requests[before:]
    assert [p.rsplit("/", 2)[-2:] for _, p in idle] == [["1", "validate"], ["zones", "list"]]


def test_a_new_photo_is_fetched_alone_even_after_the_library_was_sorted_away(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=40)
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)
    source.fetch_new(inbox)
    shutil.rmtree(inbox)  # the sorter moved everything into category folders
    new = fake.add_new_photo(index=0)
    downloads = fake.count("/content/")
    assert source.fetch_new(inbox) == 1
    assert fake.count("/content/") == downloads + 3  # the still, its live-photo movie, its preview
    assert files(inbox) == sorted([new.filename.replace(".JPG", ".jpg"), new.filename.replace(".JPG", ".mov")])


def test_many_new_photos_after_a_long_time_offline_also_come_in_chunks(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=10)
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)
    source.fetch_new(inbox)
    for i in range(5):
        fake.add_new_photo(index=20 + i, tag=f"away{i}")
    source.chunk = 2
    arrived = [source.fetch_new(inbox)]
    while source.more_pending():
        arrived.append(source.fetch_new(inbox))
    assert arrived == [2, 2, 1] and source.assets.count() == 15
    downloads = [p for _, p in fake.requests if "/content/" in p]
    assert len(downloads) == len(set(downloads))


def test_a_download_cut_off_halfway_leaves_nothing_and_is_fetched_next_time(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=3)
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)
    fake.truncate_downloads = 1
    with pytest.raises(SourceUnavailableError):
        source.fetch_new(inbox)
    assert not any(name.startswith(PARTIAL_PREFIX) for name in os.listdir(inbox))
    assert files(inbox) == []
    source._not_before = 0.0  # the back-off is over
    source.fetch_new(inbox)
    assert len(group_folder(files(inbox)).photos) == 3
    for path in inbox.glob("*.jpg"):
        assert path.stat().st_size > 0 and path.read_bytes()[:2] == b"\xff\xd8"


def test_a_live_photo_whose_movie_is_cut_off_is_delivered_whole_next_time_not_twice(
        fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=1)  # one live photo: still, then movie
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)
    fake.truncate_skip, fake.truncate_downloads = 1, 1  # the still arrives, the movie is cut off
    with pytest.raises(SourceUnavailableError):
        source.fetch_new(inbox)
    assert files(inbox) == []  # not the still alone either: the asset comes whole or not at all
    source._not_before = 0.0
    assert source.fetch_new(inbox) == 1
    assert [n.rsplit(".", 1)[1] for n in files(inbox)] == ["jpg", "mov"]


def test_what_a_killed_download_left_is_swept_away_later(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=1)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = os.getppid()  # a download in another running process
    stale, fresh = inbox / f"{PARTIAL_PREFIX}{alive}-abc.part", inbox / f"{PARTIAL_PREFIX}{alive}-def.part"
    orphan = inbox / f"{PARTIAL_PREFIX}{dead.pid}-ghi.part"  # young, but its download process is gone (SIGKILL)
    stale.write_bytes(b"half a photo")
    fresh.write_bytes(b"a download in progress elsewhere")
    orphan.write_bytes(b"half a photo of a killed run")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    logged_in(fake, tmp_path).fetch_new(inbox)
    assert not stale.exists() and fresh.exists() and not orphan.exists()


def test_503_backs_off_without_asking_again_until_the_wait_is_over(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=3)
    source = logged_in(fake, tmp_path)
    fake.inject("zones/list", 503, body=b"Service Unavailable", content_type="text/plain")
    with pytest.raises(SourceUnavailableError, match="503"):
        source.fetch_new(tmp_path / "inbox")
    before = len(fake.requests)
    with pytest.raises(SourceUnavailableError, match="wait"):
        source.fetch_new(tmp_path / "inbox")
    assert len(fake.requests) == before


def test_rate_limit_waits_as_long_as_asked(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=3)
    source = logged_in(fake, tmp_path)
    source.fetch_new(tmp_path / "inbox")
    fake.add_new_photo()
    fake.inject("records/query", 429, headers={"Retry-After": "900"}, body=b'{"reason": "throttled"}')
    with pytest.raises(SourceUnavailableError):
        source.fetch_new(tmp_path / "inbox")
    assert 890 < source._not_before - time.time() <= 900


def test_the_shared_library_is_synced_only_when_chosen_and_tracked_apart(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=5)
    fake.add_shared_library(limit=8)  # the same recorded photos again: ids repeat across zones
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)
    assert source.fetch_new(inbox) == 5
    assert source.assets.count(f"{SHARED_ZONE}/") == 0
    shutil.rmtree(inbox)
    source.close()
    both = logged_in(fake, tmp_path)
    both.shared_library = True  # the icloud_shared_library option
    assert both.fetch_new(inbox) == 8
    assert both.assets.count() == 5 and both.assets.count(f"{SHARED_ZONE}/") == 8
    before = len(fake.requests)
    assert both.fetch_new(inbox) == 0
    assert [p.rsplit("/", 2)[-2:] for _, p in fake.requests[before:]] == [["zones", "list"], ["zones", "list"]]
    fake.add_new_photo(index=20, shared=True)
    assert both.fetch_new(inbox) == 1


def test_bad_filenames_are_made_safe(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording("listing_photos_bad_filename.yml", limit=3)
    inbox = tmp_path / "inbox"
    logged_in(fake, tmp_path).fetch_new(inbox)
    names = files(inbox)
    assert len(group_folder(names).photos) == 3
    for name in names:
        assert "/" not in name and "\\" not in name and ".." not in name and "\x00" not in name
        assert all(ch.isprintable() for ch in name)


def test_an_asset_without_a_download_url_is_skipped(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording("listing_photos_missing_downloadUrl.yml", limit=3)
    inbox = tmp_path / "inbox"
    assert logged_in(fake, tmp_path).fetch_new(inbox) == 2
    plan = group_folder(files(inbox))
    assert len(plan.photos) == 2 and plan.videos == [] and plan.orphans == []


def test_a_live_photo_movie_arrives_beside_its_still_and_videos_go_to_the_videos_folder(
        fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording("listing_videos.yml")
    inbox, videos = tmp_path / "inbox", tmp_path / "library" / "videos"
    source = logged_in(fake, tmp_path)
    source.fetch_new(inbox)
    arrived = files(inbox)
    plan = group_folder(arrived)
    live = [name for extras in plan.photos.values() for name in extras]
    assert len(live) == 77 and all(name.endswith(".mov") for name in live)  # as recorded: 77 live photos
    assert plan.videos == [] and plan.orphans == []  # every movie in the inbox has its still
    assert len(files(videos)) == 8  # the recorded videos
    photo = next(p for p in (inbox.iterdir()))
    assert abs(photo.stat().st_mtime - time.time()) > 86400  # the capture date, years ago


def test_each_still_comes_with_icloud_s_small_rendition_for_the_sorter(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(limit=40)
    inbox, previews = tmp_path / "inbox", tmp_path / "data" / "previews"
    logged_in(fake, tmp_path).fetch_new(inbox)
    stills = {hashlib.sha256((inbox / name).read_bytes()).hexdigest() for name in group_folder(files(inbox)).photos}
    assert {p.name.removesuffix(".jpg") for p in previews.glob("*.jpg")} == stills
    marks = {p.name.removesuffix(".screenshot") for p in previews.glob("*.screenshot")}
    assert len(marks) == 6 and marks < stills  # the recording's six screenshots (assetSubtypeV2 3)
    assert all(abs(p.stat().st_mtime - time.time()) < 600 for p in previews.iterdir())  # pruned by age


def test_a_big_first_sync_comes_in_chunks_with_a_total_and_an_eta(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording(copies=4, limit=60)  # 240 photos
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)
    source.chunk = 50
    seen: list[SyncProgress] = []
    calls = 0
    while True:
        calls += 1
        source.fetch_new(inbox, seen.append)
        shutil.rmtree(inbox, ignore_errors=True)  # the sorter took them
        if not source.more_pending():
            break
    assert calls >= 3 and source.assets.count() == 240
    downloads = [p.split("/")[3] for _, p in fake.requests if "/content/" in p]
    assert len(downloads) == len(set(downloads))  # nothing fetched twice across the chunks
    assert {p.total for p in seen} == {240} and seen[-1].done == 240
    assert all(p.eta_s is not None and p.per_s for p in seen)


def test_with_videos_off_no_movie_is_downloaded(fake: FakeICloud, tmp_path: Path) -> None:
    fake.load_recording("listing_videos.yml")
    inbox, videos = tmp_path / "inbox", tmp_path / "library" / "videos"
    source = logged_in(fake, tmp_path)
    source.videos = False  # the icloud_videos option
    source.fetch_new(inbox)
    assert files(inbox) and files(videos) == []


def test_a_download_already_in_place_from_a_killed_run_is_not_put_there_twice(tmp_path: Path) -> None:
    from photosorter.adapters.icloud.files import link_into_place

    (tmp_path / "IMG_1.jpg").write_bytes(b"the photo")  # put in place, then killed before it was remembered
    (tmp_path / "temp-again").write_bytes(b"the photo")  # fetched again by the next run
    (tmp_path / "temp-other").write_bytes(b"another photo with the same name")
    assert link_into_place(tmp_path / "temp-again", "IMG_1.jpg", 0.0) == tmp_path / "IMG_1.jpg"
    assert link_into_place(tmp_path / "temp-other", "IMG_1.jpg", 0.0) == tmp_path / "IMG_1-2.jpg"

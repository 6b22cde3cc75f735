"""What iCloud sends is taken record by record and asset by asset (the real pyicloud client against the
fake iCloud HTTPS server): a malformed record or an asset whose files never arrive costs only that photo,
names are made from the file type iCloud gives, and a code Apple sent is not asked for again by the
next cron run."""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path

import pytest

from photosorter.adapters.icloud import IcloudSource
from photosorter.core.companions import group_folder
from photosorter.core.sync import MAX_DOWNLOAD_TRIES
from tests.icloudfixtures import SIGNIN, files, logged_in
from tests.servers.fake_icloud import FakeICloud, FakePhoto


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def source_at(fake: FakeICloud, tmp_path: Path, clock: Clock) -> IcloudSource:
    data = tmp_path / "data"
    return IcloudSource(fake.apple_id, fake.password, data_dir=data, state_path=data / "state.sqlite3",
                        previews=data / "previews", server=fake.url, clock=clock)


def set_name(photo: FakePhoto, name: str) -> None:
    photo.master["fields"]["filenameEnc"] = {"value": base64.b64encode(name.encode()).decode(),
                                             "type": "ENCRYPTED_BYTES"}


def stills(folder: Path) -> list[str]:
    return sorted(group_folder(files(folder)).photos)


# malformed records ---------------------------------------------------------------------------------------
BREAKAGES = {
    "undecodable filenameEnc": lambda p: p.master["fields"].__setitem__(
        "filenameEnc", {"value": "%%% not base64 %%%", "type": "ENCRYPTED_BYTES"}),
    "itemType without a value": lambda p: p.master["fields"].__setitem__("itemType", {"type": "STRING"}),
    "asset without its fields": lambda p: p.asset.__setitem__("fields", None),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_malformed_record_costs_only_its_own_photo_and_is_reported_once(
        fake: FakeICloud, tmp_path: Path, caplog: pytest.LogCaptureFixture, breakage: str) -> None:
    fake.two_factor = "none"
    fake.load_recording(limit=8)
    bad = fake.photos[3]
    BREAKAGES[breakage](bad)
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)
    caplog.set_level(logging.WARNING, "photosorter")
    source.fetch_new(inbox)  # was: the whole page rejected, nothing ever arrived
    assert source.assets.count() == 7
    assert [line for line in source.problems() if bad.id in line] == source.problems() and source.problems()
    fake.add_new_photo(index=10)
    source.fetch_new(inbox)  # the cursor moved: another walk past the bad record
    assert source.assets.count() == 8
    assert sum(bad.id in r.getMessage() for r in caplog.records) == 1
    print(f"\n{breakage}: 8 of 9 photos read past the bad record")


# downloads that never arrive ----------------------------------------------------------------------------
def test_an_asset_whose_download_always_fails_blocks_nothing_and_is_retried_apart(
        fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "none"
    fake.load_recording(limit=6)
    stuck = fake.photos[1]
    fake.break_download(stuck)
    clock = Clock()
    inbox = tmp_path / "inbox"
    source = source_at(fake, tmp_path, clock)
    assert source.auth_state().ok
    source.fetch_new(inbox)
    assert source.assets.count() == 5  # was 0: every older asset waited behind it
    assert source.problems() == []  # still being retried: not a person's problem yet
    for tag in range(MAX_DOWNLOAD_TRIES):
        fake.add_new_photo(index=10 + tag, tag=f"new{tag}")  # the cursor moves on every sync
        clock.now += 900
        source.fetch_new(inbox)
    assert source.assets.count() == 5 + MAX_DOWNLOAD_TRIES
    assert len(source.problems()) == 1 and "HTTP 404" in source.problems()[0]
    tries = fake.count(stuck.content_keys["resOriginal"])
    clock.now += 900
    source.fetch_new(inbox)
    assert fake.count(stuck.content_keys["resOriginal"]) == tries  # stuck: once a day from now on
    fake.injections.clear()  # iCloud serves it again
    clock.now += 86400
    source.fetch_new(inbox)
    assert source.assets.count() == 6 + MAX_DOWNLOAD_TRIES and source.problems() == []


# names -----------------------------------------------------------------------------------------------------
def test_names_come_from_the_file_type_icloud_gives(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "none"
    fake.load_recording(limit=12)
    nameless, rtl, exe, partial = [p for p in fake.photos
                                   if p.master["fields"]["resOriginalFileType"]["value"] == "public.jpeg"][:4]
    nameless.master["fields"].pop("filenameEnc")
    set_name(rtl, "holiday\u202egpj.exe")  # shows as "holidayexe.jpg"
    set_name(exe, "IMG_0001.exe")
    set_name(partial, "IMG_0002.JPG.part")
    inbox = tmp_path / "inbox"
    logged_in(fake, tmp_path).fetch_new(inbox)
    names = stills(inbox)
    assert f"{nameless.id}.jpg" in names  # was the asset id with no extension
    assert {"holidaygpj.jpg", "IMG_0001.jpg", "IMG_0002.JPG.jpg"} <= set(names), names
    assert not any("\u202e" in name for name in files(inbox))


def test_a_live_photo_movie_of_an_unknown_type_arrives_once_beside_its_still(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "none"
    fake.load_recording("listing_videos.yml")
    live = next(p for p in fake.photos if "resOriginalVidComplFileType" in p.master["fields"])
    live.master["fields"]["resOriginalVidComplFileType"]["value"] = "com.example/../../weird-movie"
    fake.photos = [live]
    fake.sync_version += 1
    inbox = tmp_path / "inbox"
    source = logged_in(fake, tmp_path)
    source.fetch_new(inbox)  # was: FileNotFoundError, and the still fetched again as -2 on every retry
    source.fetch_new(inbox)
    names = files(inbox)
    assert len(names) == 2 and any(n.endswith(".mov") for n in names), names


# a code Apple sent -------------------------------------------------------------------------------------------
def test_cron_syncs_after_the_trust_expired_ask_apple_once_a_day(fake: FakeICloud, tmp_path: Path) -> None:
    clock = Clock()
    for _ in range(5):  # every 10 minutes, a new process
        run = source_at(fake, tmp_path, clock)
        assert not run.auth_state().ok
        run.close()
        clock.now += 600
    assert fake.prompts == 1 and fake.count(SIGNIN) == 1  # was 5 prompts
    clock.now += 86400
    assert not source_at(fake, tmp_path, clock).auth_state().ok
    assert fake.prompts == 2


def test_the_code_of_a_prompt_sent_before_a_restart_is_taken(fake: FakeICloud, tmp_path: Path) -> None:
    clock = Clock()
    before = source_at(fake, tmp_path, clock)
    assert not before.auth_state().ok
    before.close()
    after = source_at(fake, tmp_path, clock)
    assert not after.auth_state().ok and "asked at" in after.auth_state().message
    assert after.submit_code(fake.code).ok
    assert fake.prompts == 1
    assert source_at(fake, tmp_path, clock).auth_state().ok


# the 2FA paths of 2026: "a code was sent" only when one was ------------------------------------------------
def test_a_push_bridge_that_does_not_answer_is_never_called_a_sent_code(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "bridge_down"  # Apple offers the trusted-device bridge; its websocket is down
    source = logged_in_or_waiting(fake, tmp_path)
    state = source.auth_state()
    assert not state.ok and fake.prompts == 0
    assert "sent" not in state.message.replace("no code was requested", "") and "icloud login" in state.message
    assert fake.count(SIGNIN) == 1


def test_a_push_bridge_that_does_not_answer_falls_back_to_sms_and_says_so(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "bridge_down_sms"
    source = logged_in_or_waiting(fake, tmp_path)
    state = source.auth_state()
    assert state.method == "SMS" and "sent by text message" in state.message and fake.prompts == 1
    assert "could not be reached; sent by SMS" in state.message
    assert source.submit_code(fake.code).ok


@pytest.mark.parametrize(("mode", "sent"), [("sms", True), ("trusted_device", False), ("security_key", False)])
def test_each_2fa_path_says_a_code_was_sent_only_when_photosorter_asked_for_one(
        fake: FakeICloud, tmp_path: Path, mode: str, sent: bool) -> None:
    fake.two_factor = mode
    state = logged_in_or_waiting(fake, tmp_path).auth_state()
    assert not state.ok
    assert ("Apple sent" in state.message) is sent
    assert fake.prompts == (1 if mode in ("sms", "trusted_device") else 0)


def logged_in_or_waiting(fake: FakeICloud, tmp_path: Path) -> IcloudSource:
    data = tmp_path / "data"
    return IcloudSource(fake.apple_id, fake.password, data_dir=data, state_path=data / "state.sqlite3",
                        server=fake.url)


# outages ---------------------------------------------------------------------------------------------------------
def test_icloud_out_of_reach_at_the_first_check_is_not_ok_and_no_code_is_said_to_be_sent(
        fake: FakeICloud, tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = IcloudSource(fake.apple_id, fake.password, data_dir=data, state_path=data / "state.sqlite3",
                          server=f"https://127.0.0.1:{fake.closed_port}")  # nothing listens there
    state = source.auth_state()  # was: ok=True, the state before any check
    assert not state.ok and state.method == ""
    assert state.message.startswith("iCloud could not be reached") and "code" not in state.message
    source.close()


def test_a_hanging_sign_in_endpoint_times_out_instead_of_holding_the_sync(fake: FakeICloud, tmp_path: Path) -> None:
    fake.two_factor = "none"
    data = tmp_path / "data"
    source = IcloudSource(fake.apple_id, fake.password, data_dir=data, state_path=data / "state.sqlite3",
                          server=fake.url, timeout_s=1.0)
    assert source.auth_state().ok
    fake.inject("/setup/ws/1/validate", 200, delay_s=30, times=100)  # Apple stops answering
    before = fake.count("/validate")
    started = time.monotonic()
    for _ in range(3):
        source.auth_state()  # was: waits as long as the server hangs (no timeout on sign-in requests)
    assert time.monotonic() - started < 25  # three timeouts of 1 s, not one hang of 30 s
    assert fake.count("/validate") - before == 3  # one request per check: no retry loop

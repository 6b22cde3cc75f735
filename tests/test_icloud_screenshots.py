"""iCloud's own mark of a screen capture (the record's ``assetSubtypeV2``) reaches the sorter: the real
pyicloud client against the fake iCloud, then a sorter built afresh (a restart between download and sort)
with the tiny model, which sees only colours (red: food)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from photosorter.cli.build import build_sorter, open_state
from photosorter.config import load_settings
from photosorter.records import PhotoEvent
from tests.conftest import jpeg_bytes
from tests.icloudfixtures import files, logged_in
from tests.servers.fake_icloud import FakeICloud, FakePhoto

SCREENSHOT = 20  # IMG_7388.PNG in listing_photos.yml: assetSubtypeV2 3, adjustmentType ScreenshotServices
STILL = 16  # 554468051.307982.jpg: assetSubtypeV2 0, no live-photo movie


def red(photo: FakePhoto, fake: FakeICloud, seed: int) -> None:
    """The photo and its preview look like food to the tiny model."""
    fake.serve(photo, "resOriginal", jpeg_bytes((220, 20, 20), noise_seed=seed))
    fake.serve(photo, "resJPEGMed", jpeg_bytes((220, 20, 20), noise_seed=seed + 100))


def test_a_screenshot_icloud_marks_is_sorted_as_one_however_it_looks_and_other_photos_are_not(
        fake: FakeICloud, tmp_path: Path, tiny_model: Path) -> None:
    fake.two_factor = "none"
    shot, still = fake.add_new_photo(index=SCREENSHOT, tag="shot"), fake.add_new_photo(index=STILL, tag="still")
    red(shot, fake, 1)
    red(still, fake, 2)
    source = logged_in(fake, tmp_path)
    before = len(fake.requests)
    assert source.fetch_new(tmp_path / "inbox") == 2
    print(f"\nrequests for a sync of 2 photos: {len(fake.requests) - before}")
    source.close()  # the process ends here; the mark waits on disk beside the previews
    options = {"library": str(tmp_path / "lib"), "data": str(tmp_path / "data"), "model": str(tiny_model),
               "faces": False, "settle_seconds": 0}
    settings = load_settings(options, environ={}, dotenv_path=tmp_path / "none")
    events: list[PhotoEvent] = []
    state = open_state(settings)
    try:
        sorter = build_sorter(settings, state, on_sorted=events.append)
        sorter.sort_folder(tmp_path / "inbox")
        assert files(tmp_path / "data" / "previews") == []  # previews and the mark file go once sorted
        assert sorter.resort(["screenshot", "food"]) == {}  # the state remembers what iCloud said
    finally:
        state.close()
    assert sorted((e.category, Path(e.library_path).stem) for e in events) == [
        ("food", Path(still.filename).stem), ("screenshot", Path(shot.filename).stem)]
    assert [Path(p).stem for p in files(tmp_path / "lib" / "screenshot")] == [Path(shot.filename).stem]


ODD_SUBTYPES = [("3", "STRING"), ("Screenshot", "STRING"), (10**30, "INT64"), (-3, "INT64"), (True, "INT64"),
                ({"value": 3}, "STRING"), ([3], "STRING"), (None, "INT64")]


def test_subtypes_that_are_not_a_screenshot_number_are_ignored_with_at_most_one_log_line(
        fake: FakeICloud, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake.two_factor = "none"
    photos = [fake.add_new_photo(index=SCREENSHOT + n % 6, tag=f"odd{n}") for n in range(len(ODD_SUBTYPES))]
    for photo, (value, kind) in zip(photos, ODD_SUBTYPES, strict=True):
        photo.asset["fields"]["assetSubtypeV2"] = {"value": value, "type": kind}
    source = logged_in(fake, tmp_path)
    caplog.set_level(logging.DEBUG, "photosorter")
    source.fetch_new(tmp_path / "inbox")
    delivered = [p for p in photos if source.assets.known(p.id) and source.assets.problem(p.id) is None]
    print(f"\n{len(delivered)} of {len(photos)} delivered; the others are records pyicloud rejects, set aside")
    assert len(delivered) >= 5 and len(delivered) + len(source.problems()) == len(photos)
    assert not [name for name in files(tmp_path / "data" / "previews") if name.endswith(".screenshot")]
    assert sum("subtype" in r.getMessage() for r in caplog.records) == 1

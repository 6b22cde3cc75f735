"""``icloud_edited``: a photo edited in Photos arrives as its original (the default), as its edit (the
CPLAsset's ``resJPEGFullRes``, a JPEG), or both, against the fake iCloud serving the recorded records."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from photosorter.adapters.icloud import IcloudSource
from tests.icloudfixtures import files
from tests.servers.fake_icloud import FakeICloud

EDITED = 20  # IMG_7388.PNG in listing_photos.yml: a screenshot marked up in Photos (resJPEGFull on its asset)
PLAIN = 16  # 554468051.307982.jpg: never edited


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("mode", "inbox_names", "downloads"), [
    ("original", ["554468051.307982.jpg", "IMG_7388.png"], 4),  # each: original + medium preview
    ("edited", ["554468051.307982.jpg", "IMG_7388.jpg"], 4),  # the edit + the edit's thumb as its preview
    ("both", ["554468051.307982.jpg", "IMG_7388-edited.jpg", "IMG_7388.png"], 5),
])
def test_an_edited_photo_arrives_as_icloud_edited_says_and_an_unedited_one_as_always(
        fake: FakeICloud, tmp_path: Path, mode: str, inbox_names: list[str], downloads: int) -> None:
    fake.two_factor = "none"
    edited, plain = fake.add_new_photo(index=EDITED, tag="edited"), fake.add_new_photo(index=PLAIN, tag="plain")
    data = tmp_path / "data"
    source = IcloudSource(fake.apple_id, fake.password, data_dir=data, state_path=data / "state.sqlite3",
                          previews=data / "previews", server=fake.url, edited=mode)
    assert source.auth_state().ok
    inbox = tmp_path / "inbox"
    assert source.fetch_new(inbox) == len(inbox_names)
    assert files(inbox) == inbox_names
    assert fake.count("/content/") == downloads  # listing requests are the same in every mode
    content = {name: fake.contents[edited.content_keys[name]] for name in ("resOriginal", "asset:resJPEGFull")}
    if mode != "original":
        edit_name = "IMG_7388.jpg" if mode == "edited" else "IMG_7388-edited.jpg"
        assert (inbox / edit_name).read_bytes() == content["asset:resJPEGFull"]
    if mode != "edited":
        assert (inbox / "IMG_7388.png").read_bytes() == content["resOriginal"]
    assert (inbox / "554468051.307982.jpg").read_bytes() == fake.contents[plain.content_keys["resOriginal"]]
    previews = {p.stem for p in (data / "previews").glob("*.jpg")}
    assert {sha((inbox / name).read_bytes()) for name in inbox_names if not name.endswith("-edited.jpg")} == previews

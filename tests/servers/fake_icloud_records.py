"""What the fake iCloud serves, from the recorded exchanges in ../shared/icloud-recorded (icloudpd's
cassettes): the recordings parsed once, the photo records in them, and the photo and movie bytes the fake
makes up for each asset (``FakePhoto``), and a big library made as it is read (``GeneratedLibrary``)."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import yaml
from PIL import Image

if TYPE_CHECKING:
    from tests.servers.fake_icloud import FakeICloud

RECORDED = Path(os.environ.get("PHOTOSORTER_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared")
                ).resolve() / "icloud-recorded"
SHARED_ZONE = "SharedSync-00000000-1111-2222-3333-444444444444"  # as recorded: the Shared Library's zone


# recordings -------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    pass


def _construct_python_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_python_tag)


@functools.cache
def recorded_interactions(name: str) -> tuple[dict[str, Any], ...]:
    """The exchanges of one recording, parsed once per process (YAML parsing takes seconds; callers read)."""
    with open(RECORDED / name, encoding="utf-8") as handle:
        return tuple(yaml.load(handle, Loader=_Loader)["interactions"])


def recorded_body(name: str, uri_part: str, *, contains: str = "") -> str:
    """The response body of the first recorded exchange whose URI holds ``uri_part``."""
    for interaction in recorded_interactions(name):
        body = interaction["response"]["body"].get("string") or ""
        if uri_part in interaction["request"]["uri"] and contains in str(body):
            return body if isinstance(body, str) else body.decode()
    raise KeyError(f"{name}: no exchange for {uri_part}")


def recorded_photo_records(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(CPLMaster, CPLAsset) pairs of the first photo listing in a recording, in the recorded order."""
    data = json.loads(recorded_body(name, "records/query", contains="CPLMaster"))
    masters = [r for r in data["records"] if r["recordType"] == "CPLMaster"]
    assets = {r["fields"]["masterRef"]["value"]["recordName"]: r for r in data["records"]
              if r["recordType"] == "CPLAsset"}
    return [(m, assets[m["recordName"]]) for m in masters if m["recordName"] in assets]


# content ----------------------------------------------------------------------------------------------
def jpeg_for(seed: str, size: tuple[int, int] = (64, 48)) -> bytes:
    digest = hashlib.sha256(seed.encode()).digest()
    image = Image.new("RGB", size, (digest[0], digest[1], digest[2]))
    image.putpixel((0, 0), (digest[3], digest[4], digest[5]))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def movie_for(seed: str) -> bytes:
    return b"\x00\x00\x00\x14ftypqt  " + hashlib.sha256(seed.encode()).digest() * 64


@dataclass
class FakePhoto:
    master: dict[str, Any]
    asset: dict[str, Any]
    content_keys: dict[str, str] = field(default_factory=dict)  # resource prefix -> its /content/B/<key>

    @property
    def id(self) -> str:
        return str(self.asset["recordName"])

    @property
    def filename(self) -> str:
        return base64.b64decode(self.master["fields"]["filenameEnc"]["value"]).decode("utf-8", "replace")


class GeneratedLibrary(Sequence[FakePhoto]):
    """``count`` photos, the recorded ones over and over with ids ``<recorded>-g<rank>``, made when a query
    reads them and never kept: the server's memory stays flat however big the library. Rank 0 is the
    newest, as in ``FakeICloud.photos``."""

    def __init__(self, fake: FakeICloud, pairs: list[tuple[dict[str, Any], dict[str, Any]]], count: int) -> None:
        self.fake, self.pairs, self.size = fake, pairs, count

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> FakePhoto: ...

    @overload
    def __getitem__(self, index: slice) -> list[FakePhoto]: ...

    def __getitem__(self, index: int | slice) -> FakePhoto | list[FakePhoto]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if not -self.size <= index < self.size:
            raise IndexError(index)
        rank = index % self.size
        master, asset = self.pairs[rank % len(self.pairs)]
        return self.fake._adopt(master, asset, f"g{rank}", bodies=False)


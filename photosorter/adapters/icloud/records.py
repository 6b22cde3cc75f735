"""Reading iCloud's photo records one by one, so that one malformed record costs only its own photo.

pyicloud validates a whole page of the added-date index at once: one record with an undecodable
``filenameEnc`` or a ``itemType`` without a value makes it reject the page (``CloudKitApiError``
"Query response validation failed", with the raw page attached). Such a page is read again here from
that raw page, record by record: the records that validate become photos as pyicloud would build them,
and each bad one is named by its asset id. An asset on the retry list is looked up by id
(``records/lookup``), since the listing walk may never come back to it.

A record also says what kind of asset it is: ``assetSubtypeV2`` 3 is a screen capture (what pyicloud's
XMP writer calls ``Screenshot``, and what the Screenshots smart album lists), read from the listing
already fetched: no request more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pyicloud.common.cloudkit.base import resolve_cloudkit_validation_extra
from pyicloud.common.cloudkit.client import CloudKitApiError
from pyicloud.common.cloudkit.models import CKQueryResponse, CKRecord, CKZoneIDReq
from pyicloud.services.photos_cloudkit import DirectionEnum
from pyicloud.services.photos_cloudkit.mappers import build_photo_resource, record_field_value

log = logging.getLogger(__name__)

SCREENSHOT_SUBTYPE = 3  # CPLAsset assetSubtypeV2 of a screen capture (0: a still, 2: a live photo)
# An edit's renditions are on the CPLAsset (the CPLMaster holds the original's): icloudpd's "adjusted" size
EDIT_PREFIXES = {"edited": "resJPEGFull", "edited_medium": "resJPEGMed", "edited_thumb": "resJPEGThumb"}


@dataclass(frozen=True)
class Page:
    """One window of the added-date index: the photos read, the asset ids that could not be read (with
    why), and how many assets the window held in all (the walk advances by that)."""

    photos: list[Any]
    bad: list[tuple[str, str]]
    size: int


def read_page(album: Any, rank: int, page_size: int) -> Page:
    """The newest-first window of ``page_size`` assets ending at ``rank``. The raw page is kept as it
    arrives, so that an asset pyicloud drops without a word (no master to pair with) is named, the walk
    advances by what the page held (a short page is the last one), and a page pyicloud rejects as a
    whole is read record by record."""
    http = getattr(getattr(getattr(album, "_client", None), "_client", None), "_http", None)
    if http is None:  # pyicloud's legacy (untyped) path: no raw page to read from
        photos = list(album._get_photos_at(rank, DirectionEnum.DESCENDING, page_size))
        return Page(photos, [], len(photos))
    raw_pages: list[Any] = []
    post = http.post

    def keep_raw(path: str, payload: dict[str, Any], **kwargs: Any) -> Any:
        data = post(path, payload, **kwargs)
        if path == "/records/query":
            raw_pages.append(data)
        return data

    http.post = keep_raw
    try:
        photos = list(album._get_photos_at(rank, DirectionEnum.DESCENDING, page_size))
    except CloudKitApiError as exc:
        payload = getattr(exc, "payload", None)
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            raise
        return _read_records(album, payload["records"])
    finally:
        del http.post  # pyicloud's own method again
    raws = raw_pages[-1].get("records") if raw_pages and isinstance(raw_pages[-1], dict) else None
    if not isinstance(raws, list):
        return Page(photos, [], len(photos))
    return Page(photos, _unpaired(raws, {p.id for p in photos}, []), _held(raws))


def _validated(raw: object) -> CKRecord | None:
    try:
        response = CKQueryResponse.model_validate({"records": [raw]}, extra=resolve_cloudkit_validation_extra())
    except ValidationError:
        return None
    record = response.records[0] if response.records else None
    return record if isinstance(record, CKRecord) else None


def _master_of(raw: dict[str, Any]) -> str:
    fields = raw.get("fields")
    ref = fields.get("masterRef") if isinstance(fields, dict) else None
    value = ref.get("value") if isinstance(ref, dict) else None
    return str(value.get("recordName", "")) if isinstance(value, dict) else ""


def _assets(raws: list[Any]) -> list[dict[str, Any]]:
    return [r for r in raws if isinstance(r, dict) and r.get("recordType") == "CPLAsset"]


def _held(raws: list[Any]) -> int:
    """How many assets a page held: its assets, or its masters when an asset record came garbled."""
    masters = sum(1 for r in raws if isinstance(r, dict) and r.get("recordType") == "CPLMaster")
    return max(len(_assets(raws)), masters)


def _name(raw: object) -> str:
    return str(raw.get("recordName", "?")) if isinstance(raw, dict) else "?"


def _unpaired(raws: list[Any], read: set[str], bad: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The assets of a page that became no photo and are not yet named in ``bad``."""
    named = read | {asset_id for asset_id, _ in bad}
    return [(_name(r), "its record names no photo master") for r in _assets(raws) if _name(r) not in named]


def _read_records(album: Any, raws: list[Any]) -> Page:
    good: list[CKRecord] = []
    bad_masters: set[str] = set()
    bad: list[tuple[str, str]] = []
    for raw in raws:
        record = _validated(raw)
        if record is not None:
            good.append(record)
            continue
        kind = raw.get("recordType") if isinstance(raw, dict) else None
        if kind == "CPLMaster":
            bad_masters.add(_name(raw))
        else:
            bad.append((_name(raw), f"its {kind if isinstance(kind, str) else 'unknown'} record is malformed"))
    for raw in _assets(raws):  # an asset whose master cannot be read is lost with it
        if _master_of(raw) in bad_masters:
            bad.append((_name(raw), "its CPLMaster record is malformed"))
    photos = list(album._process_photo_list_response(good))
    bad += _unpaired(raws, {p.id for p in photos}, bad)
    log.debug("iCloud: read a rejected page record by record: %d photos, %d unreadable", len(photos), len(bad))
    return Page(photos, bad, _held(raws))


def can_look_up(library: Any) -> bool:
    """Whether assets of ``library`` can be looked up by id (pyicloud's typed CloudKit client)."""
    return getattr(library, "_client", None) is not None


def lookup_asset(library: Any, asset_id: str) -> Any | None:
    """The photo with iCloud asset id ``asset_id`` (``records/lookup``), or None when it is gone."""
    client = library._client
    zone = CKZoneIDReq(**library.zone_id)
    asset = next((r for r in client.lookup(record_names=[asset_id], zone_id=zone).records
                  if isinstance(r, CKRecord) and r.recordName == asset_id), None)
    if asset is None:
        return None
    master_name = _master_of(asset.model_dump(mode="json"))
    master = next((r for r in client.lookup(record_names=[master_name], zone_id=zone).records
                   if isinstance(r, CKRecord) and r.recordName == master_name), None)
    if master is None:
        return None
    return library.asset_type(library.service, master, asset, library=library)


def screenshot_mark(photo: Any) -> bool | None:
    """Whether iCloud's record marks the asset a screen capture; None when its ``assetSubtypeV2`` holds
    something other than a whole number (to be ignored: it says nothing)."""
    record = getattr(photo, "asset_record", None)
    try:
        value = record_field_value(record, "assetSubtypeV2") if record is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
    if value is None:
        return False
    return value == SCREENSHOT_SUBTYPE if type(value) is int else None


def edit_resources(photo: Any) -> dict[str, Any]:
    """The renditions of the asset's edit (``core.sync.EDIT_VERSIONS``) that can be downloaded, from its
    CPLAsset record already listed; none for an unedited asset or a record that cannot say."""
    record = getattr(photo, "asset_record", None)
    found: dict[str, Any] = {}
    for key, prefix in EDIT_PREFIXES.items():
        try:
            resource = build_photo_resource(key=key, prefix=prefix, master_record=record, filename=photo.filename,
                                            item_type_extensions=photo.FILE_TYPE_EXTENSIONS, is_live_photo=False,
                                            item_type_lookup=photo.ITEM_TYPES) if record is not None else None
        except (AttributeError, TypeError, ValueError, KeyError):
            resource = None
        if resource is not None and isinstance(resource.url, str) and resource.url:
            found[key] = resource
    return found

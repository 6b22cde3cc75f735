"""Decisions for syncing a remote photo library: where a walk starts and stops, what to download, file
names, waiting after errors, and what a person is told about logging in. Pure: no I/O, no clock."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from photosorter.core.companions import VIDEO_EXTENSIONS, extension, stem
from photosorter.core.naming import safe_name
from photosorter.records import SyncProgress

KNOWN_RUN_TO_STOP = 25  # consecutive already-known assets that end an incremental (newest-first) walk
RESUME_MARGIN = 100  # re-list this many ranks before a saved position: deletions shift ranks down
FIRST_SYNC_CHUNK = 500  # files one call downloads during a first sync; the rest after they are sorted
BACKOFF_FIRST_S = 60.0
BACKOFF_CAP_S = 3600.0
SCREENSHOT_SUFFIX = ".screenshot"  # a mark beside a preview: the source said the photo is a screenshot (iCloud does)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# bidi controls (a right-to-left override makes "gpj.exe" look like "exe.jpg") and zero-width characters
_INVISIBLE = re.compile("[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_PLAIN_EXTENSION = re.compile(r"\.[a-z][a-z0-9]{0,4}")
# the file type iCloud gives (a UTI) -> the extension a file of that type gets
TYPE_EXTENSIONS = {
    "public.jpeg": ".jpg", "public.heic": ".heic", "public.heif": ".heif", "public.png": ".png",
    "com.compuserve.gif": ".gif", "public.tiff": ".tiff", "org.webmproject.webp": ".webp",
    "com.apple.quicktime-movie": ".mov", "public.mpeg-4": ".mp4", "com.apple.m4v-video": ".m4v",
    "com.adobe.raw-image": ".dng", "com.canon.cr2-raw-image": ".cr2", "com.canon.cr3-raw-image": ".cr3",
    "com.canon.crw-raw-image": ".crw", "com.fuji.raw-image": ".raf", "com.nikon.nrw-raw-image": ".nrw",
    "com.nikon.raw-image": ".nef", "com.olympus.or-raw-image": ".orf", "com.olympus.raw-image": ".orf",
    "com.panasonic.rw2-raw-image": ".rw2", "com.pentax.raw-image": ".pef", "com.sony.arw-raw-image": ".arw",
}
_SAME_TYPE = {".jpg": {".jpg", ".jpeg", ".jpe"}, ".tiff": {".tif", ".tiff"}, ".heic": {".heic", ".hif"},
              ".heif": {".heif", ".hif", ".heic"}, ".mp4": {".mp4", ".m4v"}, ".m4v": {".m4v", ".mp4"}}


@dataclass(frozen=True)
class WalkPlan:
    """How one sync lists the newest-first feed: a head walk that stops at a run of known assets,
    then (while the first full listing is unfinished) a backfill from the saved rank to the end."""

    head: bool
    backfill_from: int | None


def plan_walk(*, known_assets: int, backfill_done: bool, saved_rank: int) -> WalkPlan:
    if known_assets == 0:
        return WalkPlan(head=False, backfill_from=0)
    if backfill_done:
        return WalkPlan(head=True, backfill_from=None)
    return WalkPlan(head=True, backfill_from=max(0, saved_rank - RESUME_MARGIN))


def stop_head_walk(known_run: int) -> bool:
    return known_run >= KNOWN_RUN_TO_STOP


def listing_needed(cursor: str, saved_cursor: str | None, backfill_done: bool) -> bool:
    """False when the library's sync token is the one of the last complete walk: nothing changed."""
    return not (backfill_done and saved_cursor is not None and cursor == saved_cursor)


EDITED_MODES = ("original", "edited", "both")  # the icloud_edited option
EDIT_VERSIONS = ("edited", "edited_medium", "edited_thumb")  # an edit's renditions (the CPLAsset's resJPEG*)


def plan_downloads(item_type: str, is_live_photo: bool, versions: tuple[str, ...], *,
                   videos: bool, previews: bool = False, edited: str = "original") -> list[tuple[str, str]]:
    """(version key, role) pairs to fetch for an asset, in order: the original still (``photo``); when
    videos are kept, a live photo's movie (``live``, saved beside the still) or a video's original
    (``video``); and iCloud's own ~2048 px JPEG rendition of a still (``preview``), which the sorter
    decodes instead of the original: a few ms against 36 ms for a 12 MP JPEG even in draft mode, about
    1 s for a HEIC without an embedded thumbnail, and a RAW or PNG it reads at all or slowly.

    An edited still (``edited`` among the versions: Photos' rendering of the edit, a JPEG) with
    ``edited`` "edited" is the edit instead (its own small rendition as the preview); with "both" the
    edit comes too, as a photo of its own beside the original (``edit``)."""
    if item_type == "movie":
        return [("original", "video")] if videos and "original" in versions else []
    use_edit = edited == "edited" and "edited" in versions
    still = "edited" if use_edit else "original"
    wanted = [(still, "photo")] if still in versions else []
    if videos and is_live_photo and "original_video" in versions:
        wanted.append(("original_video", "live"))
    if wanted and edited == "both" and "edited" in versions:
        wanted.append(("edited", "edit"))
    if wanted and previews:
        renditions = ("edited_medium", "edited_thumb") if use_edit else ("medium", "thumb")
        rendition = next((key for key in renditions if key in versions), None)
        if rendition is not None:
            wanted.append((rendition, "preview"))
    return wanted


def edited_name(photo_name: str, file_type: str | None) -> str:
    """The name of an edit kept beside its original: ``IMG_1.HEIC`` -> ``IMG_1-edited.jpg`` (its own stem,
    so a live photo's movie still pairs with the original alone)."""
    return typed_name(f"{stem(photo_name)}-edited", file_type or "public.jpeg")


def sync_progress(done: int, total: int | None, downloaded: int, *, first_done: int, elapsed_s: float) -> SyncProgress:
    """Progress of a first sync that started this run at position ``first_done``."""
    per_s = (done - first_done) / elapsed_s if elapsed_s > 0 else None
    eta_s = None
    if per_s and total is not None:
        eta_s = max(0.0, (total - done) / per_s)
    return SyncProgress(done=done, total=total, downloaded=downloaded, per_s=per_s, eta_s=eta_s)


def describe_progress(progress: SyncProgress) -> str:
    """One log line: ``1200/33161 listed (3.6%), 1180 downloaded, 4.1/s, about 2:10:00 left``."""
    listed = f"{progress.done}/{progress.total} listed" if progress.total else f"{progress.done} listed"
    if progress.total:
        listed += f" ({100.0 * min(progress.done, progress.total) / progress.total:.1f}%)"
    parts = [listed, f"{progress.downloaded} downloaded"]
    if progress.per_s is not None:
        parts.append(f"{progress.per_s:.1f}/s")
    if progress.eta_s is not None:
        seconds = int(progress.eta_s)
        parts.append(f"about {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d} left")
    return ", ".join(parts)


def local_name(filename: str, asset_id: str, file_type: str | None = None) -> str:
    """A file name for an iCloud asset: no path separators, no ``..``, no control, bidi or zero-width
    characters, and the extension of the file type iCloud gives (``file_type``, a UTI), whatever the
    name says (``IMG_1.exe`` of a JPEG is ``IMG_1.jpg``; a nameless one gets its asset id and ``.jpg``)."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", filename))
    text = _CONTROL.sub("_", text).replace("\\", "_").replace("/", "_").replace(":", "_")
    while ".." in text:
        text = text.replace("..", ".")
    name = safe_name(text.strip(". ")) if text.strip(". ") else ""
    if not name or name == "photo":
        name = safe_name(_CONTROL.sub("_", _INVISIBLE.sub("", asset_id)).replace("/", "_")) or "photo"
    return typed_name(name, file_type)


def typed_name(name: str, file_type: str | None) -> str:
    """``name`` with the extension of ``file_type``: kept when it already says that type (any case or
    spelling), replaced when it is a plain extension that says another, else appended. An unknown type
    leaves the name as it is."""
    wanted = TYPE_EXTENSIONS.get(file_type or "")
    if wanted is None:
        return name
    current = extension(name)
    if current in _SAME_TYPE.get(wanted, {wanted}):
        return name
    base = stem(name) if _PLAIN_EXTENSION.fullmatch(current) else name
    return base + wanted


def companion_name(photo_name: str, movie_filename: str, file_type: str | None = None) -> str:
    """The live-photo movie's name: the still's stem with the movie's extension (from its file type, else
    a video extension of its name, else ``.mov``): never a path or a still's name, whatever iCloud sends
    (pyicloud names the movie of an unknown type like its still)."""
    wanted = TYPE_EXTENSIONS.get(file_type or "")
    if wanted not in VIDEO_EXTENSIONS:
        given = extension(_INVISIBLE.sub("", movie_filename))
        wanted = given if given in VIDEO_EXTENSIONS else ".mov"
    return stem(photo_name) + wanted


MAX_DOWNLOAD_TRIES = 3  # syncs in a row that try an asset whose files do not arrive; then once a day
STUCK_RETRY_S = 86400.0
RECORD_PROBLEM_SHOWN_S = 86400.0  # an unreadable record is a problem for a day (the log says it once)


def retry_due(tries: int, last_s: float, now_s: float) -> bool:
    """Whether an asset whose download failed ``tries`` times, the last at ``last_s``, is tried again now."""
    return tries < MAX_DOWNLOAD_TRIES or now_s - last_s >= STUCK_RETRY_S


def asset_problem_line(kind: str, name: str, detail: str, tries: int, first_s: float, now_s: float) -> str | None:
    """What the status (MQTT problem, digest) says about an asset photosorter could not take, or None
    while it is not worth a person's attention (a download still being retried, an old bad record)."""
    if kind == "download" and tries >= MAX_DOWNLOAD_TRIES:
        return f"iCloud photo {name} did not download {tries} times ({detail}); skipped, tried again daily"
    if kind == "record" and now_s - first_s < RECORD_PROBLEM_SHOWN_S:
        return f"iCloud photo {name} could not be read ({detail}); skipped"
    return None


def backoff_s(failures: int, retry_after_s: float | None = None) -> float:
    """Wait before the next try: what the server asked for, else doubling from a minute, capped at an hour."""
    if retry_after_s is not None and retry_after_s > 0:
        return min(float(retry_after_s), BACKOFF_CAP_S * 6)
    return float(min(BACKOFF_FIRST_S * (2.0 ** max(0, failures - 1)), BACKOFF_CAP_S))


DELIVERY_NAMES = {"trusted_device": "trusted device", "sms": "SMS", "security_key": "security key",
                  "unknown": "trusted device"}


def describe_code_request(method: str, notice: str | None = None, *, sent: bool = False) -> tuple[str, str]:
    """(message, method) shown when a code is needed; the method names where the code arrives. Only a
    delivery photosorter saw start (``sent``: an SMS request, the trusted-device push bridge) is called a
    code that was sent; otherwise the message says a code may show on the devices, or how to ask again."""
    shown = DELIVERY_NAMES.get(method, "trusted device")
    where = {"SMS": "by text message to your trusted phone number",
             "trusted device": "to your trusted Apple devices (iPhone, iPad, Mac)"}.get(shown, "")
    enter = "Enter it in Home Assistant (iCloud 2FA code) or run: photosorter icloud code 123456"
    if sent:
        message = f"iCloud needs the 6-digit code Apple sent {where}. {enter}"
    else:
        message = ("iCloud needs a 6-digit code. Apple may show one on your trusted Apple devices (iPhone, iPad, "
                   f"Mac); no code was requested by photosorter. {enter}. If none appears, run: photosorter "
                   "icloud login")
    if notice:
        message += f" ({notice})"
    return message, shown


def describe_security_key(key_names: list[str] | None = None) -> str:
    """What a person reads when the Apple ID signs in with a security key (FIDO2, USB or NFC): photosorter,
    an add-on with no key to touch, cannot answer it and no code was sent; and what to do instead.
    ``key_names`` are the names Apple lists for the account's keys (shown cleaned and short)."""
    names = [("".join(c for c in str(n) if c.isprintable()).strip())[:40] for n in key_names or []]
    named = f" ({', '.join(n for n in names if n)})" if any(names) else ""
    return (f"This Apple ID signs in with a security key only{named}: photosorter cannot use a security key and "
            "no code was sent. To sync it, remove the security keys from the Apple ID (iPhone: Settings > your "
            "name > Sign-In & Security > Security Keys > Remove All Security Keys), then run: photosorter icloud "
            "login")


CODE_TRIES = 5  # codes checked with Apple per CODE_WINDOW_S: Apple locks an account after repeated wrong codes
CODE_WINDOW_S = 3600.0


def code_wait_s(tried_at: list[float], now: float) -> float:
    """0 when another code may be checked with Apple now, else how long until one may (``tried_at``: when
    the earlier codes were checked)."""
    recent = sorted(t for t in tried_at if now - t < CODE_WINDOW_S)
    return 0.0 if len(recent) < CODE_TRIES else recent[-CODE_TRIES] + CODE_WINDOW_S - now


def normalise_code(text: str) -> str | None:
    """The 6 ASCII digits of a code as typed ("123 456", "123-456"), or None (``\\d`` would also take
    full-width ``１２３４５６`` and Arabic-Indic digits, which are not what Apple sent)."""
    digits = re.sub(r"[\s-]", "", text)
    return digits if re.fullmatch(r"[0-9]{6}", digits) else None

"""The daily digest: which photos to ask about (what teaches most first), their short numbers, and the text and
HTML a person reads. Pure: thumbnails arrive as content ids, the message is assembled elsewhere."""

from __future__ import annotations

import datetime as dt
import heapq
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from photosorter.core.asking import order_to_ask
from photosorter.records import Category, Failure

MAX_REVIEW = 40  # photos numbered in one digest
# The least sure photos the digest chooses among (by teaching value): after a first sync of 100k photos every
# one is new, and weighing all of them meant loading 100k embeddings (+500 MB, 4.5 s) for 40 numbers.
REVIEW_POOL = 5000
DIGEST_ID = re.compile(r"\[(ps-[a-z0-9]{6})\]", re.IGNORECASE)
FOLDER_TITLES = {"_unsure": "not sure (in _unsure)", "_duplicates": "duplicates", "_failed": "could not read"}


@dataclass(frozen=True)
class DigestPhoto:
    """A photo sorted since the last digest, as the digest shows it."""

    photo_id: int
    filename: str
    category: str
    score: float
    margin: float
    unsure: bool


@dataclass(frozen=True)
class DigestEntry:
    number: int
    photo: DigestPhoto
    image_cid: str | None = None  # content id of its inline thumbnail, None when there is none


@dataclass(frozen=True)
class Digest:
    digest_id: str
    day: dt.date
    entries: tuple[DigestEntry, ...]
    categories: tuple[Category, ...]
    counts: dict[str, int] = field(default_factory=dict)  # folder -> photos sorted into it since the last digest
    failures: tuple[Failure, ...] = ()
    attention: tuple[str, ...] = ()
    more: int = 0  # photos sorted but not numbered (beyond MAX_REVIEW)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def empty(self) -> bool:
        return not self.total and not self.failures and not self.attention


def _least_sure_first(photo: DigestPhoto) -> tuple[bool, float, float, int]:
    return (not photo.unsure, photo.margin, photo.score, photo.photo_id)


def review_pool(photos: Iterable[DigestPhoto], pool: int = REVIEW_POOL) -> list[DigestPhoto]:
    """The ``pool`` photos least sure of their category, least sure first: the only ones whose embeddings
    ``pick_for_review`` needs."""
    return heapq.nsmallest(pool, photos, key=_least_sure_first)


def pick_for_review(photos: Iterable[DigestPhoto], max_photos: int = MAX_REVIEW,
                    vectors: Mapping[int, np.ndarray] | None = None) -> list[DigestPhoto]:
    """The photos to ask about. With their embeddings (``vectors`` by photo id): those whose label would
    teach the most, unsure and unlike each other, spread over categories (``core/asking.py``); without:
    least sure first (photos in _unsure, then by smallest margin)."""
    ordered = sorted(photos, key=_least_sure_first)
    if (vectors is None or not ordered or any(p.photo_id not in vectors for p in ordered)
            or len({np.asarray(vectors[p.photo_id]).size for p in ordered}) != 1):  # one model's embeddings only
        return ordered[:max_photos]
    stacked = np.stack([np.asarray(vectors[p.photo_id], dtype=np.float32) for p in ordered])
    picks = order_to_ask([0.0 if p.unsure else p.margin for p in ordered], stacked, max_photos,
                         predicted=[p.category for p in ordered])
    return [ordered[i] for i in picks]


def number_photos(photos: Sequence[DigestPhoto], cids: Sequence[str | None] | None = None) -> tuple[DigestEntry, ...]:
    cids = cids if cids is not None else [None] * len(photos)
    return tuple(DigestEntry(i + 1, photo, cid) for i, (photo, cid) in enumerate(zip(photos, cids, strict=True)))


def find_digest_id(subject: str) -> str | None:
    """The digest id token (``[ps-xxxxxx]``) in a subject line, if any."""
    match = DIGEST_ID.search(subject or "")
    return match.group(1).lower() if match else None


def digest_subject(digest: Digest) -> str:
    count = digest.total
    noun = "photo" if count == 1 else "photos"
    return f"Photosorter {digest.day:%a %d %b %Y}: {count} {noun} sorted [{digest.digest_id}]"


def _other(category: str, names: Sequence[str], skip: int = 0) -> str:
    choices = [n for n in names if n != category and n != "other"] or list(names)
    return choices[skip % len(choices)]


def reply_example(digest: Digest) -> str:
    """An example reply using this digest's own numbers."""
    entries = digest.entries
    names = [c.name for c in digest.categories]
    if not entries:
        return "all ok"
    first = entries[0]
    parts = [f"{first.number} {_other(first.photo.category, names)}"]
    if len(entries) >= 3:
        parts.append(f"{entries[1].number}, {entries[2].number} {_other(entries[1].photo.category, names, 1)}")
    if len(entries) >= 2:
        parts.append(f"{entries[-1].number} ok")
    return ", ".join(parts)


def _percent(score: float) -> str:
    return f"{round(max(0.0, min(1.0, score)) * 100)}%"


def _how_to_reply(digest: Digest) -> list[str]:
    return [
        "To fix a mistake, reply to this mail: one line per photo, its number then the right category.",
        f"For example:  {reply_example(digest)}   (\"12-15 scenery\" for a range, \"all ok\" confirms every photo).",
        "Categories: " + ", ".join(c.name for c in digest.categories) + ".",
    ]


def _count_lines(digest: Digest) -> list[tuple[str, int]]:
    names = [c.name for c in digest.categories]
    order = {name: i for i, name in enumerate([*names, "_unsure", "_duplicates", "_failed"])}
    folders = sorted((k for k, v in digest.counts.items() if v), key=lambda k: (order.get(k, len(order)), k))
    return [(FOLDER_TITLES.get(k, k), digest.counts[k]) for k in folders]


def _headline(digest: Digest) -> str:
    if not digest.total:
        return f"Nothing new was sorted on {digest.day:%A %d %B %Y}."
    noun = "photo" if digest.total == 1 else "photos"
    return f"Photosorter sorted {digest.total} {noun} by {digest.day:%A %d %B %Y}."


def _closing_lists(digest: Digest) -> list[tuple[str, list[str], bool]]:
    """The lists both renderings end with: (title, lines, whether it needs the person)."""
    lists = []
    if digest.failures:
        lists.append(("Could not read (set aside in _failed)", [f"{f.name}: {f.reason}" for f in digest.failures],
                      False))
    if digest.attention:
        lists.append(("Needs your attention", list(digest.attention), True))
    return lists


def render_text(digest: Digest) -> str:
    """The plain-text alternative (also what a reply quotes)."""
    lines = [*_how_to_reply(digest), "", _headline(digest), ""]
    if digest.entries:
        lines.append("Please check these (least sure first):")
        for entry in digest.entries:
            photo = entry.photo
            flag = "  (not sure)" if photo.unsure else ""
            score = _percent(photo.score)
            lines.append(f"  #{entry.number:<3} {photo.category:<13} {score:>4}  {photo.filename}{flag}")
        if digest.more:
            lines.append(f"  … and {digest.more} more, not shown")
        lines.append("")
    if digest.counts:
        lines.append("Sorted: " + ", ".join(f"{title} {count}" for title, count in _count_lines(digest)))
        lines.append("")
    for title, items, _ in _closing_lists(digest):
        lines.append(f"{title}:")
        lines += [f"  {item}" for item in items]
        lines.append("")
    lines.append(f"Digest {digest.digest_id}")
    return "\n".join(lines) + "\n"


_CARD = ("display:inline-block;vertical-align:top;width:148px;margin:0 8px 12px 0;font:13px/1.3 -apple-system,"
         "Segoe UI,Helvetica,Arial,sans-serif;color:#222")
_IMG = "display:block;width:148px;height:148px;object-fit:cover;border-radius:8px;background:#ddd;border:0"


def render_html(digest: Digest) -> str:
    """The HTML body; thumbnails are ``cid:`` references to inline parts."""
    e = html.escape
    how = _how_to_reply(digest)
    parts = [
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">",
        f"<title>{e(digest_subject(digest))}</title></head>",
        "<body style=\"margin:0;padding:16px;background:#f6f6f4;font:14px/1.4 -apple-system,Segoe UI,Helvetica,"
        "Arial,sans-serif;color:#222\">",
        "<div style=\"max-width:680px;margin:0 auto\">",
        "<div style=\"background:#fff8d6;border:1px solid #eadb8f;border-radius:8px;padding:10px 14px;"
        "margin-bottom:16px\">",
        f"<div>{e(how[0])}</div>",
        f"<div>For example: <code style=\"background:#fff;padding:1px 5px;border-radius:4px\">"
        f"{e(reply_example(digest))}</code> &middot; <code>12-15 scenery</code> for a range &middot; "
        "<code>all ok</code> confirms every photo.</div>",
        f"<div style=\"color:#666\">{e(how[2])}</div></div>",
        f"<h2 style=\"font-size:18px;margin:0 0 12px\">{e(_headline(digest))}</h2>",
    ]
    if digest.entries:
        parts.append("<h3 style=\"font-size:15px;margin:0 0 8px\">Please check these (least sure first)</h3><div>")
        for entry in digest.entries:
            photo = entry.photo
            image = (f"<img src=\"cid:{e(entry.image_cid)}\" alt=\"#{entry.number}\" width=\"148\" height=\"148\" "
                     f"style=\"{_IMG}\">" if entry.image_cid else f"<div style=\"{_IMG}\"></div>")
            badge = ("<span style=\"background:#f3c0b5;border-radius:4px;padding:0 4px;font-size:11px\">not sure"
                     "</span>" if photo.unsure else "")
            parts.append(
                f"<div style=\"{_CARD}\">{image}<div style=\"margin-top:4px\"><b style=\"font-size:15px\">"
                f"#{entry.number}</b> {e(photo.category)} <span style=\"color:#777\">{_percent(photo.score)}"
                f"</span> {badge}</div><div style=\"color:#999;font-size:11px;overflow:hidden;"
                f"text-overflow:ellipsis;white-space:nowrap\">{e(photo.filename)}</div></div>")
        parts.append("</div>")
        if digest.more:
            parts.append(f"<p style=\"color:#666\">… and {digest.more} more, not shown.</p>")
    if digest.counts:
        parts.append("<h3 style=\"font-size:15px;margin:12px 0 6px\">Sorted</h3><table style=\"border-collapse:"
                     "collapse\">")
        for title, count in _count_lines(digest):
            parts.append(f"<tr><td style=\"padding:1px 16px 1px 0\">{e(title)}</td>"
                         f"<td style=\"text-align:right\">{count}</td></tr>")
        parts.append("</table>")
    for title, items, urgent in _closing_lists(digest):
        colour = ";color:#a33" if urgent else ""
        parts.append(f"<h3 style=\"font-size:15px;margin:12px 0 6px{colour}\">{e(title)}</h3><ul>")
        parts += [f"<li>{e(item)}</li>" for item in items]
        parts.append("</ul>")
    parts.append(f"<p style=\"color:#999;font-size:11px;margin-top:16px\">Digest {e(digest.digest_id)}</p>")
    parts.append("</div></body></html>")
    return "\n".join(parts)


def render_confirmation(applied: Sequence[str], problems: Sequence[str], ignored: Sequence[str]) -> str:
    """The short reply sent after a correction mail was applied."""
    lines: list[str] = []
    if applied:
        lines.append("Done:")
        lines += [f"  {line}" for line in applied]
    else:
        lines.append("Nothing was changed.")
    if problems:
        lines += ["", "Not understood (nothing changed for these; reply again to fix them):"]
        lines += [f"  {line}" for line in problems]
    if ignored:
        lines += ["", "Ignored lines without a photo number: " + "; ".join(f"'{line}'" for line in ignored)]
    return "\n".join(lines) + "\n"

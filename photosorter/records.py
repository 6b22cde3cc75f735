"""Frozen records that flow between stages. No I/O here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


@dataclass(frozen=True)
class Category:
    name: str
    title: str
    prompts: tuple[str, ...]


class PhotoStatus(StrEnum):
    NEW = "new"
    PLACED = "placed"
    UNSURE = "unsure"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    EXAMPLE = "example"  # labelled photo kept outside the library
    REMOVED = "removed"  # deleted from the library by the person: gone on purpose, never fetched again


@dataclass(frozen=True)
class Prediction:
    """What the classifier decided for one photo."""

    category: str
    score: float
    margin: float
    unsure: bool
    probabilities: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Neighbour:
    """A labelled photo near the one being classified (cosine similarity in [-1, 1])."""

    category: str
    similarity: float
    photo_id: int = 0  # its key in the index (0 where unknown)


@dataclass(frozen=True)
class Face:
    """One face found in a photo. Box (left, top, width, height) and the five landmarks (x, y pairs: eyes,
    nose, mouth corners) are fractions of the image's width and height; faces are numbered from 1, left to right."""

    number: int
    box: tuple[float, float, float, float]
    landmarks: tuple[float, ...]
    score: float

    @property
    def area(self) -> float:
        """Share of the image the box covers."""
        return self.box[2] * self.box[3]


@dataclass(frozen=True)
class MeFace:
    """One of the person's reference faces: which face of which photo, and its embedding."""

    id: int
    photo_id: int
    number: int
    created: float
    vector: object = field(repr=False, compare=False)  # numpy float32 [256]; records stay numpy-free
    photo_path: str = ""  # library path, or where the photo was when it was labelled


@dataclass(frozen=True)
class PhotoRecord:
    """A photo as the state store knows it."""

    id: int
    sha256: str
    source_path: str
    library_path: str | None
    category: str | None
    score: float | None
    margin: float | None
    status: PhotoStatus
    reason: str | None = None
    duplicate_of: int | None = None
    near_group: int | None = None


@dataclass(frozen=True)
class Move:
    """A journal entry: written before a file moves, closed after."""

    id: int
    photo_id: int | None
    src: Path
    dst: Path
    follows: int | None = None  # a companion file's move follows its photo's move (this id)


@dataclass(frozen=True)
class PhotoEvent:
    """One photo sorted: what automations (MQTT events) and the digest hear about."""

    photo_id: int
    category: str
    score: float
    margin: float
    unsure: bool
    filename: str
    library_path: str  # relative to the library root


@dataclass(frozen=True)
class Failure:
    name: str
    reason: str


@dataclass
class RunReport:
    """Summary of one sort run (mutable while the run fills it in)."""

    placed: dict[str, int] = field(default_factory=dict)
    unsure: int = 0
    duplicates: int = 0
    videos: int = 0  # videos on their own, moved to the videos folder unclassified
    skipped: list[Failure] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def handled(self) -> int:
        return sum(self.placed.values()) + self.unsure + self.duplicates + len(self.failed)

    def add(self, other: RunReport) -> None:
        """Fold a later run into this one (a sync sorts a first sync chunk by chunk)."""
        for category, count in other.placed.items():
            self.placed[category] = self.placed.get(category, 0) + count
        self.unsure += other.unsure
        self.duplicates += other.duplicates
        self.videos += other.videos
        self.skipped += other.skipped
        self.failed += other.failed
        self.elapsed_s += other.elapsed_s


@dataclass(frozen=True)
class AuthState:
    """Whether a source can work unattended; when not, what the person must do (shown on MQTT and by mail)."""

    ok: bool
    message: str = ""
    method: str = ""  # how the code is delivered: "trusted device", "sms", "security key", ...
    reachable: bool = True  # False: iCloud did not answer, so whether a login is needed is not known
    blocked: bool = False  # only a person can go on (rejected password, security key, old 2SA): nothing is retried

    @property
    def awaiting_code(self) -> bool:
        """A person is to enter a code (none is sent meanwhile); a security key is not a code."""
        return not self.ok and self.method not in ("", "security key")

    @property
    def login_needed(self) -> bool:
        """Not signed in, as iCloud said; an iCloud out of reach is an outage, not a login to do."""
        return not self.ok and self.reachable

    @property
    def waits_for_person(self) -> bool:
        """Nothing happens until a person acts (a code to enter, or a blocked account): not a retry."""
        return not self.ok and (self.awaiting_code or self.blocked)


@dataclass(frozen=True)
class SyncProgress:
    """A first sync's progress: library positions listed of ``total``, files downloaded, and the pace."""

    done: int
    total: int | None = None
    downloaded: int = 0
    per_s: float | None = None  # positions listed per second in this run
    eta_s: float | None = None


@dataclass(frozen=True)
class CorrectionEvent:
    """A person changed a photo's category (email reply, MQTT, CLI)."""

    photo_id: int
    old_category: str | None
    new_category: str
    source: str
    detail: str = ""


@dataclass(frozen=True)
class StatusSnapshot:
    """Everything Home Assistant shows about photosorter, at one moment."""

    library_counts: dict[str, int]
    sorted_today: int
    unsure: int
    failed: int
    last_sync: dt.datetime | None
    sync: SyncProgress | None
    auth: AuthState
    paused: bool
    problems: tuple[str, ...] = ()  # parts that are failing and being retried, one line each
    drift: str = ""  # the daily drift check's message when new photos look different lately, else ""


# mail: the daily digest and replies ------------------------------------------------------------------------
@dataclass(frozen=True)
class SentDigest:
    """A digest as recorded, so that replies can be matched to it days later."""

    digest_id: str
    message_id: str | None  # None for a day skipped because nothing happened
    sent: float  # seconds since the epoch (the end of the window it covered)
    day: str  # local date, ISO
    kind: str  # "scheduled", "manual" or "skipped"
    items: tuple[tuple[int, int, str], ...] = ()  # (number, photo id, category shown)


@dataclass(frozen=True)
class InboxMessage:
    """A message in the reply folder, headers only (the body is fetched when it is a reply to a digest)."""

    folder: str
    uidvalidity: int
    uid: int
    size: int
    headers: bytes

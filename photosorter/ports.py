"""Roles the pipeline needs, as Protocols; adapters implement them, tests may fake them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from photosorter.ml.modelspec import ModelSpec
from photosorter.records import (
    AuthState,
    CorrectionEvent,
    Face,
    InboxMessage,
    MeFace,
    Move,
    Neighbour,
    PhotoEvent,
    PhotoRecord,
    PhotoStatus,
    Prediction,
    RunReport,
    SentDigest,
    StatusSnapshot,
    SyncProgress,
)


class Embedder(Protocol):
    spec: ModelSpec

    @property
    def max_batch(self) -> int: ...

    def embed_images(self, pixels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]: ...


class Prior(Protocol):
    def __call__(self, embedding: np.ndarray, class_probs: np.ndarray | None) -> np.ndarray: ...


class Decoder(Protocol):
    def __call__(self, data: bytes, min_side: int) -> Image.Image: ...


class VectorIndex(Protocol):
    def __len__(self) -> int: ...

    def upsert(self, key: int, vector: np.ndarray, category: str) -> None: ...

    def remove(self, key: int) -> None: ...

    def search(self, vector: np.ndarray, k: int, *, exclude: int | None = None) -> list[Neighbour]: ...

    def save(self, path: Path) -> None: ...

    def compact(self) -> None: ...


class PhotoFiles(Protocol):
    def list_inbox(self, inbox: Path, skip: tuple[Path, ...] = ()) -> Iterator[tuple[Path, str | None]]: ...

    def read(self, path: Path) -> bytes: ...

    def free_path(self, folder: Path, name: str, companions: Sequence[str] = ()) -> Path: ...

    def companions(self, photo: Path) -> list[Path]: ...

    def move(self, src: Path, dst: Path, move_id: int) -> None: ...

    def settle(self, src: Path, dst: Path, move_id: int) -> bool: ...


class Previews(Protocol):
    """Small renditions a source saved for photos it delivered, by the original's sha256."""

    def get(self, sha256: str) -> bytes | None: ...

    def discard(self, sha256: str) -> None: ...

    def prune(self, older_than_s: float) -> int: ...


class StateStore(Protocol):
    def add_photo(self, sha256: str, size: int, source_path: Path,
                  status: PhotoStatus = PhotoStatus.NEW) -> int: ...

    def photos_with_sha(self, sha256: str) -> list[PhotoRecord]: ...

    def photo(self, photo_id: int) -> PhotoRecord | None: ...

    def photo_at(self, library_path: str) -> PhotoRecord | None: ...

    def record_outcome(self, photo_id: int, *, category: str | None = None, score: float | None = None,
                       margin: float | None = None, reason: str | None = None,
                       duplicate_of: int | None = None) -> None: ...

    def save_analysis(self, photo_id: int, model: str, vector: np.ndarray, dhash: int, near_group: int,
                      prediction: Prediction | None = None) -> None: ...

    def embedding(self, photo_id: int, model: str) -> np.ndarray | None: ...

    def perceptual_hashes(self) -> tuple[list[int], list[int], np.ndarray]: ...

    def add_label(self, photo_id: int, category: str, source: str, detail: str = "",
                  guess: str | None = None) -> None: ...

    def remove_label(self, photo_id: int, source: str, detail: str) -> bool: ...

    def current_labels(self) -> dict[int, str]: ...

    def labelled_embeddings(self, model: str) -> list[tuple[int, str, np.ndarray]]: ...

    def recent_embeddings(self, model: str, limit: int) -> np.ndarray: ...

    def begin_move(self, photo_id: int | None, src: Path, dst: Path, library_path: str | None,
                   status_after: PhotoStatus, follows: int | None = None) -> Move: ...

    def finish_move(self, move: Move, done: bool) -> None: ...

    def set_move_aside(self, move: Move) -> None: ...

    def pending_moves(self) -> list[Move]: ...

    def move_done(self, move_id: int) -> bool: ...

    def start_run(self, model: str) -> int: ...

    def finish_run(self, run_id: int, report: RunReport) -> None: ...

    def library_counts(self) -> dict[str, int]: ...

    def placed_in(self, categories: tuple[str, ...]) -> list[PhotoRecord]: ...

    def sorted_since(self, timestamp: float) -> int: ...

    def save_attention(self, lines: list[str], at: dt.datetime) -> None: ...

    def saved_attention(self, now: dt.datetime, max_age_s: float = 86400.0) -> list[str]: ...

    def compact(self) -> None: ...


class FaceModel(Protocol):
    """Finds faces in a photo (numbered left to right) and embeds them (unit vectors)."""

    fingerprint: str

    def analyse(self, image: np.ndarray) -> tuple[list[Face], np.ndarray]: ...


class FaceStore(Protocol):
    """Where faces and the person's reference faces are kept (personal data: see ``forget_faces``)."""

    def save_faces(self, photo_id: int, model: str, faces: list[Face], vectors: np.ndarray) -> None: ...

    def faces_of(self, photo_id: int, model: str) -> tuple[list[Face], np.ndarray] | None: ...

    def add_me_face(self, photo_id: int, number: int, model: str, vector: np.ndarray) -> int: ...

    def me_faces(self, model: str) -> list[MeFace]: ...

    def remove_me_face(self, face_id: int) -> bool: ...

    def forget_faces(self) -> tuple[int, int]: ...


class PhotoSource(Protocol):
    """A remote library (iCloud) that delivers new photos into a local inbox folder."""

    def auth_state(self) -> AuthState: ...

    def submit_code(self, code: str) -> AuthState: ...

    def fetch_new(self, inbox: Path, on_progress: Callable[[SyncProgress], None] | None = None,
                  stop: Callable[[], bool] | None = None) -> int: ...

    def more_pending(self) -> bool:
        """True when ``fetch_new`` stopped after a chunk of a big first sync: sort, then call it again."""
        ...

    def problems(self) -> list[str]:
        """Photos the source skipped that a person should know of (an unreadable record, a download that
        keeps failing): one line each, for the MQTT problem sensor and the digest."""
        ...


class Publisher(Protocol):
    """Where status and events go (MQTT for Home Assistant)."""

    def publish_status(self, status: StatusSnapshot) -> None: ...

    def publish_event(self, event: PhotoEvent) -> None: ...

    def publish_correction(self, event: CorrectionEvent) -> None: ...

    def close(self) -> None: ...


class Controls(Protocol):
    """What a person can ask of the running daemon (MQTT button, switch and text entity, the CLI)."""

    def request_sync(self) -> None: ...

    def submit_icloud_code(self, code: str) -> AuthState: ...

    def set_paused(self, paused: bool) -> None: ...


class Clock(Protocol):
    """Time for the daemon, injectable in tests."""

    def monotonic(self) -> float: ...

    def now(self) -> dt.datetime: ...  # aware, UTC


class MailWork(Protocol):
    """The daily digest and reading replies (email)."""

    def send_digest_if_due(self, now: dt.datetime) -> bool: ...

    def poll_replies(self) -> int: ...


# mail ---------------------------------------------------------------------------------------------------------
class Mailer(Protocol):
    """Sends one message (SMTP)."""

    def send(self, message: EmailMessage) -> None: ...


class ReplyInbox(Protocol):
    """The IMAP folder replies arrive in. Reading never marks a message as seen."""

    def open(self) -> int: ...  # connects and selects the folder; returns its UIDVALIDITY

    def close(self) -> None: ...

    def list_messages(self, after_uid: int = 0) -> list[InboxMessage]: ...

    def fetch_message(self, uid: int) -> bytes: ...

    def mark_processed(self, uid: int) -> None: ...  # flags it seen and moves it to the processed folder

    def wait_for_mail(self, timeout_s: float) -> bool: ...


class MailLedger(Protocol):
    """Digests sent and replies applied (SQLite, beside the state)."""

    def close(self) -> None: ...

    def photos_for_digest(self, since: float) -> list[PhotoRecord]: ...

    def last_digest_time(self) -> float | None: ...

    def has_digest_for_day(self, day: str) -> bool: ...

    def record_digest(self, digest: SentDigest) -> None: ...

    def digest_for_message_ids(self, message_ids: list[str]) -> str | None: ...

    def digest_exists(self, digest_id: str) -> bool: ...

    def digest_items(self, digest_id: str) -> dict[int, tuple[int, str]]: ...

    def high_water(self, folder: str, uidvalidity: int) -> int: ...

    def set_high_water(self, folder: str, uidvalidity: int, uid: int) -> None: ...

    def reply_state(self, key: str) -> str | None: ...

    def start_reply(self, key: str, digest_id: str) -> None: ...

    def set_reply_state(self, key: str, state: str) -> None: ...

    def done_actions(self, key: str) -> dict[int, str]: ...  # number -> what was done (one line)

    def record_action(self, key: str, number: int, photo_id: int, category: str, summary: str) -> None: ...


class Labeller(Protocol):
    """Labels a known photo (``pipeline.Sorter``)."""

    def label_photo(self, photo_id: int, category: str, *, source: str, detail: str = "") -> Path | None: ...

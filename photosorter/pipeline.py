"""One sort run: list the inbox -> read + decode (prefetched) -> embed -> classify -> place. Orchestration only."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from photosorter.config import Settings
from photosorter.core.categories import FALLBACK
from photosorter.core.classify import decide
from photosorter.core.companions import VIDEOS_FOLDER, group_folder
from photosorter.core.faces import ME, FaceVerdict
from photosorter.core.placement import DUPLICATES_FOLDER, FAILED_FOLDER, plan_folder
from photosorter.core.signals import FileHints, Signals, apply_signals, wants_text
from photosorter.core.similarity import NEAR_DUPLICATE_BITS, dhash, nearest_hash
from photosorter.errors import ConfigError, ImageError
from photosorter.facestage import FaceStage
from photosorter.hand_edits import HandEdits
from photosorter.knnstage import KnnStage
from photosorter.ml.preprocess import fit_to_input, gray_thumbnail
from photosorter.placing import Placer, printable
from photosorter.ports import Decoder, Embedder, PhotoFiles, Previews, Prior, StateStore, VectorIndex
from photosorter.progress import Progress
from photosorter.records import (
    CorrectionEvent,
    Face,
    Failure,
    PhotoEvent,
    PhotoRecord,
    PhotoStatus,
    Prediction,
    RunReport,
)

log = logging.getLogger(__name__)

@dataclass
class Loaded:
    """A photo read and decoded off the main thread."""

    path: Path
    sha256: str = ""
    size: int = 0
    pixels: np.ndarray | None = None
    gray: np.ndarray | None = None
    faces: tuple[list[Face], np.ndarray] | None = None  # the face stage's scan (faces, embeddings)
    hints: FileHints | None = None  # what the file's header says (screenshot or camera)
    image: Image.Image | None = None  # the decoded photo, kept only for the text detector
    embedding: np.ndarray | None = None  # computed on the worker too when sorting
    probs: np.ndarray | None = None
    companions: list[Path] | None = None  # files that go where the photo goes (live-photo movie, sidecars)
    error: ImageError | None = None
    unreadable: str | None = None


class Sorter:
    def __init__(self, *, settings: Settings, state: StateStore, files: PhotoFiles, decoder: Decoder,
                 embedder: Embedder, prior: Prior, index: VectorIndex, index_path: Path,
                 decode_workers: int = 2, on_sorted: Callable[[PhotoEvent], None] | None = None,
                 faces: FaceStage | None = None, previews: Previews | None = None,
                 file_hints: Callable[[bytes], FileHints] | None = None,
                 text_coverage: Callable[[Image.Image], float] | None = None) -> None:
        self.settings = settings
        self.state = state
        self.files = files
        self.decoder = decoder
        self.embedder = embedder
        self.prior = prior
        self.index = index
        self.index_path = index_path
        self.names = settings.classify.names
        self.model_id = embedder.spec.fingerprint
        self.library = settings.library.path
        self._decode_workers = decode_workers
        self.on_sorted = on_sorted  # told about each photo placed (the daemon publishes it)
        self.on_corrected: Callable[[CorrectionEvent], None] | None = None  # a person relabelled a photo
        self.faces = faces  # optional face stage: me / people from faces, adjusts the distribution
        self.previews = previews  # small renditions a source saved beside the originals (decoded instead)
        self.file_hints = file_hints  # reads a file's header for screenshot / camera hints
        self.text_coverage = text_coverage  # share of a photo that is text (run only when text may matter)
        self.placer = Placer(state, files, self.library)
        self.hand_edits = HandEdits(state, files, self.library, self.names)
        self._reported_skips: set[Path] = set()
        ids, groups, hashes = state.perceptual_hashes()
        self._hash_ids, self._hash_groups, self._hashes = ids, groups, hashes
        self.knn = KnnStage(state=state, model_id=self.model_id, names=self.names, knn_k=settings.classify.knn_k,
                            trust_labels=settings.classify.knn_trust_labels)

    # recovery ---------------------------------------------------------------------------------------
    def recover(self) -> int:
        """Finish or roll back every move a crash interrupted; returns how many were settled."""
        return self.placer.recover()

    def apply_hand_edits(self) -> int:
        """Take in what the person changed in the library by hand; a photo moved to another category folder
        becomes a label of that category. Returns how many edits were found."""
        edits = self.hand_edits.notice()
        for edit in edits:
            if edit.label is not None:
                self.label_photo(edit.photo_id, edit.label, source="folder", detail=edit.old_path)
        return len(edits)

    # classification -------------------------------------------------------------------------------
    def predict(self, embedding: np.ndarray, class_probs: np.ndarray | None, *,
                exclude: int | None = None, faces: FaceVerdict | None = None,
                hints: FileHints | None = None, image: Image.Image | None = None) -> Prediction:
        prior = self.prior(embedding, class_probs)
        neighbours = self.index.search(embedding, self.settings.classify.knn_k, exclude=exclude)
        distribution = self.knn.distribution(prior, neighbours)
        coverage = None
        if self.text_coverage is not None and image is not None and wants_text(distribution, self.names):
            coverage = self.text_coverage(image)
        distribution = apply_signals(distribution, self.names, Signals(faces=faces, file=hints, text_coverage=coverage))
        return decide(distribution, self.names, unsure_margin=self.settings.classify.unsure_margin,
                      other_min_score=self.settings.classify.other_min_score, fallback=FALLBACK)

    # loading --------------------------------------------------------------------------------------
    def _load(self, path: Path, embed: bool = False) -> Loaded:
        try:
            data = self.files.read(path)
        except OSError as exc:
            return Loaded(path, unreadable=f"cannot read ({exc.strerror or exc})")
        loaded = Loaded(path, hashlib.sha256(data).hexdigest(), len(data))
        if self.file_hints is not None:
            loaded.hints = self.file_hints(data)
        preprocess = self.embedder.spec.preprocess
        try:
            image = self._decode(loaded.sha256, data, preprocess.size)
            del data
            loaded.pixels = fit_to_input(image, preprocess, self.settings.model.crop)
            loaded.gray = gray_thumbnail(image)
            if self.text_coverage is not None:
                loaded.image = image
            if self.faces is not None:  # on this worker thread, overlapping the main thread's work
                loaded.faces = self.faces.detect(np.asarray(image))
            if embed:  # inference here too, so it overlaps the main thread's journaled moves and commits
                vectors, probs = self.embedder.embed_images([loaded.pixels])
                loaded.embedding, loaded.probs = vectors[0], (None if probs is None else probs[0])
        except ImageError as exc:
            loaded.error = exc
        except (MemoryError, ValueError) as exc:  # one photo must never stop the others
            loaded.error = ImageError(f"cannot process it ({exc.__class__.__name__}: {exc})", reason="too-large")
        return loaded

    def _decode(self, sha256: str, data: bytes, min_side: int) -> Image.Image:
        """The photo's pixels, from the small rendition its source saved when there is one (a RAW or a
        12 MP original then costs no more than a 2 MP JPEG), else from the file itself."""
        preview = self.previews.get(sha256) if self.previews is not None else None
        if preview is not None:
            try:
                return self.decoder(preview, min_side)
            except ImageError as exc:
                log.warning("the saved preview of %s is unreadable (%s); decoding the photo", sha256[:12], exc.message)
        return self.decoder(data, min_side)

    def _prefetch(self, paths: list[Path]) -> Iterator[Loaded]:
        """Read, decode, find faces and embed ahead on worker threads while the caller journals, commits
        and moves (Pillow, onnxruntime, hashlib and fsync all release the GIL): on a slow disk the
        per-photo fsyncs then hide behind inference instead of adding to it. A bounded window keeps
        memory flat."""
        window = max(4, 2 * self.embedder.max_batch)
        with ThreadPoolExecutor(max_workers=self._decode_workers, thread_name_prefix="decode") as pool:
            pending: deque[Future[Loaded]] = deque()
            queue = iter(paths)
            for path in queue:
                pending.append(pool.submit(self._load, path, True))
                if len(pending) >= window:
                    break
            while pending:
                loaded = pending.popleft().result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(pool.submit(self._load, nxt, True))
                yield loaded

    # the run --------------------------------------------------------------------------------------
    def sort_folder(self, inbox: Path, stop: Callable[[], bool] | None = None) -> RunReport:
        """Sort every photo in ``inbox``; ``stop`` is asked between photos (the rest waits for the next run)."""
        started = time.monotonic()
        report = RunReport()
        try:
            self.library.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError([f"library: cannot create {self.library} ({exc.strerror})"]) from exc
        self.recover()
        self.apply_hand_edits()
        todo, companions = self._todo(inbox, report)
        if not todo:
            return report
        run_id = self.state.start_run(self.embedder.spec.name)
        log.info("sorting %d files from %s with model %s", len(todo), inbox, self.embedder.spec.name)
        progress = Progress(len(todo))
        batch: list[tuple[int, Loaded]] = []
        for loaded in self._prefetch(todo):
            if stop is not None and stop():
                log.info("stopping: %d photos stay in the inbox for the next run", progress.total - progress.done)
                break
            loaded.companions = companions.get(loaded.path)
            if loaded.unreadable:
                self._skip(loaded.path, loaded.unreadable, report)  # still being written, too large: next run
                progress.advance()
                continue
            photo_id, original = self._register(loaded)
            if loaded.error is not None:
                self._set_aside(photo_id, loaded, report)
                progress.advance()
            elif original is not None:
                self._file_duplicate(photo_id, loaded, original, report)
                progress.advance()
            else:
                batch.append((photo_id, loaded))
                if len(batch) >= self.embedder.max_batch:
                    self._classify_batch(batch, report)
                    progress.advance(len(batch))
                    batch = []
        if batch:
            self._classify_batch(batch, report)
            progress.advance(len(batch))
        progress.close()
        report.elapsed_s = time.monotonic() - started
        self.state.finish_run(run_id, report)
        return report

    def _todo(self, inbox: Path, report: RunReport) -> tuple[list[Path], dict[Path, list[Path]]]:
        """The photos to sort (name order) with their companions; videos alone go to the videos folder
        now, sidecars without their photo stay in the inbox."""
        folders: dict[Path, list[str]] = {}
        for path, why in self.files.list_inbox(inbox, skip=(self.library, self.settings.library.data)):
            if why is None:
                folders.setdefault(path.parent, []).append(path.name)
            else:
                self._skip(path, why, report)
        todo: list[Path] = []
        companions: dict[Path, list[Path]] = {}
        for folder, names in folders.items():
            plan = group_folder(names)
            for photo, extra in plan.photos.items():
                todo.append(folder / photo)
                companions[folder / photo] = [folder / name for name in extra]
            for name in plan.videos:
                if self._place(None, folder / name, VIDEOS_FOLDER, PhotoStatus.PLACED, report, []) is not None:
                    report.videos += 1
            for name in plan.orphans:
                self._skip(folder / name, "a sidecar without its photo", report)
        return todo, companions

    def _skip(self, path: Path, why: str, report: RunReport) -> None:
        report.skipped.append(Failure(printable(path), why))
        if path not in self._reported_skips:  # a daemon rescans often: say it once
            self._reported_skips.add(path)
            log.warning("skipped %s: %s", printable(path), why)

    def _register(self, loaded: Loaded) -> tuple[int, PhotoRecord | None]:
        """The photo's id, and the photo it duplicates (same bytes, already in the library or in flight)."""
        rows = self.state.photos_with_sha(loaded.sha256) if loaded.error is None else []
        source = printable(loaded.path)
        original = None
        for row in rows:
            if row.status is PhotoStatus.NEW and row.source_path == source:
                return row.id, None  # a crash interrupted this one: carry on with it
            if original is None and (row.status is PhotoStatus.NEW or (
                    row.status in (PhotoStatus.PLACED, PhotoStatus.UNSURE) and row.library_path
                    and os.path.lexists(self.library / row.library_path))):
                original = row
        return self.state.add_photo(loaded.sha256, loaded.size, loaded.path), original

    def _set_aside(self, photo_id: int, loaded: Loaded, report: RunReport) -> None:
        assert loaded.error is not None
        reason = loaded.error.message
        self.state.record_outcome(photo_id, reason=f"{loaded.error.reason}: {reason}")
        log.warning("cannot read %s: %s; set aside in %s", printable(loaded.path), reason, FAILED_FOLDER)
        report.failed.append(Failure(printable(loaded.path), reason))
        self._place(photo_id, loaded.path, FAILED_FOLDER, PhotoStatus.FAILED, None, loaded.companions)
        self._done_with(loaded)

    def _file_duplicate(self, photo_id: int, loaded: Loaded, original: PhotoRecord, report: RunReport) -> None:
        self.state.record_outcome(photo_id, category=original.category, duplicate_of=original.id)
        log.info("duplicate: %s has the same bytes as %s", printable(loaded.path),
                 original.library_path or printable(Path(original.source_path)))
        if self._place(photo_id, loaded.path, DUPLICATES_FOLDER, PhotoStatus.DUPLICATE, report, loaded.companions):
            report.duplicates += 1
        self._done_with(loaded)

    def _done_with(self, loaded: Loaded) -> None:
        if self.previews is not None:
            self.previews.discard(loaded.sha256)

    def _classify_batch(self, batch: list[tuple[int, Loaded]], report: RunReport) -> None:
        if all(loaded.embedding is not None for _, loaded in batch):  # embedded on the decode workers
            embeddings = np.stack([loaded.embedding for _, loaded in batch])  # type: ignore[misc]
            probs = None if batch[0][1].probs is None else np.stack([loaded.probs for _, loaded in batch])  # type: ignore[misc]
        else:
            embeddings, probs = self.embedder.embed_images([loaded.pixels for _, loaded in batch])  # type: ignore[misc]
        for row, (photo_id, loaded) in enumerate(batch):
            verdict = self.faces.verdict(photo_id, loaded.faces) if self.faces is not None else None
            prediction = self.predict(embeddings[row], probs[row] if probs is not None else None, faces=verdict,
                                      hints=loaded.hints, image=loaded.image)
            assert loaded.gray is not None
            self._analyse(photo_id, embeddings[row], dhash(loaded.gray), prediction)
            folder, status = plan_folder(prediction)
            log.debug("%s -> %s (score %.2f, margin %.2f)", printable(loaded.path), folder,
                      prediction.score, prediction.margin)
            placed = self._place(photo_id, loaded.path, folder, status, report, loaded.companions)
            self._done_with(loaded)
            if placed is not None:
                if status is PhotoStatus.UNSURE:  # counted once: in _unsure, not also in its best guess
                    report.unsure += 1
                else:
                    report.placed[prediction.category] = report.placed.get(prediction.category, 0) + 1
                if self.on_sorted is not None:
                    self.on_sorted(PhotoEvent(photo_id, prediction.category, prediction.score, prediction.margin,
                                               status is PhotoStatus.UNSURE, placed.name,
                                               str(placed.relative_to(self.library))))

    def _analyse(self, photo_id: int, embedding: np.ndarray, value: int, prediction: Prediction | None = None) -> None:
        """Store the embedding (and prediction) and link the photo to its near-duplicate group."""
        nearest, distance = nearest_hash(value, self._hashes)
        group = photo_id
        if distance <= NEAR_DUPLICATE_BITS:
            group = self._hash_groups[nearest] or self._hash_ids[nearest]
        self.state.save_analysis(photo_id, self.model_id, embedding, value, group, prediction)
        self.knn.photo_analysed()
        self._hash_ids.append(photo_id)
        self._hash_groups.append(group)
        self._hashes = np.append(self._hashes, np.uint64(value))

    def _place(self, photo_id: int | None, src: Path, folder: str, status: PhotoStatus,
               report: RunReport | None = None, companions: list[Path] | None = None) -> Path | None:
        """Journal and move one photo (with its companions) into ``library/folder``; on failure it stays
        where it was."""
        try:
            return self.placer.place(photo_id, src, folder, status, companions)
        except OSError as exc:
            log.error("cannot move %s to %s: %s; it stays where it was for the next run", printable(src), folder,
                      exc.strerror or exc)
            if report is not None:
                report.failed.append(Failure(printable(src), f"cannot move: {exc.strerror or exc}"))
            return None

    # labels ---------------------------------------------------------------------------------------
    def label(self, paths: Iterable[Path], category: str, *, source: str = "cli", detail: str = "",
              face: int | None = None) -> int:
        """Record ``category`` for each photo, teach the kNN index, move library photos; returns count.

        A ``me`` label also adds the photo's largest face (or face number ``face``) to the "me" faces.
        """
        self._check_category(category)
        count = 0
        for path in paths:
            photo_id, embedding, in_library = self._photo_for_label(path)
            if photo_id is None or embedding is None:
                continue
            if category == ME:
                self._teach_face(photo_id, path, face)
            self._apply_label(photo_id, embedding, category, source, detail, move=in_library)
            count += 1
            log.info("labelled %s as %s", printable(path), category)
        self.index.save(self.index_path)
        return count

    def label_photo(self, photo_id: int, category: str, *, source: str, detail: str = "",
                    save_index: bool = True) -> Path | None:
        """Label a photo the state knows (by id): record, teach the index, move it in the library.

        Returns its library path afterwards (None when it has no embedding under this model and its
        file cannot be read again). Used by corrections that arrive by email or MQTT.
        """
        self._check_category(category)
        record = self.state.photo(photo_id)
        if record is None:
            raise ConfigError([f"photo: no photo with number {photo_id}"])
        embedding = self.state.embedding(photo_id, self.model_id)
        if embedding is None and record.library_path:
            found, embedding, _ = self._photo_for_label(self.library / record.library_path)
            if found != photo_id:
                embedding = None
        if embedding is None:
            log.error("cannot label photo %d: no embedding and no readable file", photo_id)
            return None
        if category == ME and record.library_path:
            self._teach_face(photo_id, self.library / record.library_path, None)
        self._apply_label(photo_id, embedding, category, source, detail, move=record.library_path is not None)
        if save_index:  # a batch of labels (the map's box) saves the index once, at its end
            self.index.save(self.index_path)
        after = self.state.photo(photo_id)
        log.info("labelled photo %d as %s (%s)", photo_id, category, source)
        if self.on_corrected is not None:
            self.on_corrected(CorrectionEvent(photo_id, record.category, category, source, detail))
        return self.library / after.library_path if after and after.library_path else None

    def unlabel(self, photo_id: int, before: PhotoRecord, *, source: str, detail: str) -> bool:
        """Take back a label (the web page's undo): forget it, let the index hold the label before it (if
        any), and put the photo back as ``before`` had it. False when that label is no longer the latest."""
        if not self.state.remove_label(photo_id, source, detail):
            return False
        previous = self.state.current_labels().get(photo_id)
        embedding = self.state.embedding(photo_id, self.model_id)
        if previous is not None and embedding is not None:
            self.index.upsert(photo_id, embedding, previous)
        else:
            self.index.remove(photo_id)
        self.index.save(self.index_path)
        self.knn.labels_changed()
        self.state.record_outcome(photo_id, category=before.category, score=before.score, margin=before.margin)
        now = self.state.photo(photo_id)
        folder = (before.library_path or "").split("/")[0]
        if now and now.library_path and folder and now.library_path.split("/")[0] != folder:
            self._place(photo_id, self.library / now.library_path, folder, before.status)
        log.info("label of photo %d taken back (%s); it is in %s again", photo_id, source, folder or "place")
        return True

    def _teach_face(self, photo_id: int, path: Path, number: int | None) -> None:
        """Add a face of a photo labelled ``me`` to the person's reference faces (scanning it if needed)."""
        if self.faces is None:
            return
        if self.faces.faces(photo_id) is None:
            loaded = self._load(path)
            if loaded.faces is None:
                log.warning("photo %d: cannot read it to find its faces", photo_id)
                return
            self.faces.verdict(photo_id, loaded.faces)
        try:
            self.faces.add_reference(photo_id, number)
        except ConfigError as exc:
            if number is not None:
                raise
            log.warning("photo %d: %s, so it teaches no face", photo_id, exc.message)

    def resort(self, categories: Sequence[str]) -> dict[str, int]:
        """Classify again the photos filed under ``categories`` (except those the person labelled) and move
        each whose folder changes; stored faces are reused. Returns photos moved per folder."""
        for category in categories:
            self._check_category(category)
        labelled = self.state.current_labels()
        moved: dict[str, int] = {}
        for record in self.state.placed_in(tuple(categories)):
            if record.id in labelled or not record.library_path:
                continue
            path = self.library / record.library_path
            loaded = self._load(path)
            if loaded.pixels is None:
                log.warning("resort: cannot read %s; left where it is", record.library_path)
                continue
            embeddings, probs = self.embedder.embed_images([loaded.pixels])
            verdict = self.faces.verdict(record.id, loaded.faces) if self.faces is not None else None
            prediction = self.predict(embeddings[0], probs[0] if probs is not None else None, faces=verdict,
                                      hints=loaded.hints, image=loaded.image)
            folder, status = plan_folder(prediction)
            self.state.record_outcome(record.id, category=prediction.category, score=prediction.score,
                                      margin=prediction.margin)
            if folder != record.library_path.split("/")[0] and self._place(record.id, path, folder, status):
                moved[folder] = moved.get(folder, 0) + 1
        return moved

    def _check_category(self, category: str) -> None:
        if category not in self.names:
            raise ConfigError([f"category: unknown category {category!r} (known: {', '.join(self.names)})"])

    def relearn_labels(self, known: set[int]) -> int:
        """Teach the index the labels made under another model (the embedded one, before the default could
        be downloaded): each labelled photo not in ``known`` (those with an embedding under this model) whose
        file is still there is embedded again. Labels are never lost by changing models. Returns how many."""
        missing = {pid: cat for pid, cat in self.state.current_labels().items() if pid not in known}
        learned = 0
        for photo_id, category in missing.items():
            record = self.state.photo(photo_id)
            path = (self.library / record.library_path if record and record.library_path
                    else Path(record.source_path) if record else None)
            if path is None or not path.is_file():
                continue
            found, embedding, _ = self._photo_for_label(path)
            if found == photo_id and embedding is not None:
                self.index.upsert(photo_id, embedding, category)
                learned += 1
        if learned:
            self.index.save(self.index_path)
            self.knn.labels_changed()
            log.info("learned %d of %d labels again with model %s (they were given under another model)",
                     learned, len(missing), self.embedder.spec.name)
        return learned

    def _apply_label(self, photo_id: int, embedding: np.ndarray, category: str, source: str, detail: str, *,
                     move: bool) -> None:
        record = self.state.photo(photo_id)
        filed = record.category if record and record.status in (PhotoStatus.PLACED, PhotoStatus.UNSURE) else None
        self.state.add_label(photo_id, category, source, detail, guess=filed)
        self.index.upsert(photo_id, embedding, category)
        self.knn.labels_changed()
        if move and record and record.library_path and record.library_path.split("/")[0] != category:
            self.state.record_outcome(photo_id, category=category, score=1.0, margin=1.0)
            if self._place(photo_id, self.library / record.library_path, category, PhotoStatus.PLACED):
                log.info("moved %s to %s/ (labelled %s)", record.library_path, category, category)

    def _photo_for_label(self, path: Path) -> tuple[int | None, np.ndarray | None, bool]:
        """(photo id, embedding, whether it is in the library) for a photo to be labelled."""
        resolved = Path(os.path.abspath(path))
        try:
            relative = str(resolved.relative_to(Path(os.path.abspath(self.library))))
        except ValueError:
            relative = None
        record = self.state.photo_at(relative) if relative else None
        if record is not None:
            stored = self.state.embedding(record.id, self.model_id)
            if stored is not None:
                return record.id, stored, True
        loaded = self._load(resolved)
        if loaded.unreadable or loaded.error or loaded.pixels is None:
            log.error("cannot label %s: %s", printable(path), loaded.unreadable or loaded.error)
            return None, None, False
        embeddings, _ = self.embedder.embed_images([loaded.pixels])
        if record is None:
            known = [r for r in self.state.photos_with_sha(loaded.sha256) if r.status is not PhotoStatus.DUPLICATE]
            record = known[0] if known else None
        photo_id = record.id if record else self.state.add_photo(loaded.sha256, loaded.size, resolved,
                                                                 PhotoStatus.EXAMPLE)
        assert loaded.gray is not None
        self._analyse(photo_id, embeddings[0], dhash(loaded.gray))
        if self.faces is not None:
            self.faces.verdict(photo_id, loaded.faces)  # keeps the faces found: a `me` label needs no second decode
        return photo_id, embeddings[0], record is not None and record.library_path is not None

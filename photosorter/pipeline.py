"""One sort run: list the inbox -> read + decode (prefetched) -> embed -> classify -> place. Orchestration only.

Labels (label, undo, resort, relearn) live in ``labelling.py``; ``Sorter`` passes them on to it, so its
callers keep calling ``sorter.label(...)``. The photo a worker read and decoded is ``loaded.Loaded``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from photosorter.config import Settings
from photosorter.core.categories import FALLBACK
from photosorter.core.classify import decide
from photosorter.core.companions import VIDEOS_FOLDER, group_folder
from photosorter.core.faces import FaceVerdict
from photosorter.core.placement import DUPLICATES_FOLDER, FAILED_FOLDER, plan_folder
from photosorter.core.signals import SCREENSHOT_MARK, FileHints, Signals, apply_signals, read_from, wants_text
from photosorter.core.similarity import NEAR_DUPLICATE_BITS, dhash, nearest_hash
from photosorter.errors import ConfigError, ImageError
from photosorter.facestage import FaceStage
from photosorter.hand_edits import HandEdits
from photosorter.knnstage import KnnStage
from photosorter.labelling import Labelling
from photosorter.loaded import Loaded
from photosorter.ml.preprocess import fit_to_input, gray_thumbnail, shrink
from photosorter.placing import Placer, printable
from photosorter.ports import Decoder, Embedder, PhotoFiles, Previews, Prior, StateStore, TextLook, VectorIndex
from photosorter.progress import Progress
from photosorter.records import (
    CorrectionEvent,
    Failure,
    PhotoEvent,
    PhotoRecord,
    PhotoStatus,
    Prediction,
    RunReport,
)

log = logging.getLogger(__name__)


class Sorter:
    def __init__(self, *, settings: Settings, state: StateStore, files: PhotoFiles, decoder: Decoder,
                 embedder: Embedder, prior: Prior, index: VectorIndex, index_path: Path,
                 decode_workers: int = 2, on_sorted: Callable[[PhotoEvent], None] | None = None,
                 faces: FaceStage | None = None, previews: Previews | None = None,
                 file_hints: Callable[[bytes], FileHints] | None = None,
                 text: TextLook | None = None) -> None:
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
        self.faces = faces  # optional face stage: me / people from faces, adjusts the distribution
        self.previews = previews  # small renditions a source saved beside the originals (decoded instead)
        self.file_hints = file_hints  # reads a file's header for screenshot / camera hints
        self.text = text  # text coverage and words (run only when text may matter)
        self.placer = Placer(state, files, self.library)
        self.hand_edits = HandEdits(state, files, self.library, self.names)
        self._reported_skips: set[Path] = set()
        ids, groups, hashes = state.perceptual_hashes()
        self._hash_ids, self._hash_groups, self._hashes = ids, groups, hashes
        self.knn = KnnStage(state=state, model_id=self.model_id, names=self.names, knn_k=settings.classify.knn_k,
                            trust_labels=settings.classify.knn_trust_labels)
        self.labelling = Labelling(state=state, index=index, index_path=index_path, embedder=embedder, knn=self.knn,
                                   faces=faces, library=self.library, names=self.names, model_id=self.model_id,
                                   load=self._load, place=self._place, analyse=self._analyse, predict=self.predict)

    @property
    def on_corrected(self) -> Callable[[CorrectionEvent], None] | None:
        """Told about each photo a person relabelled (the daemon publishes it)."""
        return self.labelling.on_corrected

    @on_corrected.setter
    def on_corrected(self, callback: Callable[[CorrectionEvent], None] | None) -> None:
        self.labelling.on_corrected = callback

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
        coverage, words = None, None
        if self.text is not None and image is not None and wants_text(distribution, self.names):
            coverage, words = self.text(image, read_from(distribution, self.names))
        distribution = apply_signals(distribution, self.names,
                                     Signals(faces=faces, file=hints, text_coverage=coverage, words=words))
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
        if self.previews is not None and self.previews.marked_screenshot(loaded.sha256):
            loaded.hints = replace(loaded.hints or FileHints(), source_screenshot=True)
        preprocess = self.embedder.spec.preprocess
        try:
            image = self._decode(loaded.sha256, data, preprocess.size)
            del data
            small = shrink(image, preprocess.size)  # the full image stays for faces and text
            loaded.pixels = fit_to_input(small, preprocess, self.settings.model.crop)
            loaded.gray = gray_thumbnail(small)
            if self.text is not None:
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
        if loaded.hints is not None and loaded.hints.source_screenshot:  # its mark goes with the preview:
            self.state.remember_mark(loaded.sha256, SCREENSHOT_MARK)  # a resort still knows what iCloud said
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

    # labels (photosorter/labelling.py) ----------------------------------------------------------------
    def label(self, paths: Iterable[Path], category: str, *, source: str = "cli", detail: str = "",
              face: int | None = None) -> int:
        """Record ``category`` for each photo, teach the index, move library photos (``Labelling.label``)."""
        return self.labelling.label(paths, category, source=source, detail=detail, face=face)

    def label_photo(self, photo_id: int, category: str, *, source: str, detail: str = "",
                    save_index: bool = True) -> Path | None:
        """Label a photo the state knows, by id (``Labelling.label_photo``)."""
        return self.labelling.label_photo(photo_id, category, source=source, detail=detail, save_index=save_index)

    def unlabel(self, photo_id: int, before: PhotoRecord, *, source: str, detail: str) -> bool:
        """Take back a label, the web page's undo (``Labelling.unlabel``)."""
        return self.labelling.unlabel(photo_id, before, source=source, detail=detail)

    def resort(self, categories: Sequence[str]) -> dict[str, int]:
        """Classify again the photos filed under ``categories`` (``Labelling.resort``)."""
        return self.labelling.resort(categories)

    def relearn_labels(self, known: set[int]) -> int:
        """Teach the index the labels made under another model (``Labelling.relearn_labels``)."""
        return self.labelling.relearn_labels(known)

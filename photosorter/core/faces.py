"""Faces -> "me", "people" or nothing, and how that moves a photo's category distribution. Pure.

The rule, decided from the shared photos (numbers in README "Faces (me and people)"):

- A face is **clear** when the detector scores it at least ``CLEAR_FACE_SCORE`` (0.9) and its box
  covers at least ``CLEAR_FACE_AREA`` (0.2%) of the photo. Every face of a person in the shared face
  photos scores 0.91-0.96 at the size the sorter decodes; the detector's false alarms on the eval
  photos (a bear's face, 0.87) and cut-off or blurred faces score lower. The smallest clear face in
  the shared photos covers 0.5%; below 0.2% (about 25 px across on the sorter's decode) the face
  embedder sees a blown-up blur, so a far-away face in the background is not matched against you.
- The faces are **prominent** when the clear ones together cover at least ``PROMINENT_AREA`` (2%) of
  the photo: a portrait covers 7-45%, a group of five to ten small faces 4-10%; a face on a beer can
  (0.6%) or on a web page in a screenshot (1.3%) does not make the photo about people. Photos whose
  faces are not prominent are left to the whole-image classifier, so the face stage can only help a
  photo that is about people.
- **me**: faces are prominent and the best match of a clear face against the person's reference faces
  (cosine) reaches the threshold (setting ``me_threshold``).
- **people**: faces are prominent and none of them is the person (or no reference face is known yet).

"me" then gets weight ``ME_WEIGHT`` of the distribution and "people" ``PEOPLE_WEIGHT``; with prominent
faces that are not the person, whatever the whole-image model gave "me" moves to "people" (the face
decides who it is). Photos without prominent faces keep their distribution unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from photosorter.records import Face

CLEAR_FACE_SCORE = 0.9
CLEAR_FACE_AREA = 0.002
PROMINENT_AREA = 0.02
ME_THRESHOLD = 0.5  # default of the me_threshold setting; see bench/bench_faces.py
ME_WEIGHT = 0.8
PEOPLE_WEIGHT = 0.6
ME = "me"
PEOPLE = "people"


class FaceKind(StrEnum):
    ME = "me"
    PEOPLE = "people"
    NONE = "none"


@dataclass(frozen=True)
class FaceVerdict:
    kind: FaceKind
    me_score: float  # best cosine of a clear face against the reference faces (-1 without any)
    face_area: float  # share of the photo the clear faces cover


def is_clear(face: Face, min_score: float = CLEAR_FACE_SCORE) -> bool:
    return face.score >= min_score and face.area >= CLEAR_FACE_AREA


def clear_faces(faces: Sequence[Face], min_score: float = CLEAR_FACE_SCORE) -> list[Face]:
    return [face for face in faces if is_clear(face, min_score)]


def largest_face(faces: Sequence[Face]) -> Face | None:
    return max(faces, key=lambda face: face.area, default=None)


def judge_faces(faces: Sequence[Face], similarities: Sequence[float], *, me_threshold: float,
                min_score: float = CLEAR_FACE_SCORE, prominent_area: float = PROMINENT_AREA) -> FaceVerdict:
    """The verdict for one photo from its faces and each face's best cosine to a reference face.

    ``similarities[i]`` belongs to ``faces[i]``; use -1 when there are no reference faces.
    """
    clear = [i for i, face in enumerate(faces) if is_clear(face, min_score)]
    area = float(sum(faces[i].area for i in clear))
    me_score = max((float(similarities[i]) for i in clear), default=-1.0)
    if area < prominent_area:
        return FaceVerdict(FaceKind.NONE, me_score, area)
    return FaceVerdict(FaceKind.ME if me_score >= me_threshold else FaceKind.PEOPLE, me_score, area)


def adjust_distribution(distribution: np.ndarray, categories: Sequence[str], verdict: FaceVerdict) -> np.ndarray:
    """Move a category distribution toward what the faces say (unchanged when they say nothing)."""
    if verdict.kind is FaceKind.NONE or PEOPLE not in categories:
        return distribution
    adjusted = np.asarray(distribution, dtype=np.float64).copy()
    people = categories.index(PEOPLE)
    me = categories.index(ME) if ME in categories else None
    target = np.zeros_like(adjusted)
    if verdict.kind is FaceKind.ME and me is not None:
        target[me], weight = 1.0, ME_WEIGHT
    else:
        if me is not None:  # faces that are not the person: the whole-image guess of "me" counts as people
            adjusted[people] += adjusted[me]
            adjusted[me] = 0.0
        target[people], weight = 1.0, PEOPLE_WEIGHT
    return np.asarray((1.0 - weight) * adjusted + weight * target, dtype=np.float64)


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve: the chance a positive scores above a negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    pos = np.asarray(positives, dtype=np.float64)[:, None]
    neg = np.asarray(negatives, dtype=np.float64)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


@dataclass(frozen=True)
class ScannedPhoto:
    """A photo of a measurement set: what it truly is, and its faces with their embeddings ``[n, d]``."""

    name: str
    truth: FaceKind
    faces: tuple[Face, ...]
    vectors: np.ndarray


@dataclass(frozen=True)
class ReferenceResult:
    """One choice of reference photos: correct three-way decisions per threshold, and the me-score AUC."""

    references: tuple[str, ...]
    correct: dict[float, int]
    total: int
    auc: float
    wrong: tuple[str, ...]  # at the threshold asked for


def evaluate_references(photos: Sequence[ScannedPhoto], references: Sequence[int], thresholds: Sequence[float],
                        threshold: float) -> ReferenceResult:
    """Teach the largest face of each reference photo, then decide me / people / none for every other photo."""
    taught = []
    for i in references:
        face = largest_face(photos[i].faces)
        if face is not None:
            taught.append(photos[i].vectors[photos[i].faces.index(face)])
    reference_vectors = np.stack(taught) if taught else np.zeros((0, 1))
    correct = dict.fromkeys(thresholds, 0)
    positives: list[float] = []
    negatives: list[float] = []
    wrong: list[str] = []
    others = [photo for i, photo in enumerate(photos) if i not in set(references)]
    for photo in others:
        if len(photo.faces) and len(reference_vectors):
            similarities = (photo.vectors @ reference_vectors.T).max(axis=1).tolist()
        else:
            similarities = [-1.0] * len(photo.faces)
        for value in thresholds:
            correct[value] += judge_faces(photo.faces, similarities, me_threshold=value).kind is photo.truth
        verdict = judge_faces(photo.faces, similarities, me_threshold=threshold)
        if verdict.kind is not photo.truth:
            wrong.append(photo.name)
        (positives if photo.truth is FaceKind.ME else negatives).append(verdict.me_score)
    return ReferenceResult(tuple(photos[i].name for i in references), correct, len(others),
                           roc_auc(positives, negatives), tuple(wrong))

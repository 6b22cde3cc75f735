"""Face stage without the real models: detector decoding, NMS, alignment math, the me / people rule,
the face tables and the reference faces (a fake FaceModel that satisfies the Protocol)."""

from __future__ import annotations

import math
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from photosorter.adapters.state import SqliteState
from photosorter.core.faces import (
    FaceKind,
    FaceVerdict,
    adjust_distribution,
    judge_faces,
    roc_auc,
)
from photosorter.errors import ConfigError, ModelError
from photosorter.facestage import FaceStage
from photosorter.ml.catalogue import FACE_CATALOGUE
from photosorter.ml.faces import (
    TEMPLATE,
    Detection,
    align_face,
    decode_detections,
    detector_input,
    non_max_suppression,
    resolve_face_models,
    similarity_transform,
    to_faces,
)
from photosorter.records import Face

CATEGORIES = ("screenshot", "me", "people", "food", "other")


def face(number: int = 1, *, size: float = 0.3, score: float = 0.95, left: float = 0.1) -> Face:
    return Face(number, (left, 0.1, size, size), (0.0,) * 10, score)


# alignment ---------------------------------------------------------------------------------------------
def rotate_scale_shift(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.asarray(points @ (scale * np.array([[c, -s], [s, c]])).T + np.array(shift))


def test_similarity_transform_recovers_a_known_rotation_scale_and_shift() -> None:
    moved = rotate_scale_shift(TEMPLATE, 0.3, 2.5, (40.0, -7.0))
    matrix = similarity_transform(TEMPLATE, moved)
    expected = 2.5 * np.array([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]])
    assert np.allclose(matrix[:, :2], expected, atol=1e-9) and np.allclose(matrix[:, 2], [40.0, -7.0], atol=1e-9)


def test_similarity_transform_never_mirrors() -> None:
    mirrored = TEMPLATE * np.array([-1.0, 1.0])
    linear = similarity_transform(TEMPLATE, mirrored)[:, :2]
    assert np.linalg.det(linear) > 0


def test_alignment_puts_the_five_landmarks_on_the_template() -> None:
    # A photo with five dots where a tilted, enlarged face would have its eyes, nose and mouth corners.
    landmarks = rotate_scale_shift(TEMPLATE, -0.4, 2.2, (150.0, 90.0))
    image = Image.new("RGB", (480, 400))
    draw = ImageDraw.Draw(image)
    for x, y in landmarks:
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(255, 255, 255))
    aligned = align_face(np.asarray(image), landmarks)
    assert aligned.shape == (112, 112, 3)
    bright = aligned[:, :, 0] > 128
    for x, y in TEMPLATE:
        patch = bright[round(y) - 2:round(y) + 3, round(x) - 2:round(x) + 3]
        assert patch.any(), (x, y)
    assert bright.sum() < 5 * 60  # only the dots, nothing else


# detector output ---------------------------------------------------------------------------------------
def outputs_with_one_face(height: int, width: int, stride: int, row: int, col: int) -> dict[str, np.ndarray]:
    result: dict[str, np.ndarray] = {}
    for s in (8, 16, 32):
        n = (height // s) * (width // s)
        result[f"cls_{s}"] = np.zeros((1, n, 1), np.float32)
        result[f"obj_{s}"] = np.zeros((1, n, 1), np.float32)
        result[f"bbox_{s}"] = np.zeros((1, n, 4), np.float32)
        result[f"kps_{s}"] = np.zeros((1, n, 10), np.float32)
    anchor = row * (width // stride) + col
    result[f"cls_{stride}"][0, anchor, 0] = 0.9
    result[f"obj_{stride}"][0, anchor, 0] = 1.0
    result[f"bbox_{stride}"][0, anchor] = [0.5, 0.25, math.log(4.0), math.log(5.0)]
    result[f"kps_{stride}"][0, anchor] = [-1, -1, 1, -1, 0, 0, -1, 1, 1, 1]
    return result


def test_detector_outputs_decode_to_boxes_and_landmarks_in_pixels() -> None:
    (detection,) = decode_detections(outputs_with_one_face(64, 96, 16, row=2, col=3), 64, 96)
    assert detection.score == pytest.approx(math.sqrt(0.9))
    cx, cy = (3 + 0.5) * 16, (2 + 0.25) * 16
    assert np.allclose(detection.box, [cx - 32, cy - 40, 64, 80])
    assert np.allclose(detection.landmarks[0], [2 * 16, 1 * 16]) and np.allclose(detection.landmarks[4], [64, 48])


def test_anchors_below_the_score_threshold_are_dropped() -> None:
    outputs = outputs_with_one_face(64, 64, 8, row=1, col=1)
    outputs["obj_8"][:] *= 0.5
    assert decode_detections(outputs, 64, 64) == []


def test_detector_input_is_bgr_scaled_to_640_and_padded_to_32() -> None:
    image = np.zeros((900, 1300, 3), np.uint8)
    image[..., 0] = 200  # red
    small, tensor = detector_input(image)
    assert small.shape == (443, 640, 3) and tensor.shape == (1, 3, 448, 640)
    assert tensor[0, 2, 0, 0] == 200 and tensor[0, 0, 0, 0] == 0 and tensor[0, 2, 447, 0] == 0


def test_nms_keeps_the_best_of_overlapping_boxes_and_all_separate_ones() -> None:
    points = np.zeros((5, 2))
    boxes = [([10, 10, 50, 50], 0.9), ([12, 12, 50, 50], 0.95), ([200, 10, 50, 50], 0.85)]
    kept = non_max_suppression([Detection(np.array(b, float), points, s) for b, s in boxes])
    assert [d.score for d in kept] == [0.95, 0.85]


def test_faces_are_numbered_left_to_right_in_fractions_of_the_image() -> None:
    points = np.zeros((5, 2))
    detections = [Detection(np.array([300.0, 0, 100, 100]), points, 0.9),
                  Detection(np.array([10.0, 0, 50, 50]), points, 0.99)]
    faces = to_faces(detections, 400, 200)
    assert [f.number for f in faces] == [1, 2] and faces[0].box == (0.025, 0.0, 0.125, 0.25)
    assert faces[1].area == pytest.approx(0.25 * 0.5)


# the rule ----------------------------------------------------------------------------------------------
def test_a_prominent_matching_face_is_me() -> None:
    verdict = judge_faces([face()], [0.7], me_threshold=0.5)
    assert verdict.kind is FaceKind.ME and verdict.me_score == 0.7


def test_prominent_faces_that_do_not_match_are_people() -> None:
    assert judge_faces([face(1), face(2)], [0.2, 0.1], me_threshold=0.5).kind is FaceKind.PEOPLE


def test_without_reference_faces_a_portrait_is_people() -> None:
    assert judge_faces([face()], [-1.0], me_threshold=0.5).kind is FaceKind.PEOPLE


def test_a_small_face_does_not_make_a_photo_about_people_even_when_it_is_me() -> None:
    verdict = judge_faces([face(size=0.1)], [0.9], me_threshold=0.5)  # 1% of the photo: a plate of food with me
    assert verdict.kind is FaceKind.NONE


def test_many_small_clear_faces_together_are_prominent() -> None:
    group = [face(i, size=0.06, left=0.1 * i) for i in range(1, 8)]  # seven faces of 0.36% each
    assert judge_faces(group, [0.0] * 7, me_threshold=0.5).kind is FaceKind.PEOPLE


def test_unclear_faces_do_not_count() -> None:
    verdict = judge_faces([face(score=0.85)], [0.9], me_threshold=0.5)
    assert verdict.kind is FaceKind.NONE and verdict.me_score == -1.0


def test_a_tiny_background_face_is_never_matched_against_me() -> None:
    portrait_of_a_stranger, far_away = face(1, size=0.3), face(2, size=0.04, left=0.8)  # 9% and 0.16%
    verdict = judge_faces([portrait_of_a_stranger, far_away], [0.1, 0.9], me_threshold=0.5)
    assert verdict.kind is FaceKind.PEOPLE and verdict.me_score == 0.1


def test_no_face_leaves_the_distribution_unchanged() -> None:
    distribution = np.array([0.1, 0.1, 0.1, 0.6, 0.1])
    verdict = judge_faces([], [], me_threshold=0.5)
    assert adjust_distribution(distribution, CATEGORIES, verdict) is distribution


def test_me_wins_clearly_over_a_whole_image_guess() -> None:
    adjusted = adjust_distribution(np.array([0.1, 0.0, 0.2, 0.6, 0.1]), CATEGORIES,
                                   FaceVerdict(FaceKind.ME, 0.8, 0.2))
    assert CATEGORIES[int(np.argmax(adjusted))] == "me" and adjusted.sum() == pytest.approx(1.0)
    assert adjusted[1] - np.sort(adjusted)[-2] > 0.5


def test_faces_of_others_move_the_whole_image_me_guess_to_people() -> None:
    adjusted = adjust_distribution(np.array([0.0, 0.7, 0.1, 0.1, 0.1]), CATEGORIES,
                                   FaceVerdict(FaceKind.PEOPLE, 0.1, 0.2))
    assert adjusted[1] == 0.0 and CATEGORIES[int(np.argmax(adjusted))] == "people"
    assert adjusted.sum() == pytest.approx(1.0)


def test_roc_auc_counts_ties_half() -> None:
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0 and roc_auc([0.5], [0.5]) == 0.5
    assert roc_auc([0.1], [0.9]) == 0.0


# storage and reference faces ---------------------------------------------------------------------------
class FakeFaces:
    """A FaceModel: photos are arrays whose first pixel picks a canned answer."""

    fingerprint = "fake-faces"

    def __init__(self) -> None:
        rng = np.random.default_rng(1)
        self.vectors = rng.normal(size=(4, 256)).astype(np.float32)
        self.vectors /= np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.calls = 0

    def analyse(self, image: np.ndarray) -> tuple[list[Face], np.ndarray]:
        self.calls += 1
        kind = int(image[0, 0, 0])
        if kind == 0:
            return [], np.zeros((0, 256), np.float32)
        faces = [face(1, size=0.2, left=0.0), face(2, size=0.4, left=0.5)]
        return faces, self.vectors[[kind % 4, (kind + 1) % 4]]


def photo(kind: int) -> np.ndarray:
    return np.full((8, 8, 3), kind, np.uint8)


@pytest.fixture
def state(tmp_path: Path) -> SqliteState:
    db = SqliteState(tmp_path / "state.sqlite3")
    yield db  # type: ignore[misc]
    db.close()


def new_photo(state: SqliteState, name: str) -> int:
    return state.add_photo(name * 8, 1, Path(f"/inbox/{name}.jpg"))


def test_faces_are_stored_with_the_scan_and_read_back(state: SqliteState, tmp_path: Path) -> None:
    model = FakeFaces()
    stage = FaceStage(model=model, store=state, data_dir=tmp_path, me_threshold=0.5)
    a, b = new_photo(state, "a"), new_photo(state, "b")
    stage.verdict(a, stage.detect(photo(1)))
    stage.scan(b, photo(0))
    faces, vectors = stage.faces(a) or ([], np.zeros(0))
    assert [f.number for f in faces] == [1, 2] and np.allclose(vectors, model.vectors[[1, 2]])
    empty = stage.faces(b)
    assert empty is not None and empty[0] == []  # scanned, no faces
    assert stage.verdict(a, None) is not None and stage.verdict(new_photo(state, "c"), None) is None
    assert model.calls == 2  # stored faces are reused, never scanned twice
    assert stat.S_IMODE((tmp_path / "state.sqlite3").stat().st_mode) == 0o600


def test_the_largest_face_becomes_the_reference_and_then_matches(state: SqliteState, tmp_path: Path) -> None:
    model = FakeFaces()
    stage = FaceStage(model=model, store=state, data_dir=tmp_path, me_threshold=0.5)
    labelled, other = new_photo(state, "a"), new_photo(state, "b")
    stage.scan(labelled, photo(1))
    assert stage.add_reference(labelled).number == 2  # the larger face
    me, stranger = stage.verdict(other, stage.detect(photo(2))), stage.verdict(new_photo(state, "c"),
                                                                               stage.detect(photo(3)))
    assert me is not None and me.kind is FaceKind.ME  # its face 1 is the same vector
    assert stranger is not None and stranger.kind is FaceKind.PEOPLE


def test_a_face_number_out_of_range_is_refused(state: SqliteState, tmp_path: Path) -> None:
    stage = FaceStage(model=FakeFaces(), store=state, data_dir=tmp_path, me_threshold=0.5)
    photo_id = new_photo(state, "a")
    stage.scan(photo_id, photo(1))
    with pytest.raises(ConfigError, match="has 2 faces"):
        stage.add_reference(photo_id, 3)


def test_reference_faces_survive_a_restart_and_can_be_removed(state: SqliteState, tmp_path: Path) -> None:
    stage = FaceStage(model=FakeFaces(), store=state, data_dir=tmp_path, me_threshold=0.5)
    photo_id = new_photo(state, "a")
    stage.scan(photo_id, photo(1))
    stage.add_reference(photo_id, 1)
    stage.add_reference(photo_id, 2)
    again = FaceStage(model=FakeFaces(), store=state, data_dir=tmp_path, me_threshold=0.5)
    assert [r.number for r in again.references()] == [1, 2] and len(again.index) == 2
    assert again.remove_reference(again.references()[0].id) and not again.remove_reference(999)
    assert [r.number for r in again.references()] == [2] and len(again.index) == 1


def test_forget_deletes_reference_faces_stored_faces_and_the_index(state: SqliteState, tmp_path: Path) -> None:
    stage = FaceStage(model=FakeFaces(), store=state, data_dir=tmp_path, me_threshold=0.5)
    photo_id = new_photo(state, "a")
    stage.scan(photo_id, photo(1))
    stage.add_reference(photo_id)
    assert list(tmp_path.glob("me-faces-*.usearch"))
    assert stage.forget() == (1, 2)
    assert stage.references() == [] and stage.faces(photo_id) is None and len(stage.index) == 0
    assert not list(tmp_path.glob("me-faces-*"))
    raw = (tmp_path / "state.sqlite3").read_bytes()
    assert FakeFaces().vectors[1].tobytes()[:64] not in raw  # overwritten on disk, not just unlinked


def test_a_face_model_without_a_public_address_needs_a_mirror(tmp_path: Path) -> None:
    not_embedded = {name: {**entry, "embedded": False} for name, entry in FACE_CATALOGUE.items()}
    with pytest.raises(ModelError, match="model_base_url"):
        resolve_face_models("yunet-mobileface", tmp_path, catalogue=not_embedded)
    assert not list(tmp_path.rglob("*.onnx"))  # nothing half-downloaded

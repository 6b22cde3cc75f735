"""Where a photo goes in the library. Pure."""

from __future__ import annotations

from photosorter.records import PhotoStatus, Prediction

UNSURE_FOLDER = "_unsure"
FAILED_FOLDER = "_failed"
DUPLICATES_FOLDER = "_duplicates"


def plan_folder(prediction: Prediction) -> tuple[str, PhotoStatus]:
    """The library folder for a classified photo and the status it will have there."""
    if prediction.unsure:
        return UNSURE_FOLDER, PhotoStatus.UNSURE
    return prediction.category, PhotoStatus.PLACED

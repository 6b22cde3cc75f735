"""The daily drift check the daemon's upkeep runs: read recent photos and labels, then ``core.drift``."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

from photosorter.core.drift import BASELINE_DAYS, RECENT_DAYS, DriftReport, Observation, detect_drift, top1_similarity

log = logging.getLogger(__name__)


class DriftSource(Protocol):
    def analyses_since(self, since: float, model: str) -> list[Observation]: ...

    def labelled_embeddings(self, model: str) -> list[tuple[int, str, np.ndarray]]: ...

    def perceptual_hashes(self) -> tuple[list[int], list[int], np.ndarray]: ...


def check_drift(state: DriftSource, model: str, now: dt.datetime, zone: ZoneInfo) -> DriftReport:
    """Drift of the photos sorted in the last ``RECENT_DAYS + BASELINE_DAYS`` days; logs when flagged."""
    since = now - dt.timedelta(days=RECENT_DAYS + BASELINE_DAYS + 1)
    observations = state.analyses_since(since.timestamp(), model)
    labelled = state.labelled_embeddings(model)
    ids, groups, _ = state.perceptual_hashes()
    group_of = {photo_id: group or photo_id for photo_id, group in zip(ids, groups, strict=True)}
    vectors = np.stack([o.vector for o in observations]) if observations else np.zeros((0, 1), dtype=np.float32)
    taught = np.stack([v for _, _, v in labelled]) if labelled else np.zeros((0, 1), dtype=np.float32)
    similarity = top1_similarity(vectors, [o.group for o in observations], taught,
                                 [group_of.get(p, p) for p, _, _ in labelled])
    report = detect_drift(observations, similarity, now.astimezone(zone).date(), zone)
    if report.drifting:
        log.warning("drift: %s (%s)", report.message, "; ".join(report.reasons))
    else:
        log.info("drift: none (%d photos in the last %d days)", len(observations), RECENT_DAYS + BASELINE_DAYS)
    return report

"""Drift: are new photos unlike what the library was taught? Pure.

Per local day of sorted photos: how close each sits to the labelled photos (mean top-1 cosine
similarity, leaving out the photo itself and its near-duplicates), the share that went to
``_unsure``, and the category mix. The last ``RECENT_DAYS`` days are pooled and compared with the
``BASELINE_DAYS`` before them; the flag goes up when, with enough photos on both sides, any of:

- similarity fell by a large effect: (baseline mean − recent mean) / baseline spread ≥ ``SIMILARITY_EFFECT``
  (an effect size, so it means the same for any model's cosine scale);
- the unsure share rose by ``UNSURE_RISE`` or more (absolute);
- the category mix moved by ``MIX_DISTANCE`` or more (total variation distance: the share of photos
  that would have to change category to turn one mix into the other).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

RECENT_DAYS = 3
BASELINE_DAYS = 28
MIN_PHOTOS = 20  # on each side: fewer say nothing about a trend
SIMILARITY_EFFECT = 0.8  # "large" in Cohen's terms
UNSURE_RISE = 0.15
MIX_DISTANCE = 0.30
MESSAGE = "your photos look different lately: please label a few"


@dataclass(frozen=True)
class Observation:
    """One sorted photo as drift sees it."""

    photo_id: int
    created: float  # seconds since the epoch
    unsure: bool
    category: str | None
    group: int
    vector: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class DayStats:
    day: dt.date
    photos: int
    mean_similarity: float | None  # None: nothing labelled yet
    unsure_share: float
    mix: dict[str, float]


@dataclass(frozen=True)
class DriftReport:
    drifting: bool
    reasons: tuple[str, ...]
    days: tuple[DayStats, ...]
    message: str = ""


def top1_similarity(vectors: np.ndarray, groups: Sequence[int], labelled: np.ndarray,
                    labelled_groups: Sequence[int]) -> np.ndarray:
    """Each vector's highest cosine similarity to a labelled vector outside its own near-duplicate group
    (NaN when there is none)."""
    if len(vectors) == 0 or len(labelled) == 0:
        return np.full(len(vectors), np.nan)
    similarity = vectors @ labelled.T
    same = np.asarray(groups)[:, None] == np.asarray(labelled_groups)[None, :]
    similarity[same] = -np.inf
    best = similarity.max(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


def daily_stats(observations: Sequence[Observation], similarity: np.ndarray, zone: ZoneInfo) -> list[DayStats]:
    by_day: dict[dt.date, list[int]] = {}
    for row, item in enumerate(observations):
        by_day.setdefault(dt.datetime.fromtimestamp(item.created, zone).date(), []).append(row)
    days = []
    for day in sorted(by_day):
        rows = by_day[day]
        values = similarity[rows]
        values = values[np.isfinite(values)]
        counts = Counter(observations[r].category or "?" for r in rows)
        days.append(DayStats(day, len(rows), float(values.mean()) if len(values) else None,
                             sum(observations[r].unsure for r in rows) / len(rows),
                             {c: n / len(rows) for c, n in sorted(counts.items())}))
    return days


def _pool(days: Sequence[DayStats]) -> tuple[int, float, dict[str, float]]:
    total = sum(d.photos for d in days)
    unsure = sum(d.unsure_share * d.photos for d in days) / total if total else 0.0
    mix: dict[str, float] = {}
    for d in days:
        for category, share in d.mix.items():
            mix[category] = mix.get(category, 0.0) + share * d.photos / total
    return total, unsure, mix


def detect_drift(observations: Sequence[Observation], similarity: np.ndarray, today: dt.date,
                 zone: ZoneInfo) -> DriftReport:
    """Compare the last ``RECENT_DAYS`` days (up to ``today``) with the ``BASELINE_DAYS`` before them."""
    days = daily_stats(observations, similarity, zone)
    start = today - dt.timedelta(days=RECENT_DAYS - 1)
    base_start = start - dt.timedelta(days=BASELINE_DAYS)
    recent = [d for d in days if start <= d.day <= today]
    baseline = [d for d in days if base_start <= d.day < start]
    recent_n, recent_unsure, recent_mix = _pool(recent)
    base_n, base_unsure, base_mix = _pool(baseline)
    if recent_n < MIN_PHOTOS or base_n < MIN_PHOTOS:
        return DriftReport(False, (), tuple(days))
    reasons = []
    day_of = [dt.datetime.fromtimestamp(o.created, zone).date() for o in observations]
    recent_sim = np.asarray([s for s, d in zip(similarity, day_of, strict=True) if start <= d <= today])
    base_sim = np.asarray([s for s, d in zip(similarity, day_of, strict=True) if base_start <= d < start])
    recent_sim, base_sim = recent_sim[np.isfinite(recent_sim)], base_sim[np.isfinite(base_sim)]
    if len(recent_sim) >= MIN_PHOTOS and len(base_sim) >= MIN_PHOTOS:
        spread = max(float(base_sim.std()), 1e-3)
        effect = (float(base_sim.mean()) - float(recent_sim.mean())) / spread
        if effect >= SIMILARITY_EFFECT:
            reasons.append(f"similarity to labelled photos fell from {base_sim.mean():.2f} to "
                           f"{recent_sim.mean():.2f} ({effect:.1f} spreads)")
    if recent_unsure - base_unsure >= UNSURE_RISE:
        reasons.append(f"unsure share rose from {base_unsure:.0%} to {recent_unsure:.0%}")
    categories = set(recent_mix) | set(base_mix)
    distance = 0.5 * sum(abs(recent_mix.get(c, 0.0) - base_mix.get(c, 0.0)) for c in categories)
    if distance >= MIX_DISTANCE:
        reasons.append(f"category mix moved by {distance:.0%}")
    return DriftReport(bool(reasons), tuple(reasons), tuple(days), MESSAGE if reasons else "")

"""Tiny named metric functions of counts, in percent.

The same functions serve one sequence and all sequences: callers pass per-joint count arrays
(summed over whatever set of sequences they are scoring). Undefined values are NaN.
"""

from __future__ import annotations

import numpy as np

from .joints import GROUP_INDICES


def safe_divide(numerator, denominator):
    """numerator / denominator elementwise, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1.0), np.nan)


def mota(misses, switches, false_positives, objects):
    """100 (1 - (misses + switches + false positives) / objects); NaN without objects."""
    return 100.0 * (1.0 - safe_divide(np.add(np.add(misses, switches), false_positives), objects))


def motp(sum_distance, detections):
    """100 (1 - mean normalised distance of the matched pairs); 0 without detections, as poseval
    writes it."""
    value = 100.0 * (1.0 - safe_divide(sum_distance, detections))
    return np.where(np.asarray(detections) > 0, value, 0.0)


def precision(detections, false_positives):
    """100 detections / (detections + false positives); NaN when both are 0."""
    return 100.0 * safe_divide(detections, np.add(detections, false_positives))


def recall(detections, objects):
    """100 detections / objects; NaN without objects."""
    return 100.0 * safe_divide(detections, objects)


def joint_mean(values) -> float:
    """The "Total" column: mean over joints, skipping NaN (NaN if every joint is NaN)."""
    values = np.asarray(values, dtype=np.float64)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def group_means(values) -> dict[str, float]:
    """The printed group columns: the plain mean of each group's joints (NaN if any is NaN)."""
    values = np.asarray(values, dtype=np.float64)
    return {group: float(values[list(indices)].mean()) for group, indices in GROUP_INDICES.items()}

"""Average precision of one joint type over pooled frames (VOC all-point interpolation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import safe_divide

MISSING_SCORE = -9999.0  # the score poseval ranks a predicted joint written without one by


@dataclass(frozen=True)
class JointAP:
    """AP of one joint type, in percent, and the counts behind it.

    ``ap`` is NaN when there are predictions but no GT joints, and 0 when there are no
    predictions; ``precision``/``recall`` are those at the lowest score (0 without predictions).
    """

    ap: float
    precision: float
    recall: float
    num_gt: int
    num_predicted: int
    num_true_positives: int
    num_without_score: int


def ranked_hits(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) scores, (N,) bool labels -> labels sorted by descending score.

    Ties are ordered as poseval orders them (numpy's default argsort, reversed); the fixtures
    never depend on it.
    """
    order = np.asarray(scores, dtype=np.float64).argsort()[::-1]
    return np.asarray(labels, dtype=bool)[order]


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC all-point), recall and precision (N,) in [0, 1]."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def joint_ap(scores: np.ndarray, labels: np.ndarray, num_gt: int) -> JointAP:
    """AP of one joint type.

    Args:
        scores: (N,) float, the score of every predicted joint of this type (all frames pooled).
        labels: (N,) bool, whether each is a true positive.
        num_gt: number of annotated GT joints of this type.
    """
    num_predicted = len(scores)
    true_positives = int(np.count_nonzero(labels))
    without_score = int(np.count_nonzero(np.asarray(scores) == MISSING_SCORE))
    if num_predicted == 0:
        return JointAP(0.0, 0.0, 0.0, int(num_gt), 0, 0, 0)
    cumulative = np.cumsum(ranked_hits(scores, labels))
    if num_gt == 0:
        ap = recall = float("nan")
    else:
        recall_curve = cumulative / float(num_gt)
        precision_curve = cumulative / np.arange(1, num_predicted + 1, dtype=np.float64)
        ap = 100.0 * voc_ap(recall_curve, precision_curve)
        recall = 100.0 * recall_curve[-1]
    precision = 100.0 * float(safe_divide(true_positives, num_predicted))
    return JointAP(ap, precision, recall, int(num_gt), num_predicted, true_positives, without_score)

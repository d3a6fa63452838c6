"""Per-frame PCKh distances and poseval's assignment of predicted poses to GT poses (for AP).

All functions are pure and vectorised over people and joints of one frame.
"""

from __future__ import annotations

import numpy as np

PCKH_THRESHOLD = 0.5  # a predicted joint is a hit within half the GT head size
HEAD_SIZE_FACTOR = 0.6  # head size = 0.6 x the diagonal of the GT head box (PCKh)


def euclidean(dx, dy):
    """sqrt(dx^2 + dy^2) elementwise, as poseval's ``numpy.linalg.norm`` of a 2-vector computes
    it (``numpy.hypot`` can differ in the last bit, which moves a joint at 0.5 head sizes)."""
    return np.sqrt(dx * dx + dy * dy)


def head_sizes_from_boxes(head_boxes_xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) head boxes xyxy, pixels -> (N,) float64 head sizes (0.6 x diagonal); NaN rows -> NaN.

    Computed as poseval (and the PoseTrack21 kit) do: 0.6 x sqrt(w^2 + h^2) with w = x2 - x1."""
    boxes = np.asarray(head_boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return HEAD_SIZE_FACTOR * euclidean(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def normalised_distances(gt_xy: np.ndarray, gt_head_sizes: np.ndarray, pr_xy: np.ndarray) -> np.ndarray:
    """Joint distances in units of the GT person's head size.

    Args:
        gt_xy: (G, J, 2) float64, pixels, NaN where not annotated.
        gt_head_sizes: (G,) float64, pixels.
        pr_xy: (P, J, 2) float64, pixels, NaN where not predicted.

    Returns:
        (G, P, J) float64; NaN wherever either joint is absent.
    """
    diff = gt_xy[:, None] - pr_xy[None, :]  # (G, P, J, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return euclidean(diff[..., 0], diff[..., 1]) / gt_head_sizes[:, None, None]


def pckh_hits(distances: np.ndarray, threshold: float = PCKH_THRESHOLD) -> np.ndarray:
    """(G, P, J) normalised distances -> (G, P, J) bool: within ``threshold`` (NaN is no hit)."""
    return distances <= threshold


def assign_predictions(hits: np.ndarray, gt_present: np.ndarray) -> np.ndarray:
    """poseval's pose assignment for AP: each prediction keeps its best GT by PCKh, then each GT
    keeps the best of the predictions that chose it.

    Args:
        hits: (G, P, J) bool, joint hits.
        gt_present: (G, J) bool, annotated GT joints.

    Returns:
        (P,) int64: the GT index each prediction is assigned to, -1 for none. Scores play no part;
        ties go to the lower index (file order); a GT whose best PCKh is 0 takes no prediction.
        Greedy in two passes, not a global optimum, because that is what the official numbers use.
    """
    num_gt, num_pr = hits.shape[:2]
    assigned = np.full(num_pr, -1, dtype=np.int64)
    if num_gt == 0 or num_pr == 0:
        return assigned
    num_annotated = gt_present.sum(axis=1)  # (G,)
    pck = hits.sum(axis=2).astype(np.float64)  # (G, P)
    pck = pck / np.where(num_annotated > 0, num_annotated, 1)[:, None]
    best_gt = np.argmax(pck, axis=0)  # (P,): first maximum
    pck = np.where(np.arange(num_gt)[:, None] == best_gt[None, :], pck, 0.0)
    best_pr = np.argmax(pck, axis=1)  # (G,)
    matched = pck[np.arange(num_gt), best_pr] > 0
    assigned[best_pr[matched]] = np.flatnonzero(matched)
    return assigned


def prediction_labels(hits: np.ndarray, assigned: np.ndarray, pr_present: np.ndarray) -> np.ndarray:
    """(P, J) bool: a predicted joint is a true positive when it hits the GT its pose is assigned
    to. ``hits`` (G, P, J), ``assigned`` (P,) from :func:`assign_predictions`, ``pr_present`` (P, J).
    Joints of unassigned predictions are false positives."""
    num_pr = len(assigned)
    if hits.shape[0] == 0:
        return np.zeros(pr_present.shape, dtype=bool)
    labels = hits[np.maximum(assigned, 0), np.arange(num_pr)]  # (P, J)
    return labels & (assigned >= 0)[:, None] & pr_present

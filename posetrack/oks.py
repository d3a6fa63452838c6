"""Object keypoint similarity (OKS) between two sets of poses.

COCO's definition: for a joint j at distance d between two poses, with reference area s and
per-joint constant k_j = 2 * sigma_j, the similarity is exp(-d^2 / (2 s k_j^2)). OKS averages it
over joints. Here both sides may lack joints (tracks and detections both drop uncertain ones), so
the average runs over the joints present in *either* pose and a joint present in only one of them
counts 0: two poses that share few joints are not called similar.
"""

from __future__ import annotations

import numpy as np

from .joints import COCO_SIGMAS


def oks_matrix(keypoints_a: np.ndarray, visible_a: np.ndarray, keypoints_b: np.ndarray,
               visible_b: np.ndarray, areas_a: np.ndarray, sigmas=COCO_SIGMAS,
               over: str = "either", min_joints: int = 1) -> np.ndarray:
    """OKS of every pair of poses.

    Args:
        keypoints_a: (Na, J, 2) pixels, the reference poses (their ``areas_a`` set the scale).
        visible_a: (Na, J) bool, joints of ``a`` to use.
        keypoints_b: (Nb, J, 2) pixels.
        visible_b: (Nb, J) bool.
        areas_a: (Na,) reference areas in square pixels (e.g. box width x height).
        sigmas: (J,) per-joint sigmas (COCO's by default).
        over: "either": average over the joints present in either pose (a joint missing from
            one counts 0; for matching tracks); "both": over the joints present in both (do the
            poses agree where both have joints; for finding duplicates).
        min_joints: pairs with fewer joints to average over get 0.

    Returns:
        (Na, Nb) float64 in [0, 1]; 0 for a pair with fewer than ``min_joints`` joints.
    """
    if over not in ("either", "both"):
        raise ValueError(f"over must be 'either' or 'both', got {over!r}")
    a = np.asarray(keypoints_a, dtype=np.float64)
    b = np.asarray(keypoints_b, dtype=np.float64)
    num_joints = a.shape[1] if a.ndim == 3 else b.shape[1] if b.ndim == 3 else len(sigmas)
    a, b = a.reshape(-1, num_joints, 2), b.reshape(-1, num_joints, 2)
    vis_a = np.asarray(visible_a, dtype=bool).reshape(-1, num_joints)
    vis_b = np.asarray(visible_b, dtype=bool).reshape(-1, num_joints)
    k2 = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    if k2.shape != (num_joints,):
        raise ValueError(f"need {num_joints} sigmas, got {k2.shape[0]}")
    areas = np.maximum(np.asarray(areas_a, dtype=np.float64).reshape(-1), np.finfo(np.float64).eps)
    both = vis_a[:, None, :] & vis_b[None, :, :]
    count = (both if over == "both" else vis_a[:, None, :] | vis_b[None, :, :]).sum(axis=2)
    d2 = np.where(both, ((a[:, None] - b[None, :]) ** 2).sum(axis=3), 0.0)
    similarity = np.where(both, np.exp(-d2 / (2 * areas[:, None, None] * k2)), 0.0).sum(axis=2)
    return np.divide(similarity, count, out=np.zeros(similarity.shape),
                     where=count >= max(min_joints, 1))

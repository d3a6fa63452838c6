"""Joint layouts: names, left/right flip pairs, skeleton edges, OKS sigmas, and the COCO ->
PoseTrack mapping.

Two layouts of 17 slots are used:

* ``COCO17``: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left before right).
  What COCO-trained pose networks predict.
* ``POSETRACK17``: the PoseTrack 2018 slots: nose, head_bottom, head_top, two ear slots that
  PoseTrack never labels, then the same 12 limb joints as COCO in the same order. Every track file
  this package writes uses this layout.

A COCO model has no head_bottom / head_top. :func:`coco_to_posetrack` derives them, in this one
place, from the nose and the shoulders (see its docstring for the rule and where its constants
come from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# COCO per-joint OKS sigmas (pycocotools), in COCO-17 order.
COCO_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035,  # nose, left/right eye, left/right ear
    0.079, 0.079, 0.072, 0.072, 0.062, 0.062,  # shoulders, elbows, wrists
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089,  # hips, knees, ankles
)

_LIMBS = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)


@dataclass(frozen=True)
class JointLayout:
    """Names and symmetric structure of a 17-slot joint layout."""

    name: str
    joints: tuple[str, ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...]  # pairs of 0-based joint indices to draw as bones

    def __post_init__(self):
        if len(self.sigmas) != len(self.joints):
            raise ValueError(f"{self.name}: {len(self.sigmas)} sigmas for {len(self.joints)} joints")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """(left, right) index pairs, derived from the names; swap them to mirror a pose."""
        pairs = []
        for i, name in enumerate(self.joints):
            if name.startswith("left_"):
                pairs.append((i, self.joints.index("right_" + name[len("left_"):])))
        return tuple(pairs)

    @property
    def flip_permutation(self) -> np.ndarray:
        """(J,) int: ``keypoints[:, perm]`` is the pose with left and right swapped."""
        perm = np.arange(self.num_joints)
        for left, right in self.flip_pairs:
            perm[left], perm[right] = right, left
        return perm


def _edges(joints, names):
    return tuple((joints.index(a), joints.index(b)) for a, b in names)


_LIMB_EDGES = (
    ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_hip", "right_hip"), ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
)

_COCO_JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear") + _LIMBS
COCO17 = JointLayout(
    name="coco17",
    joints=_COCO_JOINTS,
    sigmas=COCO_SIGMAS,
    skeleton=_edges(_COCO_JOINTS, _LIMB_EDGES + (
        ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
        ("right_eye", "right_ear"),
    )),
)

_POSETRACK_JOINTS = ("nose", "head_bottom", "head_top", "left_ear", "right_ear") + _LIMBS
# The two head slots take the sigma of the COCO slot they replace (0.025, an eye's), as
# mmpose's PoseTrack18 dataset description does: they are annotated about as precisely.
POSETRACK17 = JointLayout(
    name="posetrack17",
    joints=_POSETRACK_JOINTS,
    sigmas=COCO_SIGMAS,
    skeleton=_edges(_POSETRACK_JOINTS, _LIMB_EDGES + (
        ("head_top", "nose"), ("nose", "head_bottom"), ("head_bottom", "left_shoulder"),
        ("head_bottom", "right_shoulder"),
    )),
)

# PoseTrack labels no ears: a network trained on PoseTrack (heatmaps in the POSETRACK17 order)
# has ear channels that never saw a label, and their maxima are noise. Its estimator marks these
# joints absent, so they count in no OKS (tracking, duplicate suppression) and are not written.
UNTRAINED_IN_POSETRACK = ("left_ear", "right_ear")

LAYOUTS = {layout.name: layout for layout in (COCO17, POSETRACK17)}
NUM_JOINTS = 17

# head_bottom = nose + HEAD_BOTTOM_T * (shoulder_mid - nose);
# head_top = nose - HEAD_TOP_T * (shoulder_mid - nose). Least-squares fit on the 13 people of the
# real PoseTrack18 sample frames with all five joints annotated (scripts/fit_head_joints.py):
# 0.756 and 0.392, mean error 0.16 and 0.50 head sizes. head_top is the weak one: head tilt is not
# on the nose-shoulder line.
HEAD_BOTTOM_T = 0.75
HEAD_TOP_T = 0.40


def coco_to_posetrack(keypoints_xy: np.ndarray, keypoint_scores: np.ndarray):
    """Map COCO-17 poses to the PoseTrack 17-slot layout.

    Args:
        keypoints_xy: (N, 17, 2) float, COCO order, pixels; NaN where a joint is absent.
        keypoint_scores: (N, 17) float, COCO order.

    Returns:
        (keypoints_xy, keypoint_scores) in POSETRACK17 order. Nose, ears and the 12 limb joints are
        copied. head_bottom and head_top lie on the line from the shoulder midpoint through the
        nose: head_bottom three quarters of the way from the nose to the shoulder midpoint (where
        PoseTrack annotators put the bottom of the head), head_top beyond the nose by 0.4 of the
        nose-to-shoulder-midpoint distance (the constants HEAD_BOTTOM_T and HEAD_TOP_T). Their score is the lowest of the three joints they
        come from, so a derived joint is never more certain than its sources; when a source is
        absent (NaN), so are they.
    """
    keypoints_xy = np.asarray(keypoints_xy, dtype=np.float32)
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float32)
    out_xy = keypoints_xy.copy()
    out_scores = keypoint_scores.copy()
    nose = keypoints_xy[:, 0]
    shoulder_mid = (keypoints_xy[:, 5] + keypoints_xy[:, 6]) / 2
    out_xy[:, 1] = nose + HEAD_BOTTOM_T * (shoulder_mid - nose)
    out_xy[:, 2] = nose - HEAD_TOP_T * (shoulder_mid - nose)
    source_score = keypoint_scores[:, [0, 5, 6]].min(axis=1)
    out_scores[:, 1] = source_score
    out_scores[:, 2] = source_score
    return out_xy, out_scores

"""The 15 joints the official PoseTrack evaluator scores, in its order, and the printed groups.

The ears are not evaluated. ``EVAL_SLOTS[k]`` is the POSETRACK17 slot of evaluated joint ``k``;
the order is the PoseTrack 2017 point-id order, which is also poseval's.
"""

from __future__ import annotations

from ..formats import SLOT_OF_2017_ID

JOINT_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    "neck", "nose", "head_top",
)
NUM_EVAL_JOINTS = len(JOINT_NAMES)
EVAL_SLOTS = SLOT_OF_2017_ID  # POSETRACK17 slot of each evaluated joint, in JOINT_NAMES order

# The seven printed columns: each is the plain mean of its joints (NaN if one of them is NaN).
GROUPS = {
    "head": ("head_top", "neck", "nose"),
    "shoulder": ("right_shoulder", "left_shoulder"),
    "elbow": ("right_elbow", "left_elbow"),
    "wrist": ("right_wrist", "left_wrist"),
    "hip": ("right_hip", "left_hip"),
    "knee": ("right_knee", "left_knee"),
    "ankle": ("right_ankle", "left_ankle"),
}
GROUP_INDICES = {group: tuple(JOINT_NAMES.index(j) for j in joints) for group, joints in GROUPS.items()}

assert len(EVAL_SLOTS) == NUM_EVAL_JOINTS

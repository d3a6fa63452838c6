"""The per-frame data types: every person of one frame as parallel arrays.

``Detections`` is what a person detector gives (boxes and scores). ``Poses`` is what the pose
stage and the tracker give: boxes, box scores, keypoints, keypoint scores and track ids, one row
per person. Both validate shapes on construction and index as a whole (``poses[mask]`` subsets
every field at once).

Conventions:
* boxes are ``xyxy`` in pixels, float32;
* a keypoint that is absent (dropped, or never predicted) has NaN coordinates;
* a track id of -1 means "not assigned yet".
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .joints import NUM_JOINTS

NO_TRACK = -1


def _as_array(name, value, dtype, shape):
    """Convert ``value`` to ``dtype`` and check it has ``shape`` (None = any size)."""
    array = np.asarray(value, dtype=dtype)
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {array.shape}")
    return array


@dataclass(frozen=True)
class Detections:
    """Person boxes of one frame.

    Attributes:
        boxes_xyxy: (N, 4) float32, pixels.
        scores: (N,) float32, detector confidence in [0, 1].
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        boxes = _as_array("boxes_xyxy", self.boxes_xyxy, np.float32, (None, 4))
        scores = _as_array("scores", self.scores, np.float32, (len(boxes),))
        object.__setattr__(self, "boxes_xyxy", boxes)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> "Detections":
        index = _row_index(index)
        return Detections(self.boxes_xyxy[index], self.scores[index])

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    @classmethod
    def concatenate(cls, parts) -> "Detections":
        parts = list(parts)
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.boxes_xyxy for p in parts]),
                   np.concatenate([p.scores for p in parts]))


@dataclass(frozen=True)
class Poses:
    """All people of one frame.

    Attributes:
        boxes_xyxy: (N, 4) float32, pixels.
        box_scores: (N,) float32, the person's box confidence; NaN when unknown.
        keypoints_xy: (N, J, 2) float32, pixels; NaN for an absent joint. J is 17 in files.
        keypoint_scores: (N, J) float32, joint confidence; NaN where the source gave none.
        track_ids: (N,) int64; -1 where no id is assigned.
    """

    boxes_xyxy: np.ndarray
    box_scores: np.ndarray
    keypoints_xy: np.ndarray
    keypoint_scores: np.ndarray
    track_ids: np.ndarray

    def __post_init__(self):
        boxes = _as_array("boxes_xyxy", self.boxes_xyxy, np.float32, (None, 4))
        n = len(boxes)
        keypoints = _as_array("keypoints_xy", self.keypoints_xy, np.float32, (n, None, 2))
        j = keypoints.shape[1]
        values = {
            "boxes_xyxy": boxes,
            "box_scores": _as_array("box_scores", self.box_scores, np.float32, (n,)),
            "keypoints_xy": keypoints,
            "keypoint_scores": _as_array("keypoint_scores", self.keypoint_scores, np.float32, (n, j)),
            "track_ids": _as_array("track_ids", self.track_ids, np.int64, (n,)),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.boxes_xyxy)

    def __getitem__(self, index) -> "Poses":
        index = _row_index(index)
        return Poses(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def num_joints(self) -> int:
        return self.keypoints_xy.shape[1]

    @property
    def visible(self) -> np.ndarray:
        """(N, J) bool: the joint has coordinates (is not absent)."""
        return ~np.isnan(self.keypoints_xy).any(axis=2)

    def replace(self, **changes) -> "Poses":
        """A copy with some fields replaced (e.g. ``track_ids``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"Poses has no field(s) {sorted(unknown)}")
        values.update(changes)
        return Poses(**values)

    @classmethod
    def empty(cls, num_joints: int = NUM_JOINTS) -> "Poses":
        return cls(
            boxes_xyxy=np.zeros((0, 4), np.float32),
            box_scores=np.zeros(0, np.float32),
            keypoints_xy=np.zeros((0, num_joints, 2), np.float32),
            keypoint_scores=np.zeros((0, num_joints), np.float32),
            track_ids=np.zeros(0, np.int64),
        )

    @classmethod
    def concatenate(cls, parts, num_joints: int = NUM_JOINTS) -> "Poses":
        parts = list(parts)
        if not parts:
            return cls.empty(num_joints)
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      for f in fields(cls)})


def _row_index(index):
    """Make an int index keep its row dimension, so indexing always returns a container."""
    if isinstance(index, (int, np.integer)):
        return [index]
    return index

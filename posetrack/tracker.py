"""The flow-based OKS tracker (the only stateful part of the method).

Per frame k, the caller does::

    offered = tracker.propagate(flow)   # flow from frame k-1 to k, or None (identity motion)
    ...                                 # unify `offered` boxes with detections, estimate poses
    tracked = tracker.update(poses)     # poses of frame k -> the same poses with track ids

``propagate`` warps every kept track's joints into frame k and offers the boxes around the warped
poses of the tracks seen in frame k-1, so a person the detector misses is still estimated.
``update`` compares each new pose with each track seen within the last ``memory_frames`` frames by
OKS (track pose warped into frame k vs. new pose), matches greedily, keeps matched ids, starts new
ids, and forgets tracks unseen for ``memory_frames`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .frame import Detections, Poses
from .geometry import box_area, boxes_from_keypoints, propagate_points
from .joints import COCO_SIGMAS
from .matching import greedy_match
from .oks import oks_matrix


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of the tracker. Defaults were chosen with scripts/bench_tracking.py (seeded
    synthetic scenes; a setting changed from its first value only where the gain held on a
    second seed); box_enlarge is the paper's."""

    memory_frames: int = field(default=8, metadata={"help": (
        "How many frames a track stays a match candidate after it was last seen (L_Q); its pose "
        "keeps being warped forward meanwhile. Higher: a person hidden for longer gets their id "
        "back; lower: fewer chances to hand an old id to a new person who enters nearby. 8: "
        "on the benchmark, id switches fall from 1 to 8 frames and not beyond.")})
    min_similarity: float = field(default=0.1, metadata={"help": (
        "Lowest flow-warped OKS at which a pose continues a track. Higher: fewer wrong "
        "continuations (id switches), more broken tracks; lower: the reverse. 0.1: on the "
        "benchmark, 0.2 -> 0.1 cuts id switches by 11% (most in crossings); 0.05 adds crowd "
        "switches.")})
    joint_threshold: float = field(default=0.3, metadata={"help": (
        "Joints scoring below this take no part in the similarity (a joint without a score "
        "always does). Higher: only confident joints decide a match; lower: more joints, "
        "including guessed ones. 0.3: on the benchmark 0.1 helped on one seed and hurt on "
        "another; higher values did not help.")})
    propagate_min_score: float = field(default=0.3, metadata={"help": (
        "Mean joint score a track's last pose needs for its flow-warped box to be offered to the "
        "pose estimator in the next frame. Higher: fewer ghost boxes on background; lower: more "
        "people kept through missed detections. 0.3: on the benchmark 0.2 measures the same "
        "and 0.4 or more drops partly hidden people's boxes (more switches in crossings).")})
    box_enlarge: float = field(default=0.15, metadata={"help": (
        "Fraction by which the box around a warped pose grows in width and height before it is "
        "offered (the paper's 15%). Higher: room for fast limbs; lower: tighter crops.")})

    def __post_init__(self):
        if not isinstance(self.memory_frames, int) or self.memory_frames < 1:
            raise ValueError(f"memory_frames must be an integer >= 1, got {self.memory_frames!r}")
        for name in ("min_similarity", "joint_threshold", "propagate_min_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        if self.box_enlarge < 0:
            raise ValueError(f"box_enlarge must be >= 0, got {self.box_enlarge!r}")


class Tracker:
    """Gives the people of consecutive frames stable track ids. One instance per video.

    It owns its id counter: ids start at ``first_id`` and two trackers never share state.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig(), first_id: int = 0,
                 sigmas=COCO_SIGMAS):
        self.config = config
        self.sigmas = sigmas
        self.first_id = first_id
        self.reset()

    def reset(self) -> None:
        """Forget every track and restart ids, e.g. before the next video."""
        self._next_id = self.first_id
        self._tracks = Poses.empty(len(self.sigmas))  # each kept track's pose, warped to the frame
        self._last_seen = np.zeros(0, np.int64)  # frame index each track was last matched in
        self._frame = -1
        self._propagated = False

    @property
    def frame_index(self) -> int:
        """Index of the frame being processed (-1 before the first)."""
        return self._frame

    @property
    def tracks(self) -> Poses:
        """The kept tracks' poses (warped into the current frame) with their ids."""
        return self._tracks

    def propagate(self, flow: np.ndarray | None = None) -> Detections:
        """Advance to the next frame, warping every kept track's joints by ``flow``.

        Args:
            flow: (H, W, 2) displacement from the previous frame to this one, or None for no
                motion (no frames available, or the first frame).

        Returns:
            Boxes of the warped poses of tracks seen in the previous frame whose mean joint score
            is at least ``propagate_min_score``, enlarged by ``box_enlarge``; each box's score is
            that mean joint score.
        """
        if self._propagated:
            raise RuntimeError("propagate() called twice for one frame; call update() in between")
        self._frame += 1
        self._propagated = True
        tracks = self._tracks
        if len(tracks) == 0:
            return Detections.empty()
        keypoints = tracks.keypoints_xy
        if flow is not None:
            keypoints = propagate_points(keypoints, flow)
            moved = boxes_from_keypoints(keypoints, enlarge=0.0)
            self._tracks = tracks = tracks.replace(
                keypoints_xy=keypoints,
                boxes_xyxy=_shift_boxes(tracks.boxes_xyxy, boxes_from_keypoints(tracks.keypoints_xy, 0.0), moved))
        scores = self._pose_scores(tracks)
        boxes = boxes_from_keypoints(keypoints, enlarge=self.config.box_enlarge)
        offer = ((self._last_seen == self._frame - 1) & (scores >= self.config.propagate_min_score)
                 & ~np.isnan(boxes).any(axis=1))
        return Detections(boxes[offer], scores[offer])

    def update(self, poses: Poses) -> Poses:
        """Assign track ids to this frame's poses (calls ``propagate(None)`` first if needed)."""
        if not self._propagated:
            self.propagate(None)
        self._propagated = False
        config = self.config
        candidates = np.flatnonzero(self._frame - self._last_seen <= config.memory_frames)
        track_poses = self._tracks[candidates]
        similarity = oks_matrix(
            track_poses.keypoints_xy, self._usable_joints(track_poses),
            poses.keypoints_xy, self._usable_joints(poses),
            areas_a=box_area(track_poses.boxes_xyxy), sigmas=self.sigmas)
        pairs, _, new = greedy_match(similarity, config.min_similarity)

        ids = np.full(len(poses), -1, np.int64)
        matched_tracks = candidates[pairs[:, 0]]
        ids[pairs[:, 1]] = self._tracks.track_ids[matched_tracks]
        ids[new] = np.arange(self._next_id, self._next_id + len(new))
        self._next_id += len(new)
        tracked = poses.replace(track_ids=ids)

        # Matched tracks take the new pose; unmatched ones keep their warped pose and age.
        keep = np.ones(len(self._tracks), bool)
        keep[matched_tracks] = False
        last_seen = self._last_seen[keep]
        self._tracks = Poses.concatenate([self._tracks[keep], tracked], num_joints=len(self.sigmas))
        self._last_seen = np.concatenate([last_seen, np.full(len(tracked), self._frame)])
        alive = self._frame - self._last_seen < config.memory_frames
        self._tracks, self._last_seen = self._tracks[alive], self._last_seen[alive]
        return tracked

    def _usable_joints(self, poses: Poses) -> np.ndarray:
        """(N, J) bool: present joints scoring at least joint_threshold (or without a score)."""
        scores = poses.keypoint_scores
        return poses.visible & (np.isnan(scores) | (scores >= self.config.joint_threshold))

    def _pose_scores(self, poses: Poses) -> np.ndarray:
        """(N,) mean score of each pose's usable joints (1 for joints without a score, 0 if none)."""
        usable = self._usable_joints(poses)
        scores = np.where(usable, np.nan_to_num(poses.keypoint_scores, nan=1.0), 0.0)
        count = usable.sum(axis=1)
        return np.divide(scores.sum(axis=1), count, out=np.zeros(len(poses)), where=count > 0)


def _shift_boxes(boxes_xyxy, before_xyxy, after_xyxy):
    """Move each box by the motion of the centre of its pose's joints (size unchanged)."""
    shift = ((after_xyxy[:, :2] + after_xyxy[:, 2:]) - (before_xyxy[:, :2] + before_xyxy[:, 2:])) / 2
    shift = np.nan_to_num(shift)
    return boxes_xyxy + np.concatenate([shift, shift], axis=1)

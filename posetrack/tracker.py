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

from dataclasses import dataclass

import numpy as np

from .checks import setting, validate
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

    memory_frames: int = setting(8, (
        "How many frames a track stays a match candidate after it was last seen (L_Q); its pose "
        "keeps being warped forward meanwhile. Higher: a person hidden for longer gets their id "
        "back; lower: fewer chances to hand an old id to a new person who enters nearby. 8: "
        "on the benchmark, id switches fall from 1 to 8 frames and not beyond."), low=1)
    min_similarity: float = setting(0.05, (
        "Lowest OKS at which a pose continues a track. Higher: fewer wrong continuations, more "
        "broken tracks; lower: the reverse. 0.05: on the benchmark the fewest id switches on "
        "both seeds (0.1: 3-5% more, 0.2: 20-30% more); greedy matching takes the best pairs "
        "first, so a low floor mostly decides whether a person who moved far gets their id."),
        low=0.0, high=1.0)
    joint_threshold: float = setting(0.3, (
        "Joints scoring below this take no part in the similarity (a joint without a score "
        "always does). Higher: only confident joints decide a match; lower: more joints, "
        "including guessed ones. 0.3: on the benchmark 0.1 helped on one seed and hurt on "
        "another; higher values did not help."), low=0.0, high=1.0)
    propagate_min_score: float = setting(0.4, (
        "Mean score over all joints that a track's last pose needs for its flow-warped box to be "
        "offered to the pose estimator in the next frame. Higher: fewer ghost boxes on "
        "background (false positives); lower: more people kept through missed detections. 0.4: "
        "on the benchmark MOTA +2 to +3 points over 0.3 on both seeds (precision up, recall "
        "down a little); 0.5 and above lose recall."), low=0.0, high=1.0)
    match_last_seen: bool = setting(True, (
        "Also compare a new pose with the pose where the track was last seen (not moved by the "
        "flow since) and keep the better OKS. While a person is hidden, the flow at their joints "
        "is the motion of whoever is in front, which drags the kept pose away; the last-seen "
        "pose stays where they disappeared. Off: flow-warped OKS only, as in the paper."))
    hidden_velocity: bool = setting(True, (
        "Move a track that was not seen in the last frame by its own last measured motion (the "
        "median flow of its joints while it was visible) instead of by the flow where its "
        "joints were, which while it is hidden is the motion of whoever hides it. Off: every "
        "kept track follows the flow at its joints."))
    box_enlarge: float = setting(0.15, (
        "Fraction by which the box around a warped pose grows in width and height before it is "
        "offered (the paper's 15%). Higher: room for fast limbs; lower: tighter crops."), low=0.0)

    def __post_init__(self):
        validate(self)


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
        self._seen_xy = np.zeros((0, len(self.sigmas), 2), np.float32)  # its joints when last seen
        self._velocity = np.zeros((0, 2), np.float32)  # its own last measured motion, px per frame
        self._motion = np.zeros((0, 2), np.float32)  # each track's flow motion into this frame
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
            flow: (H, W, 2) displacement from the previous frame to this one, a flow field
                (``posetrack.flow``: read only at the joints), or None for no motion (no frames
                available, or the first frame).

        Returns:
            Boxes of the warped poses of tracks seen in the previous frame whose mean joint score
            (over all their present joints) is at least ``propagate_min_score``, enlarged by
            ``box_enlarge``; each box's score is that mean joint score.
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
            # each track's motion into this frame; it becomes the track's velocity if the track
            # is seen again in this frame (then the flow was its own)
            self._motion = median_motion(tracks.keypoints_xy, keypoints, self._usable_joints(tracks))
            if self.config.hidden_velocity:
                hidden = self._last_seen < self._frame - 1
                age = (self._frame - self._last_seen[hidden]).astype(np.float32)
                keypoints[hidden] = self._seen_xy[hidden] + age[:, None, None] * self._velocity[hidden, None, :]
            self._tracks = tracks = tracks.replace(
                keypoints_xy=keypoints,
                boxes_xyxy=_shift_boxes(tracks.boxes_xyxy, boxes_from_keypoints(tracks.keypoints_xy, 0.0),
                                        boxes_from_keypoints(keypoints, 0.0)))
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
        track_joints, pose_joints = self._usable_joints(track_poses), self._usable_joints(poses)
        areas = box_area(track_poses.boxes_xyxy)
        similarity = oks_matrix(track_poses.keypoints_xy, track_joints, poses.keypoints_xy,
                                pose_joints, areas_a=areas, sigmas=self.sigmas)
        if config.match_last_seen:
            # the track's joints as last seen; usable where its warped joints are
            seen = oks_matrix(self._seen_xy[candidates], track_joints, poses.keypoints_xy,
                              pose_joints, areas_a=areas, sigmas=self.sigmas)
            similarity = np.maximum(similarity, seen)
        pairs, _, new = greedy_match(similarity, config.min_similarity)

        ids = np.full(len(poses), -1, np.int64)
        matched_tracks = candidates[pairs[:, 0]]
        ids[pairs[:, 1]] = self._tracks.track_ids[matched_tracks]
        ids[new] = np.arange(self._next_id, self._next_id + len(new))
        self._next_id += len(new)
        tracked = poses.replace(track_ids=ids)

        # A track seen in the last frame and again now moved with the flow measured on it.
        followed = matched_tracks[self._last_seen[matched_tracks] == self._frame - 1]
        if len(self._motion) == len(self._tracks):
            self._velocity[followed] = self._motion[followed]
        self._motion = np.zeros((0, 2), np.float32)
        # Matched tracks take the new pose; unmatched ones keep their warped pose and age.
        keep = np.ones(len(self._tracks), bool)
        keep[matched_tracks] = False
        self._tracks = Poses.concatenate([self._tracks[keep], tracked], num_joints=len(self.sigmas))
        self._seen_xy = np.concatenate([self._seen_xy[keep], tracked.keypoints_xy])
        velocity = np.zeros((len(tracked), 2), np.float32)
        velocity[pairs[:, 1]] = self._velocity[matched_tracks]
        self._velocity = np.concatenate([self._velocity[keep], velocity])
        self._last_seen = np.concatenate([self._last_seen[keep], np.full(len(tracked), self._frame)])
        alive = self._frame - self._last_seen < config.memory_frames
        self._tracks, self._seen_xy, self._velocity, self._last_seen = (
            self._tracks[alive], self._seen_xy[alive], self._velocity[alive], self._last_seen[alive])
        return tracked

    def _usable_joints(self, poses: Poses) -> np.ndarray:
        """(N, J) bool: present joints scoring at least joint_threshold (or without a score)."""
        scores = poses.keypoint_scores
        return poses.visible & (np.isnan(scores) | (scores >= self.config.joint_threshold))

    @staticmethod
    def _pose_scores(poses: Poses) -> np.ndarray:
        """(N,) mean score over each pose's present joints (1 for a joint without a score; 0 for
        a pose without joints). All joints count, so a pose guessed on background scores low."""
        present = poses.visible
        scores = np.where(present, np.nan_to_num(poses.keypoint_scores, nan=1.0), 0.0)
        count = present.sum(axis=1)
        return np.divide(scores.sum(axis=1), count, out=np.zeros(len(poses)), where=count > 0)


def median_motion(before_xy: np.ndarray, after_xy: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """(N, J, 2), (N, J, 2), (N, J) bool -> (N, 2) float32: each pose's median joint displacement
    over its usable joints (0 for a pose without any)."""
    motion = np.zeros((len(before_xy), 2), np.float32)
    for i in np.flatnonzero(usable.any(axis=1)):
        motion[i] = np.median(after_xy[i, usable[i]] - before_xy[i, usable[i]], axis=0)
    return motion


def _shift_boxes(boxes_xyxy, before_xyxy, after_xyxy):
    """Move each box by the motion of the centre of its pose's joints (size unchanged)."""
    shift = ((after_xyxy[:, :2] + after_xyxy[:, 2:]) - (before_xyxy[:, :2] + before_xyxy[:, 2:])) / 2
    shift = np.nan_to_num(shift)
    return boxes_xyxy + np.concatenate([shift, shift], axis=1)

"""The flow-based OKS tracker (the only stateful part of the method).

Per frame k, the caller does::

    offered = tracker.propagate(flow)   # flow from frame k-1 to k, or None (identity motion)
    ...                                 # unify `offered` boxes with detections, estimate poses
    tracked = tracker.update(poses, may_start)  # frame k's poses with ids (-1: none yet)
    for final in tracker.pop_final():   # frames whose ids can no longer change, oldest first
        ...
    # at the end of the clip: tracker.flush()

``propagate`` warps every kept track's joints into frame k and offers the boxes around the warped
poses of the confirmed tracks seen in frame k-1, so a person the detector misses is still
estimated. ``update`` compares each new pose with each kept track by OKS (track pose warped into
frame k, or as last seen, vs. new pose) and matches greedily in three stages: poses from confident
detections and from the tracks' own flow-propagated boxes first, against every recent track, in
one pass (a propagated pose can only continue its own track); then poses from low-score
detections against the confirmed tracks left, which they can only continue; then the confident
poses left against tracks lost for longer than ``memory_frames``, with a match gate that widens
with the time lost. A confident pose left over starts a tentative track, unless it duplicates the
pose of a tracked person in the same frame (``duplicate_oks``); a tentative track gets an id once
matched in ``min_hits`` consecutive frames, and its earlier frames get the id then, which is why
frames are final only ``min_hits - 1`` frames later.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from .checks import setting, validate
from .frame import Detections, Poses
from .geometry import box_area, boxes_from_keypoints, propagate_points
from .joints import COCO_SIGMAS
from .matching import greedy_match
from .oks import oks_matrix


MEMORY_FRAMES = 24
MIN_HITS = 2
DUPLICATE_OKS = 0.7
REFIND_FRAMES = 50
REFIND_MIN_SIMILARITY = 0.3
REFIND_GATE_GROWTH = 0.05


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of the tracker. Defaults were chosen with scripts/bench_tracking.py (seeded
    synthetic scenes; a setting changed from its first value only where the gain held on a
    second seed); box_enlarge is the paper's."""

    memory_frames: int = setting(MEMORY_FRAMES, (
        "How many frames a track stays a match candidate after it was last seen (L_Q); its pose "
        "keeps being warped forward meanwhile. Higher: a person hidden for longer gets their id "
        "back; lower: fewer chances to hand an old id to a new person who enters nearby. 24 "
        "(about 1 s at 25 fps): on the benchmark id switches fall from 8 to 24 frames on both "
        "seeds (288 -> 246, 373 -> 305) and not beyond (32: 246, 320); on the real crowd clip "
        "ids per visible person 3.65 -> 3.32."), low=1)
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
    min_hits: int = setting(MIN_HITS, (
        "Frames in a row in which a new person must be matched (from confident detections) "
        "before they get a track id; their earlier frames are then written with it, so output "
        "is final min_hits - 1 frames late. Higher: fewer one-frame ghost tracks; lower: people "
        "seen only briefly are kept. 1: every pose gets an id at once."), low=1)
    duplicate_oks: float = setting(DUPLICATE_OKS, (
        "OKS, over the joints usable in both, above which a new person's pose duplicates the pose "
        "of a confirmed track in the same frame (or a tentative track's pose that of a better "
        "tentative one) and starts or continues no track: two detector boxes on one person "
        "(the detector's NMS keeps boxes overlapping up to its IoU threshold) give one track, "
        "not two. 0.7 (pose_nms_oks's value): on the crowd clip ids per visible person 3.82 -> "
        "3.32 (near-duplicate pose pairs 897 -> 637), the store aisle's duplicate id gone, the "
        "benchmark unchanged. Lower: more duplicates caught, and a second person whose pose "
        "the estimator draws on the first one's is not tracked (0.5: 3.03, 8% fewer people per "
        "frame); 1: off."), low=0.0, high=1.0)
    refind_frames: int = setting(REFIND_FRAMES, (
        "How many frames a confirmed track that has been lost for longer than memory_frames can "
        "still be found again (its last-seen pose moved by its own velocity, under a gate that "
        "widens with the time lost); 50 frames are 2 s at 25 fps. Higher: people hidden for "
        "longer get their id back; lower: fewer chances to give an old id to someone new. "
        "0 (or at most memory_frames): off."), low=0)
    refind_min_similarity: float = setting(REFIND_MIN_SIMILARITY, (
        "Lowest OKS, under the widened gate, at which a pose re-finds a lost track. Higher: "
        "fewer wrong re-finds (a newcomer where someone vanished); lower: more people re-found."),
        low=0.0, high=1.0)
    refind_gate_growth: float = setting(REFIND_GATE_GROWTH, (
        "How fast the re-find gate widens: the OKS keypoint tolerance of a lost track grows by "
        "this fraction per frame lost (0.05: twice as wide after 20 frames, 0.8 s at 25 fps). "
        "Higher: people who moved more while hidden are re-found, and wrong re-finds are "
        "likelier."), low=0.0)

    def __post_init__(self):
        validate(self)


class Tracker:
    """Gives the people of consecutive frames stable track ids. One instance per video.

    It owns its id counter: ids start at ``first_id`` and two trackers never share state.
    Inside, every track has a key of its own from birth; its public id is given when it is
    confirmed (``min_hits``), so ids count only confirmed people.
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
        self._next_key = 0
        # per kept track: its pose warped to the frame (track_ids = its key), its joints when last
        # seen, its own last measured motion (px per frame), its flow motion into this frame, the
        # frame it was last matched in, its public id (-1 while tentative), frames matched in a row
        self._tracks = Poses.empty(len(self.sigmas))
        self._seen_xy = np.zeros((0, len(self.sigmas), 2), np.float32)
        self._velocity = np.zeros((0, 2), np.float32)
        self._motion = np.zeros((0, 2), np.float32)
        self._last_seen = np.zeros(0, np.int64)
        self._ids = np.zeros(0, np.int64)
        self._hits = np.zeros(0, np.int64)
        self._id_of_key: dict[int, int] = {}
        self._pending: collections.deque = collections.deque()  # (frame, poses, row keys)
        self._frame = -1
        self._propagated = False

    @property
    def frame_index(self) -> int:
        """Index of the frame being processed (-1 before the first)."""
        return self._frame

    @property
    def tracks(self) -> Poses:
        """The kept confirmed tracks' poses (warped into the current frame) with their ids."""
        confirmed = self._ids >= 0
        return self._tracks[confirmed].replace(track_ids=self._ids[confirmed])

    def propagate(self, flow: np.ndarray | None = None) -> Detections:
        """Advance to the next frame, warping every kept track's joints by ``flow``.

        Args:
            flow: (H, W, 2) displacement from the previous frame to this one, a flow field
                (``posetrack.flow``: read only at the joints), or None for no motion (no frames
                available, or the first frame).

        Returns:
            Boxes of the warped poses of confirmed tracks seen in the previous frame whose mean
            joint score (over all their present joints) is at least ``propagate_min_score``,
            enlarged by ``box_enlarge``; each box's score is that mean joint score.
        """
        if self._propagated:
            raise RuntimeError("propagate() called twice for one frame; call update() in between")
        self._frame += 1
        self._propagated = True
        tracks = self._tracks
        self._offered = np.zeros(0, np.int64)
        if len(tracks) == 0:
            return Detections.empty()
        keypoints = tracks.keypoints_xy
        if flow is not None:
            keypoints = propagate_points(keypoints, flow)
            # each track's motion into this frame; it becomes the track's velocity if the track
            # is seen again in this frame (then the flow was its own)
            self._motion = median_motion(tracks.keypoints_xy, keypoints, self._usable_joints(tracks))
        hidden = self._last_seen < self._frame - 1
        if self.config.hidden_velocity and hidden.any():
            # (velocities are measured only with flow; without, they stay 0)
            keypoints = keypoints.copy() if flow is None else keypoints
            age = (self._frame - self._last_seen[hidden]).astype(np.float32)
            keypoints[hidden] = self._seen_xy[hidden] + age[:, None, None] * self._velocity[hidden, None, :]
        if flow is not None or (self.config.hidden_velocity and hidden.any()):
            self._tracks = tracks = tracks.replace(
                keypoints_xy=keypoints,
                boxes_xyxy=_shift_boxes(tracks.boxes_xyxy, boxes_from_keypoints(tracks.keypoints_xy, 0.0),
                                        boxes_from_keypoints(keypoints, 0.0)))
        scores = self._pose_scores(tracks)
        boxes = boxes_from_keypoints(keypoints, enlarge=self.config.box_enlarge)
        offer = ((self._last_seen == self._frame - 1) & (self._ids >= 0)
                 & (scores >= self.config.propagate_min_score) & ~np.isnan(boxes).any(axis=1))
        self._offered = tracks.track_ids[offer]
        return Detections(boxes[offer], scores[offer])

    def offered_track(self, rows: np.ndarray) -> np.ndarray:
        """The track each of this frame's offered boxes (``propagate``'s rows ``rows``) came from,
        to pass to ``update`` as ``from_track``."""
        return self._offered[np.asarray(rows, np.int64)]

    def update(self, poses: Poses, may_start: np.ndarray | None = None,
               from_track: np.ndarray | None = None) -> Poses:
        """Match this frame's poses to tracks (calls ``propagate(None)`` first if needed).

        Args:
            poses: the frame's poses (their track ids are ignored).
            may_start: (N,) bool, the pose may start a new track (it comes from a confident
                detection); the others only continue existing tracks. None: all may.
            from_track: (N,) the track a pose's box was offered by (``offered_track``), or -1: a
                pose from a track's own flow-propagated box can only continue that track, so
                it cannot hand one person's pose to the other of two people side by side.

        Returns:
            The poses with the ids known now: a confirmed track's id, or -1 for a pose on a
            tentative track or continuing none. ``pop_final`` gives the frames once final.
        """
        if not self._propagated:
            self.propagate(None)
        self._propagated = False
        config = self.config
        may_start = np.ones(len(poses), bool) if may_start is None else np.asarray(may_start, bool)
        if may_start.shape != (len(poses),):
            raise ValueError(f"may_start must have shape ({len(poses)},), got {may_start.shape}")
        age = self._frame - self._last_seen
        confirmed = self._ids >= 0
        recent = age <= config.memory_frames
        lost = confirmed & ~recent & (age <= config.refind_frames)
        track_of_pose = np.full(len(poses), -1, np.int64)

        origin = np.full(len(poses), -1, np.int64) if from_track is None else np.asarray(from_track, np.int64)

        def match(tracks, pose_mask, floor, widen=None):
            rows = np.flatnonzero(tracks)
            cols = np.flatnonzero(pose_mask & (track_of_pose < 0))
            if not len(rows) or not len(cols):
                return
            similarity = self._similarity(rows, poses[cols], widen)
            own = origin[cols]
            foreign = (own[None, :] >= 0) & (self._tracks.track_ids[rows][:, None] != own[None, :])
            # a pose that may not start a track does not continue a tentative one either
            unproven = ~confirmed[rows][:, None] & ~may_start[cols][None, :]
            similarity[foreign | unproven] = -np.inf  # never matches, whatever the floor (even 0)
            pairs, _, _ = greedy_match(similarity, floor)
            track_of_pose[cols[pairs[:, 1]]] = rows[pairs[:, 0]]

        # 1: poses from confident detections and from the tracks' own propagated boxes, against
        # every recent track in one greedy pass, best pairs first: a propagated pose that fits its
        # track better than a confident pose does keeps it. (A propagated pose only continues its
        # own track, which is confirmed; a tentative track only continues if seen in the last
        # frame: it dies at its first miss.)
        match(recent & (confirmed | (age <= 1)), may_start | (origin >= 0), config.min_similarity)
        # 2: poses from weak detections only continue the confirmed tracks left: a weak box is
        # often a part of someone's confident box, its pose on that person, so it must not beat
        # the confident pose to the track
        taken = np.zeros(len(self._tracks), bool)
        taken[track_of_pose[track_of_pose >= 0]] = True
        match(recent & confirmed & ~taken, ~may_start, config.min_similarity)
        # 3: confident poses left re-find tracks lost for longer, under a widening gate
        if lost.any():
            match(lost, may_start, config.refind_min_similarity,
                  widen=1.0 + config.refind_gate_growth * np.maximum(age - config.memory_frames, 0))
        # 4: a new person must be a different person: a pose that would start a track, or
        # continue a tentative one, is dropped when it duplicates a pose with a better claim
        if config.duplicate_oks < 1:
            self._drop_duplicates(poses, may_start, track_of_pose, config.duplicate_oks)
        matched = track_of_pose >= 0
        born = may_start & (track_of_pose == -1)  # -2: a dropped duplicate

        # matched tracks count a hit (tentative ones in a row), and are confirmed at min_hits
        matched_tracks = track_of_pose[matched]
        hits = np.ones(len(poses), np.int64)
        hits[matched] = np.where(self._last_seen[matched_tracks] == self._frame - 1,
                                 self._hits[matched_tracks] + 1, 1)
        ids = np.full(len(poses), -1, np.int64)
        ids[matched] = self._ids[matched_tracks]
        keys = np.full(len(poses), -1, np.int64)
        keys[matched] = self._tracks.track_ids[matched_tracks]
        keys[born] = np.arange(self._next_key, self._next_key + born.sum())
        self._next_key += int(born.sum())
        confirm = (matched | born) & (ids < 0) & (hits >= config.min_hits)
        ids[confirm] = np.arange(self._next_id, self._next_id + confirm.sum())
        self._next_id += int(confirm.sum())
        self._id_of_key.update(zip(keys[confirm].tolist(), ids[confirm].tolist()))

        # A track seen in the last frame and again now moved with the flow measured on it.
        followed = matched_tracks[self._last_seen[matched_tracks] == self._frame - 1]
        if len(self._motion) == len(self._tracks):
            self._velocity[followed] = self._motion[followed]
        self._motion = np.zeros((0, 2), np.float32)
        # Matched tracks take the new pose; unmatched ones keep their warped pose and age.
        keep = np.ones(len(self._tracks), bool)
        keep[matched_tracks] = False
        rows = matched | born
        new = poses[rows].replace(track_ids=keys[rows])
        velocity = np.zeros((len(new), 2), np.float32)
        velocity[matched[rows]] = self._velocity[matched_tracks]
        self._tracks = Poses.concatenate([self._tracks[keep], new], num_joints=len(self.sigmas))
        self._seen_xy = np.concatenate([self._seen_xy[keep], new.keypoints_xy])
        self._velocity = np.concatenate([self._velocity[keep], velocity])
        self._last_seen = np.concatenate([self._last_seen[keep], np.full(len(new), self._frame)])
        self._ids = np.concatenate([self._ids[keep], ids[rows]])
        self._hits = np.concatenate([self._hits[keep], hits[rows]])
        age = self._frame - self._last_seen
        alive = np.where(self._ids >= 0, age < max(config.memory_frames, config.refind_frames), age == 0)
        self._tracks, self._seen_xy, self._velocity, self._last_seen, self._ids, self._hits = (
            self._tracks[alive], self._seen_xy[alive], self._velocity[alive], self._last_seen[alive],
            self._ids[alive], self._hits[alive])
        self._pending.append((self._frame, poses, keys))
        return poses.replace(track_ids=ids)

    def _drop_duplicates(self, poses: Poses, may_start: np.ndarray, track_of_pose: np.ndarray,
                         threshold: float) -> None:
        """Set ``track_of_pose`` to -2 (no track, none started) for each pose that would start a
        track or continue a tentative one and duplicates a pose with a better claim: one on a
        confirmed track, or, for a tentative track's pose, one on a tentative track with a higher
        box score. Duplicates: OKS over the joints usable in both (at least two) above
        ``threshold``. A pose born in this frame is no claim against another: in the first frame
        of a person two overlapping boxes cannot be told apart from two people."""
        on_track = track_of_pose >= 0
        confirmed = np.zeros(len(poses), bool)
        confirmed[on_track] = self._ids[track_of_pose[on_track]] >= 0
        tentative = on_track & ~confirmed
        new = may_start & (track_of_pose == -1)
        candidates = np.flatnonzero(new | tentative)
        if not len(candidates) or not (confirmed | tentative).any():
            return
        order = np.argsort(-np.nan_to_num(poses.box_scores[candidates], nan=0.0), kind="stable")
        candidates = candidates[order]
        usable = self._usable_joints(poses)
        similarity = oks_matrix(poses.keypoints_xy[candidates], usable[candidates], poses.keypoints_xy,
                                usable, areas_a=box_area(poses.boxes_xyxy[candidates]),
                                sigmas=self.sigmas, over="both", min_joints=2)
        claim = confirmed.copy()
        for i, row in zip(candidates, similarity):
            if (row[claim] > threshold).any():
                track_of_pose[i] = -2
            elif tentative[i]:
                claim[i] = True

    def pop_final(self) -> list[Poses]:
        """The frames whose ids can no longer change (``min_hits - 1`` frames back and older),
        oldest first, each once: poses on confirmed tracks with their ids; poses that started no
        track, continued none, or whose tentative track died, are left out."""
        out = []
        while self._pending and self._pending[0][0] <= self._frame - (self.config.min_hits - 1):
            out.append(self._final(*self._pending.popleft()))
        if len(self._id_of_key) > 2 * len(self._tracks) + 64:  # forget ids no frame can need
            needed = set(self._tracks.track_ids.tolist())
            needed.update(k for _, _, keys in self._pending for k in keys.tolist())
            self._id_of_key = {k: v for k, v in self._id_of_key.items() if k in needed}
        return out

    def flush(self) -> list[Poses]:
        """Every frame not yet given by ``pop_final``, final now, oldest first. The clip ends: a
        tentative track still alive (born in the last ``min_hits - 1`` frames and matched in
        every frame since) is confirmed, as it had no frames left to prove itself; so a clip
        shorter than ``min_hits`` frames still has its people."""
        tentative = np.flatnonzero(self._ids < 0)
        ids = np.arange(self._next_id, self._next_id + len(tentative))
        self._next_id += len(tentative)
        self._ids[tentative] = ids
        self._id_of_key.update(zip(self._tracks.track_ids[tentative].tolist(), ids.tolist()))
        out = [self._final(*entry) for entry in self._pending]
        self._pending.clear()
        return out

    def _final(self, frame: int, poses: Poses, keys: np.ndarray) -> Poses:
        ids = np.array([self._id_of_key.get(k, -1) for k in keys.tolist()], np.int64)
        return poses.replace(track_ids=ids)[ids >= 0]

    def _similarity(self, rows: np.ndarray, poses: Poses, widen: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), N) OKS of the kept tracks ``rows`` against ``poses``: the better of the
        track's warped pose and (``match_last_seen``) its last-seen pose. ``widen`` (per kept
        track) multiplies the keypoint tolerance."""
        track_poses = self._tracks[rows]
        track_joints, pose_joints = self._usable_joints(track_poses), self._usable_joints(poses)
        areas = box_area(track_poses.boxes_xyxy)
        if widen is not None:
            areas = areas * widen[rows] ** 2
        similarity = oks_matrix(track_poses.keypoints_xy, track_joints, poses.keypoints_xy,
                                pose_joints, areas_a=areas, sigmas=self.sigmas)
        if self.config.match_last_seen:
            # the track's joints as last seen; usable where its warped joints are
            seen = oks_matrix(self._seen_xy[rows], track_joints, poses.keypoints_xy,
                              pose_joints, areas_a=areas, sigmas=self.sigmas)
            similarity = np.maximum(similarity, seen)
        return similarity

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

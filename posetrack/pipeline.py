"""The end-to-end loop (DESIGN.md section 2): detect, propagate, unify, estimate, match.

Additions to the paper's steps, for crowds: the detector's own NMS has already decided which
detections are different people, so unification never suppresses a detection by another
detection (only flow-propagated boxes are suppressed, against detections and each other), and
after estimation a pose from a propagated box that duplicates another pose is dropped by OKS, so
the duplicate neither steals the person's track nor starts a false one. Weak detections (below
the detection stage's ``min_score``, down to its ``weak_min_score``) and propagated boxes give
poses that may only continue existing tracks (two-stage association, ``Tracker.update``).

The loop takes its stages as plain callables, so any detector, pose model or flow method (or a
fake in a test) plugs in:

* ``detect(index, image) -> Detections``: person boxes of frame ``index`` (those scoring at
  least the detection stage's ``min_score``: the detector and the detections file filter them);
* ``flow(previous_image, image)`` -> the flow between them: an (H, W, 2) displacement or a flow
  field that the tracker reads at the joints only (``FlowEstimator.field``), or ``flow=None``
  for no motion;
* ``estimate(image, detections) -> Poses``: keypoints for every box, one batch per frame.

Images are (H, W, 3) uint8 BGR arrays, as OpenCV decodes them.
"""

from __future__ import annotations

import collections
import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from .checks import setting, validate
from .frame import Detections, Poses
from .geometry import box_area, box_iou, suppress_by_similarity
from .oks import oks_matrix
from .tracker import Tracker

STAGES = ("decode", "detect", "flow", "pose", "match")


# Where a box (and the pose estimated in it) came from.
DETECTED, WEAK, PROPAGATED = 0, 1, 2


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the loop around the models and the tracker. Which detections are estimated
    at all is the detection stage's ``min_score`` (``detection.DetectorConfig``)."""

    unify_iou: float = setting(0.6, (
        "Box IoU above which a flow-propagated box counts as the same person as a detection or "
        "a better propagated box and is dropped (a weak detection, below the detection stage's "
        "min_score, is dropped likewise for a better propagated box). A detection is never "
        "dropped for another detection: the detector's NMS has decided they are different "
        "people. Higher: fewer propagated boxes dropped, more duplicate poses for pose_nms_oks "
        "to catch."), low=0.0, high=1.0)
    pose_nms_oks: float = setting(0.7, (
        "OKS, over the joints confident in both, above which a pose from a flow-propagated box "
        "duplicates a pose from a detection (or from a better propagated box) and is dropped. "
        "Two poses from two detections are always kept, however alike. Lower: fewer duplicate "
        "poses of one person; 1: off."), low=0.0, high=1.0)
    output_joint_threshold: float = setting(0.4, (
        "Joints scoring below this are written as absent (the paper's 0.4); a person left with "
        "no joint is not written. Lower: more joints, more of them wrong."), low=0.0, high=1.0)

    def __post_init__(self):
        validate(self)


class StageTimes:
    """Wall-clock seconds spent in each stage, summed over frames.

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called at the end of every timed block so that
    GPU work is charged to the stage that queued it; without it asynchronous work would be billed
    to whichever stage next waits for the device.
    """

    def __init__(self, sync: Callable[[], None] | None = None):
        self.seconds = {stage: 0.0 for stage in STAGES}
        self.sync = sync

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync is not None:
                self.sync()
            self.seconds[stage] += time.perf_counter() - start

    def iterate(self, stage: str, items: Iterable):
        """Yield from ``items``, charging the time spent waiting for each item to ``stage``."""
        iterator = iter(items)
        while True:
            with self(stage):
                item = next(iterator, StopIteration)
            if item is StopIteration:
                return
            yield item

    def ms_per_frame(self, frames: int) -> dict:
        return {stage: 1000 * s / max(frames, 1) for stage, s in self.seconds.items()}


def unify_boxes(detections: Detections, weak: Detections, propagated: Detections,
                iou_threshold: float) -> tuple[Detections, np.ndarray]:
    """Confident detections, weak detections and flow-propagated boxes, without duplicates.

    Every confident detection is kept. Weak detections and propagated boxes are visited by
    descending score and dropped when their IoU with a kept box exceeds ``iou_threshold``, except
    that a detection is never dropped for another detection (the detector's NMS already decided
    they are different people): a propagated box yields to any detection and to a better
    propagated box, a weak detection to a better propagated box.

    Returns:
        The kept boxes (confident, weak, propagated, each in input order), (K,) int their
        source (``DETECTED``, ``WEAK`` or ``PROPAGATED``) and (K,) their rows in the three
        inputs taken one after the other.
    """
    boxes = Detections.concatenate([detections, weak, propagated])
    source = np.repeat([DETECTED, WEAK, PROPAGATED], [len(detections), len(weak), len(propagated)])
    keep = _suppress_propagated(box_iou(boxes.boxes_xyxy, boxes.boxes_xyxy), boxes.scores, source,
                                iou_threshold)
    return boxes[keep], source[keep], keep


def pose_nms(poses: Poses, source: np.ndarray, oks_threshold: float,
             joint_threshold: float) -> np.ndarray:
    """Indices (ascending) of the poses to keep: a pose from a propagated box is dropped when it
    duplicates a pose from a detection or from a better propagated box; poses from detections
    are all kept.

    Two poses are duplicates when their OKS, averaged over the joints that score at least
    ``joint_threshold`` in both (at least two such joints), exceeds ``oks_threshold``: an occluded
    person estimated from two boxes has few confident joints, but those agree to a few pixels.
    """
    if len(poses) < 2:
        return np.arange(len(poses))
    visible = poses.visible & (poses.keypoint_scores >= joint_threshold)
    similarity = oks_matrix(poses.keypoints_xy, visible, poses.keypoints_xy, visible,
                            box_area(poses.boxes_xyxy), over="both", min_joints=2)
    source = np.where(np.asarray(source) == PROPAGATED, PROPAGATED, DETECTED)
    return _suppress_propagated(similarity, poses.box_scores, source, oks_threshold)


def _suppress_propagated(similarity: np.ndarray, scores: np.ndarray, source: np.ndarray,
                         threshold: float) -> np.ndarray:
    """NMS in which confident detections come first and no detection suppresses a detection:
    -> (K,) ascending indices of the kept items."""
    detection = source != PROPAGATED
    similarity = np.where(detection[:, None] & detection[None, :], -np.inf, similarity)
    priority = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0) + 2.0 * (source == DETECTED)
    return np.sort(suppress_by_similarity(similarity, priority, threshold))


def filter_output(poses: Poses, config: PipelineConfig) -> Poses:
    """Mark joints below the joint threshold absent (NaN), as the paper does for the evaluated
    output, and drop people left with no joint."""
    keypoints = poses.keypoints_xy.copy()
    keypoints[poses.keypoint_scores < config.output_joint_threshold] = np.nan
    poses = poses.replace(keypoints_xy=keypoints)
    return poses[poses.visible.any(axis=1)]


class TrackingStep:
    """The method's work on one frame once its detections and flow are known: propagate the
    tracks' joints, unify the offered boxes with the detections, estimate a pose in every box,
    suppress duplicate poses, match the poses to tracks.

    ``pipeline.iter_tracked`` and the tracking benchmark's simulation (``synthetic``) both call
    it, so the benchmark measures the loop that ``posetrack run`` runs. Calls must come in frame
    order, one per frame, then ``flush()`` once at the end of the clip.

    Detections scoring at least ``min_score`` (the detection stage's) give poses that may start
    tracks; weaker ones (the detector passes them down to its ``weak_min_score``) and
    flow-propagated boxes give poses that only continue tracks. A new track is written once confirmed (``TrackerConfig.min_hits``), with its
    earlier frames, so a frame is final ``min_hits - 1`` frames after it was passed in.

    Each call returns the frames whose poses are final, oldest first, as ``(tag, poses)``:
    ``tag`` is whatever the caller passed with the frame (e.g. its index and image), ``poses``
    its tracked (unfiltered) poses; apply ``filter_output`` before writing evaluated output.
    """

    def __init__(self, estimate, tracker: Tracker, config: PipelineConfig, times: StageTimes | None = None,
                 min_score: float = 0.0):
        self.estimate = estimate
        self.min_score = min_score
        self.tracker = tracker
        self.config = config
        self.times = times if times is not None else StageTimes()
        self._tags: collections.deque = collections.deque()

    def __call__(self, image, detections: Detections, motion: np.ndarray | None,
                 tag=None) -> list[tuple[object, Poses]]:
        """Track one frame.

        Args:
            image: what ``estimate`` takes with the boxes (the (H, W, 3) frame).
            detections: the detector's boxes of this frame, all scores.
            motion: (H, W, 2) flow from the previous frame into this one, or None.
            tag: returned with this frame's poses once they are final.
        """
        config, times, tracker = self.config, self.times, self.tracker
        scores = detections.scores
        confident, weak = detections[scores >= self.min_score], detections[scores < self.min_score]
        with times("match"):
            propagated = tracker.propagate(motion)
            boxes, source, rows = unify_boxes(confident, weak, propagated, config.unify_iou)
            from_track = np.full(len(boxes), -1, np.int64)
            offered = source == PROPAGATED
            from_track[offered] = tracker.offered_track(rows[offered] - len(confident) - len(weak))
        with times("pose"):
            poses = self.estimate(image, boxes)
        with times("match"):
            keep = pose_nms(poses, source, config.pose_nms_oks, config.output_joint_threshold)
            tracker.update(poses[keep], may_start=source[keep] == DETECTED, from_track=from_track[keep])
            final = tracker.pop_final()
        self._tags.append(tag)
        return [(self._tags.popleft(), poses) for poses in final]

    def flush(self) -> list[tuple[object, Poses]]:
        """The frames still held back at the end of the clip (final now), oldest first."""
        return [(self._tags.popleft(), poses) for poses in self.tracker.flush()]


def iter_tracked(frames: Iterable, detect, estimate, flow, tracker: Tracker,
                 config: PipelineConfig, times: StageTimes, min_score: float = 0.0):
    """Run the method over ``(index, image)`` pairs, yielding ``(index, image, poses)`` per frame.

    The poses are unfiltered (the tracker saw all of them); apply ``filter_output`` before
    writing evaluated output. Nothing is kept between frames but the tracker's state (and the
    few frames ``TrackingStep`` holds back), so hours of video run in constant memory.
    Detections below ``min_score`` only continue tracks (``TrackingStep``).
    """
    step = TrackingStep(estimate, tracker, config, times, min_score)
    previous = None
    for index, image in times.iterate("decode", frames):
        with times("detect"):
            detections = detect(index, image)
        with times("flow"):
            motion = flow(previous, image) if flow is not None and previous is not None else None
        for (done, done_image), poses in step(image, detections, motion, tag=(index, image)):
            yield done, done_image, poses
        previous = image
    for (done, done_image), poses in step.flush():
        yield done, done_image, poses


def track_frames(frames: Iterable, detect, estimate, flow, tracker: Tracker, config: PipelineConfig,
                 times: StageTimes) -> list[Poses]:
    """``iter_tracked`` collected: each frame's tracked (unfiltered) poses."""
    return [poses for _, _, poses in iter_tracked(frames, detect, estimate, flow, tracker, config, times)]

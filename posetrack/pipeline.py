"""The end-to-end loop (DESIGN.md section 2): detect, propagate, unify, estimate, match.

One step is added to the paper's: after estimation, poses that duplicate a higher-scoring pose
(a detected and a propagated box around the same person) are suppressed by OKS, so the duplicate
neither steals the person's track nor starts a false one.

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
from .geometry import box_area, nms, suppress_by_similarity
from .oks import oks_matrix
from .tracker import Tracker

STAGES = ("decode", "detect", "flow", "pose", "match")


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the loop around the models and the tracker. Which detections are estimated
    at all is the detection stage's ``min_score`` (``detection.DetectorConfig``)."""

    unify_iou: float = setting(0.6, (
        "NMS IoU above which a detected box and a flow-propagated box count as one person "
        "(the higher-scoring one is kept). Higher: fewer people merged, more duplicate poses; "
        "lower: two people close together may become one."), low=0.0, high=1.0)
    pose_nms_oks: float = setting(0.7, (
        "OKS above which two estimated poses count as one person (the one with the higher box "
        "score is kept), over the joints confident in both; catches a detected and a propagated "
        "box that overlap too little for the box NMS but hold the same person. Lower: fewer "
        "duplicates, risk of dropping one of two people in a tight embrace; 1: off."),
        low=0.0, high=1.0)
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


def unify_boxes(detections: Detections, propagated: Detections, iou_threshold: float) -> Detections:
    """Union of detected and flow-propagated boxes, with overlapping pairs merged by NMS."""
    both = Detections.concatenate([detections, propagated])
    return both[nms(both.boxes_xyxy, both.scores, iou_threshold)]


def pose_nms(poses: Poses, oks_threshold: float, joint_threshold: float) -> Poses:
    """Drop poses that duplicate a pose with a higher box score.

    Two poses are duplicates when their OKS, averaged over the joints that score at least
    ``joint_threshold`` in both (at least two such joints), exceeds ``oks_threshold``: an occluded
    person estimated from two boxes has few confident joints, but those agree to a few pixels.
    """
    if len(poses) < 2:
        return poses
    visible = poses.visible & (poses.keypoint_scores >= joint_threshold)
    similarity = oks_matrix(poses.keypoints_xy, visible, poses.keypoints_xy, visible,
                            box_area(poses.boxes_xyxy), over="both", min_joints=2)
    return poses[suppress_by_similarity(similarity, poses.box_scores, oks_threshold)]


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

    Each call returns the frames whose poses are final, oldest first, as ``(tag, poses)``:
    ``tag`` is whatever the caller passed with the frame (e.g. its index and image), ``poses``
    its tracked (unfiltered) poses; apply ``filter_output`` before writing evaluated output.
    """

    def __init__(self, estimate, tracker: Tracker, config: PipelineConfig, times: StageTimes | None = None):
        self.estimate = estimate
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
        with times("match"):
            propagated = tracker.propagate(motion)
            boxes = unify_boxes(detections, propagated, config.unify_iou)
        with times("pose"):
            poses = self.estimate(image, boxes)
        with times("match"):
            poses = tracker.update(pose_nms(poses, config.pose_nms_oks, config.output_joint_threshold))
        self._tags.append(tag)
        return [(self._tags.popleft(), poses)]

    def flush(self) -> list[tuple[object, Poses]]:
        """The frames still held back at the end of the clip (final now), oldest first."""
        return []


def iter_tracked(frames: Iterable, detect, estimate, flow, tracker: Tracker,
                 config: PipelineConfig, times: StageTimes):
    """Run the method over ``(index, image)`` pairs, yielding ``(index, image, poses)`` per frame.

    The poses are unfiltered (the tracker saw all of them); apply ``filter_output`` before
    writing evaluated output. Nothing is kept between frames but the tracker's state (and the
    few frames ``TrackingStep`` holds back), so hours of video run in constant memory.
    """
    step = TrackingStep(estimate, tracker, config, times)
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

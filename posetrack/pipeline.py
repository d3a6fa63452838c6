"""The end-to-end loop (DESIGN.md section 2): detect, propagate, unify, estimate, match.

Additions to the paper's steps, for crowds: the detector's own NMS has already decided which
detections are different people, so unification never suppresses a detection by another
detection (only flow-propagated boxes are suppressed, against detections and each other), and
after estimation a pose from a propagated box that duplicates another pose is dropped by OKS, so
the duplicate neither steals the person's track nor starts a false one. Weak detections (below
the detection stage's ``min_score``, down to its ``weak_min_score``) and propagated boxes give
poses that may only continue existing tracks; ``Tracker.update`` matches the confident and the
propagated poses first, weak ones after, and starts no track for a pose that duplicates a
tracked person's (two detector boxes on one person).

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
import concurrent.futures
import contextlib
import itertools
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
    frame_batch: int = setting(0, (
        "Frames whose detection and optical flow run as one batch (pose and matching still go "
        "frame by frame; the tracks are the same for any value), the next batch prepared in a "
        "worker thread meanwhile. Higher: fewer, larger detector and RAFT calls (faster on a "
        "GPU), more decoded frames held in memory. 0: by device, 8 on a GPU, 1 on a CPU (where "
        "larger batches measured no faster)."), low=0, high=256)
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


def chunks_of(items: Iterable, size: int):
    """Consecutive lists of ``size`` items (the last one shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class FrameInputs:
    """What each frame's tracking step needs besides the tracker: its detections and the flow
    from the previous frame, computed a chunk of K frames at a time.

    Detection and flow do not depend on the tracks, so for K frames they run as one batch
    (``detect_batch``: K images in one detector call; ``flow_batch``: the K flows of K + 1
    frames, the shared frames prepared once), while the pose stage and the matching, which need
    the previous frame's tracks, go frame by frame. With ``overlap`` a worker thread decodes and
    prepares the next chunk while the caller works on this one. The frames, detections and flows
    are the same for every K, so are the tracks.

    Args:
        detect_batch: ``(indices, images) -> list[Detections]``.
        flow_batch: ``(images) -> list`` of the ``len(images) - 1`` flows between consecutive
            images, or None for no flow.
        frame_batch: K, frames per chunk.
        overlap: prepare the next chunk in a worker thread.
        times: detect and flow time is charged there (with ``overlap``, the worker's time, which
            runs beside the pose stage).
        stream: a ``torch.cuda.Stream`` for the worker's device work (so it can overlap the pose
            stage's on the GPU), or None.
    """

    def __init__(self, detect_batch, flow_batch, frame_batch: int = 1, overlap: bool = False,
                 times: StageTimes | None = None, stream=None):
        if not isinstance(frame_batch, int) or frame_batch < 1:
            raise ValueError(f"frame_batch must be a positive integer, got {frame_batch!r}")
        self.detect_batch = detect_batch
        self.flow_batch = flow_batch
        self.frame_batch = frame_batch
        self.overlap = overlap
        self.times = times if times is not None else StageTimes()
        self.stream = stream
        if stream is not None:  # the worker waits for its own stream only, not the pose stage's
            self.times = StageTimes(stream.synchronize)
            self.times.seconds = (times if times is not None else StageTimes()).seconds

    def __call__(self, frames: Iterable):
        """``(index, image)`` pairs -> ``(index, image, detections, motion)`` per frame, in order
        (motion None for the first frame)."""
        chunks = chunks_of(self.times.iterate("decode", frames), self.frame_batch)
        if not self.overlap:
            previous = None
            for chunk in chunks:
                yield from self._prepare(chunk, previous)
                previous = chunk[-1][1]
            return
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="posetrack-prepare") as pool:
            ahead = pool.submit(self._prepare_next, chunks, None)
            while (result := ahead.result()) is not None:
                prepared, done = result
                ahead = pool.submit(self._prepare_next, chunks, prepared[-1][1])
                self._wait_for_worker(prepared, done)
                yield from prepared

    def _prepare_next(self, chunks, previous):
        """The worker's job: the next chunk, prepared; None at the end of the frames."""
        chunk = next(chunks, None)
        if chunk is None:
            return None
        if self.stream is None:
            return self._prepare(chunk, previous), None
        import torch

        with torch.cuda.stream(self.stream):
            prepared = self._prepare(chunk, previous)
            done = torch.cuda.Event()
            done.record(self.stream)
        return prepared, done

    def _wait_for_worker(self, prepared, done) -> None:
        """On a GPU: the caller's stream waits for the worker's chunk, and the chunk's flow
        tensors are marked as used there, so the allocator does not hand their memory to the
        worker's next chunk before the caller is done with it."""
        if done is None:
            return
        import torch

        current = torch.cuda.current_stream()
        current.wait_event(done)
        for _, _, _, motion in prepared:
            flow = getattr(motion, "flow", None)
            if isinstance(flow, torch.Tensor):
                flow.record_stream(current)

    def _prepare(self, chunk, previous) -> list:
        indices = [index for index, _ in chunk]
        images = [image for _, image in chunk]
        with self.times("detect"):
            detections = self.detect_batch(indices, images)
        with self.times("flow"):
            if self.flow_batch is None:
                motions = [None] * len(chunk)
            elif previous is None:
                motions = [None] + list(self.flow_batch(images))
            else:
                motions = list(self.flow_batch([previous] + images))
        return [(index, image, found, motion)
                for index, image, found, motion in zip(indices, images, detections, motions)]


def per_frame_batches(detect, flow):
    """``(detect_batch, flow_batch)`` for :class:`FrameInputs` from per-frame callables
    ``detect(index, image)`` and ``flow(previous, image)`` (None: no flow)."""
    def detect_batch(indices, images):
        return [detect(index, image) for index, image in zip(indices, images)]

    def flow_batch(images):
        return [flow(a, b) for a, b in zip(images, images[1:])]
    return detect_batch, (None if flow is None else flow_batch)


def iter_tracked(frames: Iterable, detect, estimate, flow, tracker: Tracker,
                 config: PipelineConfig, times: StageTimes, min_score: float = 0.0,
                 inputs: FrameInputs | None = None):
    """Run the method over ``(index, image)`` pairs, yielding ``(index, image, poses)`` per frame.

    ``detect(index, image)`` and ``flow(previous, image)`` are called frame by frame unless
    ``inputs`` (a :class:`FrameInputs`, or any ``inputs(frames)`` giving ``(index, image,
    detections, motion)``: detection and flow a chunk of frames at a time, maybe in a worker
    thread) is given, in which case they are not used. The poses are unfiltered (the tracker saw
    all of them); apply ``filter_output`` before writing evaluated output. Nothing is kept between
    frames but the tracker's state (and the few frames ``TrackingStep`` holds back, and one chunk
    of frames), so hours of video run in constant memory. Detections below ``min_score`` only
    continue tracks (``TrackingStep``).
    """
    step = TrackingStep(estimate, tracker, config, times, min_score)
    if inputs is None:
        inputs = FrameInputs(*per_frame_batches(detect, flow), times=times)
    for index, image, detections, motion in inputs(frames):
        for (done, done_image), poses in step(image, detections, motion, tag=(index, image)):
            yield done, done_image, poses
    for (done, done_image), poses in step.flush():
        yield done, done_image, poses


def track_frames(frames: Iterable, detect, estimate, flow, tracker: Tracker, config: PipelineConfig,
                 times: StageTimes, inputs: FrameInputs | None = None) -> list[Poses]:
    """``iter_tracked`` collected: each frame's tracked (unfiltered) poses."""
    return [poses for _, _, poses in iter_tracked(frames, detect, estimate, flow, tracker, config,
                                                  times, inputs=inputs)]

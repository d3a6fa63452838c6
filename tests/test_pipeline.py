import numpy as np
import pytest

from posetrack.frame import Detections, Poses
from posetrack.pipeline import (DETECTED, PROPAGATED, WEAK, PipelineConfig, StageTimes, filter_output,
                                iter_tracked, pose_nms, track_frames, unify_boxes)
from posetrack.tracker import Tracker, TrackerConfig


def fake_estimate(image, detections):
    """A 'pose model' that puts a 17-joint grid inside every box, scored by the box."""
    n = len(detections)
    grid = np.stack(np.meshgrid(np.linspace(0.08, 0.92, 17), [0.5]), -1).reshape(17, 2)
    boxes = detections.boxes_xyxy
    size = boxes[:, 2:] - boxes[:, :2]
    keypoints = boxes[:, None, :2] + grid[None] * size[:, None]
    keypoints[:, :, 1] += np.linspace(-0.42, 0.42, 17)[None] * size[:, None, 1]
    return Poses(boxes, detections.scores, keypoints, np.full((n, 17), 0.9), np.full(n, -1))


def scene(num_frames=12, missed=(5, 6), speed=8):
    """Two 'people' (boxes) walking apart; person 0 is not detected in the ``missed`` frames."""
    frames, detections = [], []
    for k in range(num_frames):
        a = [100 + speed * k, 100, 160 + speed * k, 260]
        b = [400 - speed * k, 120, 460 - speed * k, 280]
        frames.append((k, np.zeros((360, 640, 3), np.uint8)))
        boxes = [b] if k in missed else [a, b]
        detections.append(Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9)))
    return frames, detections


def motion_flow(previous, image):
    """The true motion of the scene: left half moves right 8 px, right half moves left 8 px."""
    flow = np.zeros((360, 640, 2), np.float32)
    flow[:, :280, 0], flow[:, 280:, 0] = 8, -8
    return flow


def test_propagation_recovers_missed_detections_and_keeps_ids():
    frames, detections = scene()
    times = StageTimes()
    results = track_frames(frames, lambda k, image: detections[k], fake_estimate, motion_flow,
                           Tracker(), PipelineConfig(), times)
    assert [sorted(r.track_ids.tolist()) for r in results] == [[0, 1]] * 12  # the missed frames too
    # in the missed frames person 0's pose comes from the flow-propagated box, close to the truth
    truth_x = 100 + 8 * 5
    assert abs(float(results[5][results[5].track_ids == 0].boxes_xyxy[0, 0]) - truth_x) < 6
    assert set(times.seconds) == {"decode", "detect", "flow", "pose", "match"}
    assert all(v >= 0 for v in times.ms_per_frame(12).values())


def test_without_flow_the_missed_person_is_still_propagated_in_place():
    frames, detections = scene(missed=(5,), speed=3)
    results = track_frames(frames, lambda k, image: detections[k], fake_estimate, None,
                           Tracker(), PipelineConfig(), StageTimes())
    assert [len(r) for r in results] == [2] * 12
    assert [sorted(r.track_ids.tolist()) for r in results] == [[0, 1]] * 12


def test_weak_detections_continue_a_track_but_never_start_one():
    frames, detections = scene(num_frames=8, missed=())
    # person 0's score drops below min_score in frames 3-5 (and no flow box can stand
    # in: propagate_min_score 1); person 1 is weak from the start
    flicker = [Detections(d.boxes_xyxy, [0.2 if 3 <= k <= 5 else 0.9, 0.2]) for k, d in enumerate(detections)]
    tracker = Tracker(TrackerConfig(propagate_min_score=1.0))
    results = list(iter_tracked(frames, lambda k, image: flicker[k], fake_estimate, None, tracker,
                                PipelineConfig(), StageTimes(), min_score=0.5))
    assert [r.track_ids.tolist() for _, _, r in results] == [[0]] * 8
    # the detection stage filters weak boxes out (weak_min_score = min_score): a gap
    strong = [d[d.scores >= 0.5] for d in flicker]
    off = list(iter_tracked(frames, lambda k, image: strong[k], fake_estimate, None,
                            Tracker(TrackerConfig(propagate_min_score=1.0)), PipelineConfig(),
                            StageTimes(), min_score=0.5))
    assert [r.track_ids.tolist() for _, _, r in off] == [[0]] * 3 + [[]] * 3 + [[0]] * 2


A, B, FAR = [0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]  # A and B overlap (IoU 0.82); FAR overlaps neither


@pytest.mark.parametrize("det, weak, prop, kept, sources", [
    # two overlapping detections are two people: both kept (the detector's NMS decided)
    ([(A, 0.9), (B, 0.6)], [], [], [0.9, 0.6], [DETECTED, DETECTED]),
    # a propagated box on a detection yields to it, even with a higher score
    ([(A, 0.5)], [], [(B, 0.9)], [0.5], [DETECTED]),
    # overlapping propagated boxes: the better one stays; one elsewhere stays too
    ([], [], [(A, 0.7), (B, 0.5), (FAR, 0.8)], [0.7, 0.8], [PROPAGATED] * 2),
    # a weak detection on a confident one: both detections, both kept
    ([(A, 0.5)], [(B, 0.2)], [], [0.5, 0.2], [DETECTED, WEAK]),
    # a weak detection yields to a better propagated box ...
    ([], [(A, 0.2)], [(B, 0.7)], [0.7], [PROPAGATED]),
    # ... and a propagated box to a better weak detection
    ([], [(A, 0.2)], [(B, 0.1)], [0.2], [WEAK]),
    ([], [], [], [], []),  # nothing at all
])
def test_unify_boxes_never_drops_a_detection_for_a_detection(det, weak, prop, kept, sources):
    def boxes(items):
        return Detections(np.array([b for b, _ in items], np.float32).reshape(-1, 4),
                          [score for _, score in items])

    unified, source, _ = unify_boxes(boxes(det), boxes(weak), boxes(prop), 0.5)
    assert unified.scores.tolist() == pytest.approx(kept)
    assert source.tolist() == sources


def test_filter_output_thresholds():
    poses = fake_estimate(None, Detections([[0, 0, 10, 10], [0, 0, 5, 5]], [0.9, 0.2]))
    scores = poses.keypoint_scores.copy()
    scores[0, :3] = 0.1
    out = filter_output(poses.replace(keypoint_scores=scores), PipelineConfig())
    # the box score filters nothing here (the detection stage's min_score did, before estimation)
    assert len(out) == 2 and out.visible.sum() == 14 + 17
    scores[0] = 0.1  # every joint below the threshold: the person goes
    scores[1] = 0.1
    assert len(filter_output(poses.replace(keypoint_scores=scores), PipelineConfig())) == 0
    with pytest.raises(ValueError, match=r"unify_iou must be a number in \[0, 1\], got 2"):
        PipelineConfig(unify_iou=2)


def test_pose_nms_drops_propagated_duplicates_and_keeps_every_detected_person():
    boxes = Detections([[0, 0, 60, 160], [3, 2, 63, 162], [200, 0, 260, 160], [202, 1, 262, 161]],
                       [0.6, 0.9, 0.8, 0.7])
    poses = fake_estimate(None, boxes)
    scores = poses.keypoint_scores.copy()
    scores[0, 4:] = 0.1  # the weaker copy is confident in only four joints, still a duplicate
    poses = poses.replace(keypoint_scores=scores)
    # 0 and 1 are alike: propagated 0 yields to detected 1; 2 and 3 are alike but both detected
    source = np.array([PROPAGATED, DETECTED, DETECTED, WEAK])
    assert pose_nms(poses, source, 0.7, 0.4).tolist() == [1, 2, 3]
    # two propagated duplicates: the better box score stays
    assert pose_nms(poses[:2], np.array([PROPAGATED, PROPAGATED]), 0.7, 0.4).tolist() == [1]
    # both from detections: both stay, however alike (the ballroom couple)
    assert pose_nms(poses[:2], np.array([DETECTED, DETECTED]), 0.7, 0.4).tolist() == [0, 1]
    assert pose_nms(poses, np.full(4, PROPAGATED), 1.0, 0.4).tolist() == [0, 1, 2, 3]  # 1: off
    assert pose_nms(poses[:1], np.array([PROPAGATED]), 0.7, 0.4).tolist() == [0]


# ---------------------------------------------------------------------------------------------
# Frames in chunks: detection and flow K frames at a time, the tracks unchanged


@pytest.mark.parametrize("frame_batch, overlap", [(1, True), (3, False), (8, False), (8, True), (20, True)])
def test_chunked_detection_and_flow_give_the_same_tracks(frame_batch, overlap):
    from posetrack.pipeline import FrameInputs

    frames, detections = scene(num_frames=14, missed=(5, 6, 9))
    calls = []

    def detect(k, image):
        return detections[k]

    def detect_batch(indices, images):
        calls.append(len(indices))
        return [detections[k] for k in indices]

    def flow_batch(images):
        return [motion_flow(a, b) for a, b in zip(images, images[1:])]
    reference = track_frames(frames, detect, fake_estimate, motion_flow, Tracker(), PipelineConfig(),
                             StageTimes())
    times = StageTimes()
    inputs = FrameInputs(detect_batch, flow_batch, frame_batch, overlap, times)
    chunked = track_frames(frames, None, fake_estimate, None, Tracker(), PipelineConfig(), times, inputs)
    assert calls == [min(frame_batch, 14 - i) for i in range(0, 14, frame_batch)]  # one call per chunk
    assert len(chunked) == len(reference) == 14
    for got, want in zip(chunked, reference):
        np.testing.assert_array_equal(got.track_ids, want.track_ids)
        np.testing.assert_allclose(got.keypoints_xy, want.keypoints_xy, atol=1e-5)
    assert times.seconds["detect"] > 0 and times.seconds["flow"] > 0


def test_frame_inputs_give_each_frame_its_flow_from_the_previous_one():
    from posetrack.pipeline import FrameInputs

    frames = [(k, np.full((4, 4, 3), k, np.uint8)) for k in range(7)]
    inputs = FrameInputs(lambda indices, images: [Detections.empty()] * len(images),
                         lambda images: [(int(a[0, 0, 0]), int(b[0, 0, 0])) for a, b in zip(images, images[1:])],
                         frame_batch=3, overlap=True)
    got = [(index, motion) for index, _, _, motion in inputs(frames)]
    assert got == [(0, None)] + [(k, (k - 1, k)) for k in range(1, 7)]
    assert list(FrameInputs(None, None, 4)([])) == []
    with pytest.raises(ValueError, match="frame_batch must be a positive integer"):
        FrameInputs(None, None, 0)


def test_a_failing_chunk_stops_the_loop_with_its_error():
    from posetrack.pipeline import FrameInputs

    def detect_batch(indices, images):
        if 4 in indices:
            raise RuntimeError("detector broke on frame 4")
        return [Detections.empty()] * len(images)
    frames = [(k, np.zeros((4, 4, 3), np.uint8)) for k in range(8)]
    seen = []
    with pytest.raises(RuntimeError, match="frame 4"):
        for index, *_ in FrameInputs(detect_batch, None, 2, overlap=True)(frames):
            seen.append(index)
    assert seen == [0, 1, 2, 3]

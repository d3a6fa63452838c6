import numpy as np
import pytest

from posetrack.frame import Detections, Poses
from posetrack.pipeline import PipelineConfig, StageTimes, filter_output, track_frames, unify_boxes
from posetrack.tracker import Tracker


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


def test_unify_boxes_merges_overlaps_keeps_the_best():
    det = Detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.6])
    prop = Detections([[1, 0, 11, 10], [100, 100, 110, 110]], [0.7, 0.8])
    unified = unify_boxes(det, prop, 0.5)
    assert unified.scores.tolist() == pytest.approx([0.9, 0.8, 0.6])
    assert len(unify_boxes(Detections.empty(), Detections.empty(), 0.5)) == 0


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


def test_pose_nms_drops_the_weaker_duplicate_and_keeps_distinct_people():
    from posetrack.pipeline import pose_nms

    boxes = Detections([[0, 0, 60, 160], [3, 2, 63, 162], [200, 0, 260, 160]], [0.6, 0.9, 0.8])
    poses = fake_estimate(None, boxes)
    scores = poses.keypoint_scores.copy()
    scores[0, 4:] = 0.1  # the weaker copy is confident in only four joints, still a duplicate
    kept = pose_nms(poses.replace(keypoint_scores=scores), 0.7, 0.4)
    assert kept.box_scores.tolist() == pytest.approx([0.9, 0.8])
    assert len(pose_nms(poses, 1.0, 0.4)) == 3  # threshold 1: off
    assert len(pose_nms(poses[:1], 0.7, 0.4)) == 1

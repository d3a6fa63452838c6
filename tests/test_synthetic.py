"""The synthetic scene generator: deterministic, PoseTrack-shaped, and its observations are
consistent with the true scene (flow moves joints where they go, boxes get their person's pose)."""

import numpy as np
import pytest

import synthetic
from posetrack.formats import read_posetrack, write_posetrack18
from posetrack.frame import Detections, Poses
from posetrack.geometry import propagate_points
from posetrack.joints import POSETRACK17
from posetrack.pipeline import PipelineConfig, TrackingStep
from posetrack.tracker import Tracker, TrackerConfig
from synthetic import SceneSpec, labelled_frames, make_scene

EARS = [POSETRACK17.index("left_ear"), POSETRACK17.index("right_ear")]


def scene_of(kind, seed=0, num_frames=40):
    return make_scene(SceneSpec(kind, num_frames=num_frames), np.random.default_rng(seed), f"{kind}_{seed}")


@pytest.fixture(scope="module")
def crossing():
    return scene_of("crossing")


@pytest.mark.parametrize("kind", synthetic.SCENE_KINDS)
def test_same_seed_same_scene_and_observations(kind):
    a, b = scene_of(kind, seed=3), scene_of(kind, seed=3)
    for name in ("keypoints_xy", "hidden", "detected", "det_boxes_xyxy", "pose_xy", "pose_scores"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(synthetic.flow_field(a, 7), synthetic.flow_field(b, 7))
    # per-frame randomness does not depend on the order frames are asked for
    synthetic.flow_field(b, 3)
    np.testing.assert_array_equal(synthetic.flow_field(a, 7), synthetic.flow_field(b, 7))


def test_other_seed_other_scene():
    assert not np.array_equal(scene_of("crowd", 1).keypoints_xy, scene_of("crowd", 2).keypoints_xy)


@pytest.mark.parametrize("kind", synthetic.SCENE_KINDS)
def test_shapes(kind):
    scene = scene_of(kind)
    F, P = scene.num_frames, scene.keypoints_xy.shape[1]
    assert scene.keypoints_xy.shape == (F, P, 17, 2) and scene.pose_scores.shape == (F, P, 17)
    assert scene.num_people >= 2 and P == scene.num_people + scene.num_decoys
    assert synthetic.flow_field(scene, 0) is None
    flow = synthetic.flow_field(scene, 1)
    assert flow.shape == (synthetic.HEIGHT, synthetic.WIDTH, 2) and flow.dtype == np.float32


def test_spec_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        SceneSpec("parade")


@pytest.mark.parametrize("num_frames, dense", [
    (60, range(15, 45)),  # a 30-frame central block
    (61, range(15, 45)),  # odd length: the block starts at (61 - 30) // 2
    (20, range(0, 20)),  # shorter than the block: all labelled
])
def test_labelled_pattern(num_frames, dense):
    labelled = labelled_frames(num_frames)
    expected = np.arange(num_frames) % 4 == 0
    expected[list(dense)] = True
    np.testing.assert_array_equal(labelled, expected)


def test_difficulties_are_present():
    crossing, occlusion = scene_of("crossing"), scene_of("occlusion")
    fast, entering = scene_of("fast_pan"), scene_of("enter_leave")
    assert (crossing.hidden_by >= 0).any(), "someone walks behind someone"
    assert occlusion.occluders_xyxy.shape[1] >= 1
    hidden_all = occlusion.hidden[:, :occlusion.num_people][..., 5:].all(axis=2)
    assert hidden_all.any(axis=0).any(), "someone is fully behind a pillar for a while"
    assert np.abs(np.diff(fast.camera_xy[:, 0])).mean() > 8, "the camera pans fast"
    in_view = ~entering.hidden[:, :entering.num_people].all(axis=2)
    assert (in_view.any(axis=0) & ~in_view.all(axis=0)).any(), "someone enters or leaves"


def test_ground_truth_reads_back(tmp_path, crossing):
    truth = synthetic.ground_truth(crossing)
    path = tmp_path / "crossing.json"
    write_posetrack18(path, truth)
    back = read_posetrack(path)
    assert len(back) == crossing.num_frames
    for k, (a, b) in enumerate(zip(truth.poses, back.poses)):
        assert back.images[k].is_labeled == bool(crossing.labelled[k])
        assert back.images[k].extra["vid_id"] == crossing.name
        if not crossing.labelled[k]:
            assert len(b) == 0
        np.testing.assert_array_equal(a.track_ids, b.track_ids)
        np.testing.assert_allclose(a.keypoints_xy, b.keypoints_xy, atol=0.01)
        np.testing.assert_allclose(truth.head_boxes_xyxy[k], back.head_boxes_xyxy[k], atol=0.02)
        assert np.isnan(b.keypoints_xy[:, EARS]).all()
    assert sum(len(p) for p in back.poses) > 0


def test_ground_truth_leaves_hidden_joints_out(crossing):
    truth = synthetic.ground_truth(crossing)
    for k in np.flatnonzero(crossing.labelled):
        poses = truth.poses[k]
        hidden = crossing.hidden[k, poses.track_ids]
        joints = np.setdiff1d(np.arange(17), EARS)
        np.testing.assert_array_equal(np.isnan(poses.keypoints_xy[:, joints, 0]), hidden[:, joints])


def test_head_size_matches_body():
    scene = scene_of("crowd")
    heads = synthetic.head_boxes(scene, 5)
    head_size = 0.6 * np.hypot(heads[:, 2] - heads[:, 0], heads[:, 3] - heads[:, 1])
    np.testing.assert_allclose(head_size / scene.heights[5], 0.127, rtol=0.02)


def test_flow_moves_visible_joints_to_where_they_go(crossing):
    errors, still = [], []
    for k in range(1, crossing.num_frames):
        flow = synthetic.flow_field(crossing, k)
        seen = ~crossing.hidden[k - 1] & ~crossing.hidden[k]
        seen[crossing.num_people:] = False
        moved = propagate_points(crossing.keypoints_xy[k - 1][seen], flow)
        errors.append(np.hypot(*(moved - crossing.keypoints_xy[k][seen]).T) / crossing.heights[k][np.nonzero(seen)[0]])
        still.append(np.hypot(*(crossing.keypoints_xy[k - 1][seen] - crossing.keypoints_xy[k][seen]).T)
                     / crossing.heights[k][np.nonzero(seen)[0]])
    errors, still = np.concatenate(errors), np.concatenate(still)
    assert np.median(errors) < 0.5 * np.median(still), "flow beats assuming no motion"
    assert np.median(errors) < 0.02


def test_background_flow_is_the_camera_motion():
    scene = scene_of("fast_pan")
    k = 10
    flow = synthetic.flow_field(scene, k)
    expected = -(scene.camera_xy[k] - scene.camera_xy[k - 1])
    corner = flow[:40, :40].reshape(-1, 2).mean(axis=0)  # top-left: above everyone's head
    np.testing.assert_allclose(corner, expected, atol=1.5)


def test_estimator_gives_a_box_its_persons_pose_and_nobody_junk(crossing):
    k = int(np.flatnonzero(crossing.detected[:, 0])[0])
    box = crossing.det_boxes_xyxy[k, 0]
    far = np.array([[0, 0, 20, 40]], np.float32)  # top-left corner: above the horizon
    poses = synthetic.estimate_poses(crossing, k, np.stack([box, far[0]]))
    error = np.hypot(*(poses.keypoints_xy[0] - crossing.keypoints_xy[k, 0]).T) / crossing.heights[k, 0]
    assert np.median(error) < 0.05
    assert poses.keypoint_scores[1].max() <= 0.35
    assert ((poses.keypoints_xy[1] >= far[0, :2]) & (poses.keypoints_xy[1] <= far[0, 2:])).all()


def test_the_pipeline_step_recovers_a_missed_person_from_an_offered_box(crossing):
    missed = np.argwhere(~crossing.detected[:, :crossing.num_people]
                         & (~crossing.hidden[:, :crossing.num_people]).all(axis=2))
    assert len(missed), "some fully visible person is missed by the detector"
    k, p = missed[0]
    kp = crossing.keypoints_xy[k, p]
    box = np.concatenate([kp.min(0), kp.max(0)])[None]

    class Offering(Tracker):
        """A tracker whose propagate offers a fixed set of boxes, and that records what the
        step gives its update."""
        offer = Detections.empty()

        def propagate(self, flow=None):
            super().propagate(flow)
            return self.offer

        def offered_track(self, rows):
            return np.full(len(rows), -1, np.int64)

        def update(self, poses, may_start=None, from_track=None):
            self.given = (poses, may_start)
            return super().update(poses, may_start, from_track)

    def step_frame(offer):
        tracker = Offering(TrackerConfig())
        tracker.offer = offer
        step = TrackingStep(synthetic.estimator(crossing), tracker, PipelineConfig())
        step(k, synthetic.detections(crossing, k), None, tag=k)
        return tracker.given

    without, _ = step_frame(Detections.empty())
    with_box, may_start = step_frame(Detections(box, [0.8]))
    assert len(with_box) == len(without) + 1
    distance = np.nanmedian(np.hypot(*(with_box.keypoints_xy - kp).transpose(2, 0, 1)), axis=1)
    assert distance.min() < 0.05 * crossing.heights[k, p]
    nearest = int(distance.argmin())
    assert with_box.box_scores[nearest] == pytest.approx(0.8)  # the offered box's score
    assert not may_start[nearest] and may_start.sum() == len(without)  # it only continues a track


def test_iou_tracker_keeps_overlapping_boxes_and_starts_new_ids():
    def poses(*boxes):
        n = len(boxes)
        return Poses(np.array(boxes, np.float32), np.ones(n), np.zeros((n, 17, 2)), np.ones((n, 17)),
                     np.full(n, -1))

    tracker = synthetic.IouTracker(min_iou=0.3)
    first = tracker.update(poses([0, 0, 10, 10], [100, 100, 110, 110]))
    second = tracker.update(poses([101, 100, 111, 110], [1, 0, 11, 10], [300, 300, 310, 310]))
    assert first.track_ids.tolist() == [0, 1]
    assert second.track_ids.tolist() == [1, 0, 2]
    assert len(tracker.propagate(np.zeros((4, 4, 2)))) == 0



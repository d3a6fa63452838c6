import numpy as np
import pytest

from posetrack.frame import Detections, Poses
from posetrack.joints import COCO17, POSETRACK17, coco_to_posetrack


def _poses(n, j=17):
    rng = np.random.default_rng(n)
    return Poses(rng.uniform(0, 100, (n, 4)), rng.uniform(size=n), rng.uniform(0, 100, (n, j, 2)),
                 rng.uniform(size=(n, j)), np.arange(n))


def test_construction_converts_dtypes():
    poses = _poses(3)
    assert poses.boxes_xyxy.dtype == np.float32 and poses.track_ids.dtype == np.int64
    assert len(poses) == 3 and poses.num_joints == 17


@pytest.mark.parametrize("field, value, message", [
    ("boxes_xyxy", np.zeros((2, 3)), r"boxes_xyxy must have shape \(N, 4\), got \(2, 3\)"),
    ("box_scores", np.zeros(3), r"box_scores must have shape \(2\), got \(3,\)"),
    ("keypoints_xy", np.zeros((2, 17)), r"keypoints_xy must have shape \(2, N, 2\)"),
    ("keypoint_scores", np.zeros((2, 16)), r"keypoint_scores must have shape \(2, 17\), got \(2, 16\)"),
    ("track_ids", np.zeros(1), r"track_ids must have shape \(2\)"),
])
def test_validation_names_the_field_and_shapes(field, value, message):
    values = {name: getattr(_poses(2), name) for name in
              ("boxes_xyxy", "box_scores", "keypoints_xy", "keypoint_scores", "track_ids")}
    values[field] = value
    with pytest.raises(ValueError, match=message):
        Poses(**values)


def test_indexing_subsets_every_field():
    poses = _poses(4)
    for index in (2, slice(1, 3), np.array([True, False, True, False]), np.array([3, 0])):
        part = poses[index]
        expected = np.arange(4)[index]
        assert part.track_ids.tolist() == np.atleast_1d(expected).tolist()
        np.testing.assert_array_equal(part.keypoints_xy, poses.keypoints_xy[np.atleast_1d(expected)])
        np.testing.assert_array_equal(part.boxes_xyxy, poses.boxes_xyxy[np.atleast_1d(expected)])


def test_empty_concatenate_replace_visible():
    assert len(Poses.empty()) == 0 and Poses.empty().keypoints_xy.shape == (0, 17, 2)
    both = Poses.concatenate([_poses(2), Poses.empty(), _poses(3)])
    assert len(both) == 5 and both.track_ids.tolist() == [0, 1, 0, 1, 2]
    assert len(Poses.concatenate([])) == 0
    moved = both.replace(track_ids=np.arange(5) + 10)
    assert moved.track_ids.tolist() == list(range(10, 15)) and both.track_ids[0] == 0
    with pytest.raises(TypeError, match="no field"):
        both.replace(colour=1)
    keypoints = both.keypoints_xy.copy()
    keypoints[0, 3] = np.nan
    assert both.replace(keypoints_xy=keypoints).visible.sum() == 5 * 17 - 1


def test_detections():
    dets = Detections([[0, 0, 1, 1], [1, 1, 2, 2]], [0.9, 0.1])
    assert len(dets) == 2 and dets[1].scores.tolist() == pytest.approx([0.1])
    assert len(Detections.concatenate([dets, Detections.empty()])) == 2
    with pytest.raises(ValueError, match="scores must have shape"):
        Detections([[0, 0, 1, 1]], [0.5, 0.5])


@pytest.mark.parametrize("layout, pairs", [
    (COCO17, [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]),
    (POSETRACK17, [(3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]),
])
def test_flip_pairs(layout, pairs):
    assert list(layout.flip_pairs) == pairs
    perm = layout.flip_permutation
    assert sorted(perm.tolist()) == list(range(17)) and (perm[perm] == np.arange(17)).all()


def test_coco_to_posetrack_derives_head_joints_on_the_nose_shoulder_line():
    keypoints = np.zeros((1, 17, 2), np.float32)
    keypoints[0, 0] = (100, 100)  # nose
    keypoints[0, 5], keypoints[0, 6] = (120, 160), (80, 160)  # shoulders: midpoint (100, 160)
    keypoints[0, 1:5] = (1, 1)
    scores = np.full((1, 17), 0.9, np.float32)
    scores[0, 6] = 0.5
    out, out_scores = coco_to_posetrack(keypoints, scores)
    np.testing.assert_allclose(out[0, 1], (100, 100 + 60 * 0.75))  # head_bottom
    np.testing.assert_allclose(out[0, 2], (100, 100 - 60 * 0.4))  # head_top
    assert out_scores[0, 1] == out_scores[0, 2] == pytest.approx(0.5)  # the weakest source
    np.testing.assert_array_equal(out[0, 3:], keypoints[0, 3:])
    keypoints[0, 5] = np.nan
    assert np.isnan(coco_to_posetrack(keypoints, scores)[0][0, 1]).all()

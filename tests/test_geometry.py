import numpy as np
import pytest

from posetrack.geometry import box_iou, boxes_from_keypoints, nms, propagate_points

NAN = np.nan


@pytest.mark.parametrize("a, b, expected", [
    # empty inputs give empty matrices of the right shape
    (np.zeros((0, 4)), [[0, 0, 1, 1]], np.zeros((0, 1))),
    ([[0, 0, 1, 1]], np.zeros((0, 4)), np.zeros((1, 0))),
    # identical boxes
    ([[0, 0, 2, 2]], [[0, 0, 2, 2]], [[1.0]]),
    # half overlap: inter 2, union 6
    ([[0, 0, 2, 2]], [[1, 0, 3, 2]], [[2 / 6]]),
    # touching edges do not overlap
    ([[0, 0, 1, 1]], [[1, 0, 2, 1]], [[0.0]]),
    # containment: inter 1, union 4
    ([[0, 0, 2, 2]], [[0, 0, 1, 1]], [[0.25]]),
    # two zero-area boxes: union 0 -> IoU 0, not NaN
    ([[1, 1, 1, 1]], [[1, 1, 1, 1]], [[0.0]]),
    # several against several
    ([[0, 0, 2, 2], [10, 10, 12, 12]], [[1, 1, 3, 3], [10, 10, 12, 12], [0, 0, 2, 2]],
     [[1 / 7, 0, 1], [0, 1, 0]]),
])
def test_box_iou(a, b, expected):
    np.testing.assert_allclose(box_iou(a, b), np.asarray(expected, float).reshape(np.shape(expected)))


@pytest.mark.parametrize("boxes, scores, threshold, expected", [
    # nothing in, nothing out
    (np.zeros((0, 4)), [], 0.5, []),
    # one box is kept
    ([[0, 0, 1, 1]], [0.3], 0.5, [0]),
    # the higher score wins; output ordered by score
    ([[0, 0, 2, 2], [0, 0, 2, 2.2]], [0.5, 0.9], 0.5, [1]),
    # IoU exactly at the threshold is kept (suppression needs strictly greater): IoU = 2/6
    ([[0, 0, 2, 2], [1, 0, 3, 2]], [0.9, 0.8], 1 / 3, [0, 1]),
    ([[0, 0, 2, 2], [1, 0, 3, 2]], [0.9, 0.8], 0.33, [0]),
    # tie in score: the lower index is visited first
    ([[0, 0, 2, 2], [0, 0, 2, 2]], [0.7, 0.7], 0.5, [0]),
    # a suppressed box does not suppress others: A kills B, B would have killed C, C survives
    ([[0, 0, 4, 2], [2, 0, 6, 2], [4.5, 0, 8.5, 2]], [0.9, 0.8, 0.7], 0.3, [0, 2]),
])
def test_nms(boxes, scores, threshold, expected):
    assert nms(np.asarray(boxes, float).reshape(-1, 4), scores, threshold).tolist() == expected


def test_boxes_from_keypoints_enlarges_about_the_centre_and_ignores_absent_joints():
    keypoints = np.array([
        [[0, 0], [10, 20], [NAN, NAN]],  # extent 10 x 20 around (5, 10)
        [[NAN, NAN], [NAN, NAN], [NAN, NAN]],  # no joints
        [[4, 4], [NAN, NAN], [NAN, NAN]],  # a single joint: zero-size box
    ], np.float32)
    boxes = boxes_from_keypoints(keypoints, enlarge=0.2)
    np.testing.assert_allclose(boxes[0], [-1, -2, 11, 22])
    assert np.isnan(boxes[1]).all()
    np.testing.assert_allclose(boxes[2], [4, 4, 4, 4])
    assert boxes_from_keypoints(np.zeros((0, 17, 2))).shape == (0, 4)


def _ramp_flow(height=4, width=5):
    """flow[y, x] = (x, 10 y): bilinear sampling of it is exact."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xs, 10 * ys], axis=2)


@pytest.mark.parametrize("point, expected", [
    ((0, 0), (0, 0)),  # a pixel centre: its own flow (0, 0)
    ((2, 1), (4, 11)),  # moved by (2, 10)
    ((1.5, 2.25), (3.0, 24.75)),  # between pixels: bilinear (1.5, 22.5)
    ((4, 3), (8, 33)),  # the last pixel
    ((-3, 1), (-3, 11)),  # left of the image: flow of the border pixel (0, 10)
    ((7.5, 9), (11.5, 39)),  # right of and below the image: flow of corner (4, 30)
    ((NAN, NAN), (NAN, NAN)),  # absent joints stay absent
])
def test_propagate_points(point, expected):
    moved = propagate_points(np.array([point], np.float32), _ramp_flow())
    np.testing.assert_allclose(moved[0], expected, atol=1e-5)


def test_propagate_points_keeps_shape_and_handles_no_points():
    points = np.random.default_rng(0).uniform(0, 4, (3, 17, 2)).astype(np.float32)
    assert propagate_points(points, np.zeros((4, 5, 2))).shape == (3, 17, 2)
    np.testing.assert_array_equal(propagate_points(points, np.zeros((4, 5, 2))), points)
    assert propagate_points(np.zeros((0, 17, 2)), _ramp_flow()).shape == (0, 17, 2)
    with pytest.raises(ValueError, match="flow must have shape"):
        propagate_points(points, np.zeros((4, 5)))


def test_nms_equals_the_similarity_matrix_rule():
    """nms builds no (N, N) matrix; it keeps what suppress_by_similarity keeps on the full IoU."""
    from posetrack.geometry import suppress_by_similarity

    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 50, 300):
        xy = rng.random((n, 2)) * 200
        boxes = np.concatenate([xy, xy + 10 + rng.random((n, 2)) * 60], axis=1)
        scores = rng.choice([0.1, 0.5, 0.9, np.nan], size=n)  # ties and NaN scores included
        for threshold in (0.0, 0.3, 0.7):
            expected = suppress_by_similarity(box_iou(boxes, boxes), scores, threshold)
            np.testing.assert_array_equal(nms(boxes, scores, threshold), expected)


def test_box_iou_in_blocks_equals_one_block(monkeypatch):
    from posetrack import geometry

    rng = np.random.default_rng(2)
    a = np.sort(rng.random((37, 4)) * 100, axis=1)[:, [0, 1, 2, 3]]
    b = np.sort(rng.random((23, 4)) * 100, axis=1)
    whole = box_iou(a, b)
    monkeypatch.setattr(geometry, "_PAIR_BLOCK", 50)  # 2 rows of b at a time
    np.testing.assert_array_equal(box_iou(a, b), whole)


def test_nms_of_many_boxes_needs_no_pairwise_matrix():
    # 200,000 boxes: an (N, N) float64 IoU would need 320 GB; row by row it is a few MB
    rng = np.random.default_rng(3)
    centres = rng.random((200_000, 2)) * 500
    boxes = np.concatenate([centres - 20, centres + 20], axis=1)
    kept = nms(boxes, rng.random(200_000), 0.05)
    assert 0 < len(kept) < 2000
    assert box_iou(boxes[kept], boxes[kept])[np.triu_indices(len(kept), 1)].max() <= 0.05

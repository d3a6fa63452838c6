"""Pure parts of the evaluator: polygons, assignment, AP, metric functions."""

import numpy as np
import pytest

from posetrack.evaluation import metrics
from posetrack.evaluation.ap import joint_ap, voc_ap
from posetrack.evaluation.assign import assign_predictions, normalised_distances, prediction_labels
from posetrack.evaluation.regions import points_in_frame_polygons, points_in_polygons

SQUARE = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
# An L shape: the notch (5..10, 5..10) is outside.
L_SHAPE = np.array([[0, 0], [10, 0], [10, 5], [5, 5], [5, 10], [0, 10]], float)


@pytest.mark.parametrize("point, polygons, inside", [
    ((5, 5), [SQUARE], True),           # centre
    ((11, 5), [SQUARE], False),         # right of it
    ((2, 8), [L_SHAPE], True),          # in the vertical bar
    ((8, 8), [L_SHAPE], False),         # in the notch of a concave polygon
    ((8, 8), [L_SHAPE, SQUARE], True),  # any polygon counts
    ((np.nan, np.nan), [SQUARE], False),  # absent joints are never inside
    ((5, 5), [SQUARE[:2]], False),      # a degenerate polygon contains nothing
    ((5, 5), [], False),                # no regions
])
def test_points_in_polygons(point, polygons, inside):
    assert points_in_polygons(np.array([point], float), polygons).tolist() == [inside]
    # the whole-sequence version gives the same answer, with other frames' polygons around
    frames = {0: [SQUARE + 100], 1: polygons, 3: [L_SHAPE]}
    assert points_in_frame_polygons(np.array([point], float), np.array([1]), frames).tolist() == [inside]


def test_points_in_frame_polygons_equals_frame_by_frame():
    rng = np.random.default_rng(0)
    polygons = {0: [rng.uniform(0, 100, (5, 2))], 2: [rng.uniform(0, 100, (4, 2)), rng.uniform(0, 100, (9, 2))],
                3: [SQUARE[:2]], 4: []}
    points = rng.uniform(0, 100, (3000, 2))
    points[::7] = np.nan
    frames = rng.integers(0, 6, 3000)
    expected = np.zeros(3000, bool)
    for f, p in polygons.items():
        expected[frames == f] = points_in_polygons(points[frames == f], p)
    found = points_in_frame_polygons(points, frames, polygons)
    assert found.sum() > 100
    np.testing.assert_array_equal(found, expected)


def _hits(pck_rows):
    """(P, G) joint-hit counts out of 2 joints -> hits (G, P, 2), gt_present (G, 2)."""
    counts = np.array(pck_rows)
    hits = np.stack([counts >= 1, counts >= 2], axis=-1).transpose(1, 0, 2)
    return hits, np.ones((counts.shape[1], 2), bool)


@pytest.mark.parametrize("pck_rows, expected", [
    ([[2, 1]], [0]),             # one prediction takes its best GT
    ([[1, 1]], [0]),             # a tie between GTs goes to the lower index
    ([[2, 0], [2, 0]], [0, -1]),  # two predictions want GT 0: the first (lower index) wins
    ([[1, 0], [2, 0]], [-1, 0]),  # ... unless the second has the higher PCKh
    ([[0, 0]], [-1]),            # no hit: unassigned
    ([[2, 1], [0, 1]], [0, 1]),  # the second prediction takes GT 1
])
def test_assign_predictions(pck_rows, expected):
    hits, gt_present = _hits(pck_rows)
    assert assign_predictions(hits, gt_present).tolist() == expected


def test_assignment_ignores_a_hit_on_a_gt_the_pose_was_not_assigned_to():
    hits, gt_present = _hits([[2, 1], [2, 1]])  # prediction 1 loses GT 0, and does not fall back
    assigned = assign_predictions(hits, gt_present)
    labels = prediction_labels(hits, assigned, np.ones((2, 2), bool))
    assert assigned.tolist() == [0, -1]
    assert labels.tolist() == [[True, True], [False, False]]


def test_normalised_distances_use_the_gt_head_size_and_nan_for_absent_joints():
    gt = np.array([[[0.0, 0.0], [np.nan, np.nan]]])
    pr = np.array([[[3.0, 4.0], [1.0, 1.0]]])
    d = normalised_distances(gt, np.array([10.0]), pr)
    assert d.shape == (1, 1, 2)
    assert d[0, 0, 0] == pytest.approx(0.5)
    assert np.isnan(d[0, 0, 1])


def test_voc_ap_all_point_interpolation():
    # hits at ranks 1 and 3 of 3, 2 GT: envelope precision 1 up to recall .5, 2/3 up to 1
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(0.5 + 0.5 * 2 / 3)


@pytest.mark.parametrize("scores, labels, num_gt, ap, precision, recall", [
    ([], [], 3, 0.0, 0.0, 0.0),                      # no predictions: 0
    ([0.9], [False], 0, np.nan, 0.0, np.nan),        # predictions but no GT: undefined
    ([0.9, 0.5], [True, False], 1, 100.0, 50.0, 100.0),
    ([0.5, 0.9], [True, False], 1, 50.0, 50.0, 100.0),  # ranking by score
    ([0.9, 0.8], [True, True], 4, 50.0, 100.0, 50.0),
])
def test_joint_ap(scores, labels, num_gt, ap, precision, recall):
    result = joint_ap(np.array(scores, float), np.array(labels, bool), num_gt)
    np.testing.assert_allclose([result.ap, result.precision, result.recall], [ap, precision, recall])


def test_metric_functions_of_counts():
    np.testing.assert_allclose(metrics.mota([1, 0], [1, 0], [1, 0], [4, 0]), [25.0, np.nan])
    np.testing.assert_allclose(metrics.motp([0.5, 0.0], [2, 0]), [75.0, 0.0])  # 0 without detections
    np.testing.assert_allclose(metrics.precision([3, 0], [1, 0]), [75.0, np.nan])
    np.testing.assert_allclose(metrics.recall([3, 0], [4, 0]), [75.0, np.nan])
    values = np.arange(15, dtype=float)
    values[0] = np.nan
    assert metrics.joint_mean(values) == pytest.approx(np.arange(1, 15).mean())  # NaN skipped
    assert np.isnan(metrics.joint_mean(np.full(15, np.nan)))
    groups = metrics.group_means(values)
    assert np.isnan(groups["ankle"])  # right_ankle (joint 0) is NaN: the group is NaN
    assert groups["head"] == pytest.approx((14 + 12 + 13) / 3)

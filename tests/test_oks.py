import numpy as np
import pytest

from posetrack.oks import oks_matrix

SIGMAS = (0.1, 0.2)
ALL = np.ones((1, 2), bool)


def _oks(a, b, vis_a=ALL, vis_b=ALL, area=100.0):
    return oks_matrix(np.asarray(a, float).reshape(-1, 2, 2), vis_a, np.asarray(b, float).reshape(-1, 2, 2),
                      vis_b, [area] * (np.size(a) // 4), SIGMAS)


def test_identical_poses_have_oks_one():
    assert _oks([[1, 1], [5, 5]], [[1, 1], [5, 5]]) == pytest.approx(1.0)


def test_hand_computed_value():
    # joint 0 moved by 3 px, joint 1 by 4 px; area 100; k = 2 sigma
    # exp(-9 / (2 * 100 * 0.04)) = exp(-1.125); exp(-16 / (2 * 100 * 0.16)) = exp(-0.5)
    expected = (np.exp(-1.125) + np.exp(-0.5)) / 2
    assert _oks([[0, 0], [0, 0]], [[3, 0], [0, 4]])[0, 0] == pytest.approx(expected)


def test_larger_area_is_more_tolerant():
    a, b = [[0, 0], [0, 0]], [[3, 0], [0, 4]]
    assert _oks(a, b, area=400)[0, 0] > _oks(a, b, area=100)[0, 0]


def test_joint_present_in_one_pose_only_counts_as_zero():
    # joint 1 missing in b: the mean runs over both joints, joint 1 contributes 0
    assert _oks([[0, 0], [0, 0]], [[0, 0], [9, 9]], vis_b=[[True, False]])[0, 0] == pytest.approx(0.5)


def test_no_joints_anywhere_gives_zero_not_nan():
    none = np.zeros((1, 2), bool)
    assert _oks([[0, 0], [0, 0]], [[0, 0], [0, 0]], vis_a=none, vis_b=none)[0, 0] == 0.0


@pytest.mark.parametrize("na, nb", [(0, 0), (0, 3), (2, 0), (2, 3)])
def test_shapes(na, nb):
    rng = np.random.default_rng(1)
    out = oks_matrix(rng.normal(size=(na, 2, 2)), np.ones((na, 2), bool), rng.normal(size=(nb, 2, 2)),
                     np.ones((nb, 2), bool), np.ones(na), SIGMAS)
    assert out.shape == (na, nb)
    assert ((out >= 0) & (out <= 1)).all()


def test_wrong_number_of_sigmas_is_an_error():
    with pytest.raises(ValueError, match="need 2 sigmas"):
        oks_matrix(np.zeros((1, 2, 2)), ALL, np.zeros((1, 2, 2)), ALL, [1.0], (0.1,))


def test_over_both_averages_only_shared_joints_and_needs_min_joints():
    vis_a, vis_b = [[True, True]], [[True, False]]
    a, b = [[[0, 0], [0, 0]]], [[[3, 0], [50, 50]]]
    # one shared joint at 3 px: exp(-1.125); "either" halves it, "both" does not
    either = oks_matrix(a, vis_a, b, vis_b, [100.0], SIGMAS)[0, 0]
    both = oks_matrix(a, vis_a, b, vis_b, [100.0], SIGMAS, over="both")[0, 0]
    assert both == pytest.approx(np.exp(-1.125)) and either == pytest.approx(both / 2)
    assert oks_matrix(a, vis_a, b, vis_b, [100.0], SIGMAS, over="both", min_joints=2)[0, 0] == 0.0
    with pytest.raises(ValueError, match="over must be"):
        oks_matrix(a, vis_a, b, vis_b, [100.0], SIGMAS, over="all")

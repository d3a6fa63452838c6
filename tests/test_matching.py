import numpy as np
import pytest

from posetrack.matching import greedy_match

NAN = np.nan


@pytest.mark.parametrize("similarity, threshold, pairs, unmatched_a, unmatched_b", [
    # empty on either side
    (np.zeros((0, 0)), 0.5, [], [], []),
    (np.zeros((0, 2)), 0.5, [], [], [0, 1]),
    (np.zeros((3, 0)), 0.5, [], [0, 1, 2], []),
    # one pair above and one below the threshold
    ([[0.9]], 0.5, [(0, 0)], [], []),
    ([[0.4]], 0.5, [], [0], [0]),
    # exactly at the threshold matches
    ([[0.5]], 0.5, [(0, 0)], [], []),
    # greedy, not Hungarian: 0.9 is taken first although 0.8 + 0.8 would sum higher
    ([[0.9, 0.8], [0.8, 0.1]], 0.5, [(0, 0)], [1], [1]),
    # the same with a lower threshold: the leftover pair still matches
    ([[0.9, 0.8], [0.8, 0.1]], 0.0, [(0, 0), (1, 1)], [], []),
    # ties: the lower row, then the lower column, wins
    ([[0.7, 0.7], [0.7, 0.7]], 0.5, [(0, 0), (1, 1)], [], []),
    ([[0.2, 0.7], [0.7, 0.2]], 0.5, [(0, 1), (1, 0)], [], []),
    # NaN never matches
    ([[NAN, 0.6]], 0.0, [(0, 1)], [], [0]),
    # more columns than rows
    ([[0.1, 0.3, 0.2]], 0.0, [(0, 1)], [], [0, 2]),
])
def test_greedy_match(similarity, threshold, pairs, unmatched_a, unmatched_b):
    got_pairs, got_a, got_b = greedy_match(np.asarray(similarity, float), threshold)
    assert [tuple(p) for p in got_pairs.tolist()] == pairs
    assert got_a.tolist() == unmatched_a
    assert got_b.tolist() == unmatched_b
    assert got_pairs.shape == (len(pairs), 2)


def test_rejects_non_matrix():
    with pytest.raises(ValueError, match="2-D"):
        greedy_match(np.zeros(3), 0.5)

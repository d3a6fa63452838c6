"""Our MOT event counts equal motmetrics 1.4.0's MOTAccumulator fed as poseval feeds it."""

import numpy as np
import pytest

motmetrics = pytest.importorskip("motmetrics")

from posetrack.evaluation.mot import MotFrame, count_sequence  # noqa: E402

METRICS = ["num_misses", "num_switches", "num_false_positives", "num_objects", "num_detections"]


def reference_counts(frames, num_joints, placeholders=True):
    """poseval's computeMetrics loop for one sequence: one accumulator per joint type."""
    accumulators = [motmetrics.MOTAccumulator(auto_id=True) for _ in range(num_joints)]
    for f in frames:
        for j, acc in enumerate(accumulators):
            if placeholders and (len(f.gt_ids) == 0 or len(f.pr_ids) == 0):
                acc.update([0], [0], np.full((1, 1), np.nan))  # poseval's dummy ids
                continue
            rows, cols = f.gt_present[:, j], f.pr_present[:, j]
            acc.update(f.gt_ids[rows], f.pr_ids[cols], f.distances[rows][:, cols, j])
    mh = motmetrics.metrics.create()
    out = {name: [] for name in METRICS + ["sum_distance"]}
    for acc in accumulators:
        values = mh.compute(acc, metrics=METRICS, return_dataframe=False, name="acc")
        for name in METRICS:
            out[name].append(values[name])
        total = acc.events["D"].sum()
        out["sum_distance"].append(0.0 if np.isnan(total) else total)
    return {k: np.array(v) for k, v in out.items()}


def random_sequence(rng, num_frames, num_joints, crowded):
    """Frames with id swaps, re-used ids, empty sides and (if crowded) competing candidates."""
    frames = []
    gt_pool, pr_pool = np.arange(6), np.arange(9)  # id 0 collides with the dummy id on purpose
    for _ in range(num_frames):
        g = int(rng.integers(0, 5))
        p = int(rng.integers(0, 6))
        gt_ids = rng.choice(gt_pool, g, replace=False)
        pr_ids = rng.choice(pr_pool, p, replace=False)
        gt_present = rng.random((g, num_joints)) < 0.85
        pr_present = rng.random((p, num_joints)) < 0.85
        dist = rng.uniform(0, 0.5, (g, p, num_joints))
        keep = rng.random((g, p, num_joints)) < (0.6 if crowded else 0.25)
        dist = np.where(keep & gt_present[:, None] & pr_present[None], dist, np.nan)
        frames.append(MotFrame(gt_ids, pr_ids, gt_present, pr_present, dist))
    return frames


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("placeholders", [True, False])
def test_counts_equal_motmetrics_on_random_sequences(seed, placeholders):
    rng = np.random.default_rng(seed)
    frames = random_sequence(rng, num_frames=25, num_joints=3, crowded=seed % 2 == 0)
    ours = count_sequence(frames, 3, empty_frame_placeholders=placeholders)
    ref = reference_counts(frames, 3, placeholders)
    assert ours.misses.tolist() == ref["num_misses"].tolist()
    assert ours.switches.tolist() == ref["num_switches"].tolist()
    assert ours.false_positives.tolist() == ref["num_false_positives"].tolist()
    assert ours.objects.tolist() == ref["num_objects"].tolist()
    assert ours.detections.tolist() == ref["num_detections"].tolist()
    np.testing.assert_allclose(ours.sum_distance, ref["sum_distance"], rtol=1e-12, atol=1e-12)


def test_random_sequences_do_exercise_switches_and_the_solver():
    """Guard for the test above: the random data produce switches and crowded assignments."""
    rng = np.random.default_rng(0)
    frames = random_sequence(rng, num_frames=25, num_joints=3, crowded=True)
    assert reference_counts(frames, 3)["num_switches"].sum() > 0
    assert any((~np.isnan(f.distances)).sum(axis=1).max(initial=0) > 1 for f in frames)

"""Tracking quality must not regress: the default tracker on a small seeded synthetic scene set,
scored by the PoseTrack evaluator, against numbers measured when the defaults were chosen.

The full measurement is scripts/bench_tracking.py. If a deliberate change to the tracker, the
synthetic scenes or the evaluator moves these numbers, rerun this file with ``-s`` to see the new
ones (they are printed) and update MEASURED, saying why in the commit.
"""

import numpy as np
import pytest

import synthetic
from posetrack.evaluation import evaluate_sequences
from posetrack.evaluation import metrics
from posetrack.evaluation.load import load_sequences, pair_files
from posetrack.formats import write_posetrack18
from posetrack.tracker import Tracker, TrackerConfig

SEED = 2024
SCENES = {"crossing": 2, "occlusion": 2, "fast_pan": 1, "enter_leave": 1, "crowd": 1, "couples": 2}
METHODS = ("flow-OKS", "OKS, no flow", "box IoU")

# Measured with the defaults (TrackerConfig(), PipelineConfig(), DetectorConfig()) on this scene
# set: MOTA (percent) and ID switches summed over the 15 evaluated joints, over all scenes. Since
# the association matches propagated and confident poses in one pass (weak ones after), with
# memory_frames 24, tentative tracks (min_hits), re-finding, unification that keeps every
# detection and the couples scenes: 68.43 / 155 (flow-OKS), 68.33 / 166 (OKS, no flow).
MEASURED = {"mota": 68.43, "id_switches": 155}
MOTA_MARGIN = 1.0  # MOTA points
SWITCH_MARGIN = 15  # about one person's id switch (15 joints)


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking_regression")
    rng = np.random.default_rng(SEED)
    folders = {m: root / f"pred{i}" for i, m in enumerate(METHODS)}
    for folder in [root / "gt", *folders.values()]:
        folder.mkdir()
    for kind, count in SCENES.items():
        for i in range(count):
            name = f"{kind}_{i:02d}"
            scene = synthetic.make_scene(synthetic.SceneSpec(kind), rng, name)
            truth = synthetic.ground_truth(scene)
            write_posetrack18(root / "gt" / f"{name}.json", truth)
            trackers = [Tracker(TrackerConfig()), Tracker(TrackerConfig()), synthetic.IouTracker()]
            outputs = synthetic.run_trackers(scene, trackers, [True, False, False])
            for method, tracked in zip(METHODS, outputs):
                write_posetrack18(folders[method] / f"{name}.json", synthetic.prediction_video(truth, tracked))
    out = {}
    for method, folder in folders.items():
        sequences = load_sequences(pair_files(root / "gt", folder), workers=1)
        groups = {kind: [s for s in sequences if s.name.startswith(kind)] for kind in SCENES}
        groups["all"] = sequences
        out[method] = {}
        for group, members in groups.items():
            total = evaluate_sequences(members).total
            out[method][group] = {"mota": metrics.joint_mean(total.mota_per_joint),
                                  "id_switches": int(total.mot.switches.sum())}
    print("\n" + "\n".join(f"{m:14s} " + "  ".join(f"{g} {v['mota']:.2f}/{v['id_switches']}"
                                                    for g, v in groups_.items())
                           for m, groups_ in out.items()))
    return out


def test_default_mota_does_not_regress(scores):
    assert scores["flow-OKS"]["all"]["mota"] >= MEASURED["mota"] - MOTA_MARGIN


def test_default_id_switches_do_not_regress(scores):
    assert scores["flow-OKS"]["all"]["id_switches"] <= MEASURED["id_switches"] + SWITCH_MARGIN


@pytest.mark.parametrize("kind", ["crossing"])
def test_flow_oks_beats_oks_without_flow_on_hard_scenes(scores, kind):
    # measured on this set: crossing 65 vs 76 switches, MOTA 68.05 vs 67.73. On occlusion flow
    # and no flow tie (34 vs 34 switches, MOTA 72.74 vs 72.11): see README, "Tracking quality",
    # for what is still weak
    ours, static = scores["flow-OKS"][kind], scores["OKS, no flow"][kind]
    assert ours["id_switches"] < static["id_switches"]
    assert ours["mota"] > static["mota"]


@pytest.mark.parametrize("kind", ["crossing", "occlusion", "couples"])
def test_flow_oks_beats_box_iou_on_hard_scenes(scores, kind):
    ours, iou = scores["flow-OKS"][kind], scores["box IoU"][kind]
    assert ours["mota"] > iou["mota"] + 5
    assert ours["id_switches"] < iou["id_switches"] / 2

"""Each official quirk pinned with hand-computed counts on tiny hand-made sequences."""

import json

import numpy as np
import pytest

from posetrack.evaluation import EvalOptions, evaluate
from posetrack.evaluation.load import load_sequences, pair_files

from evalcase import person_xy


def _mota(result):
    return result.total.mota_per_joint


def test_last_frame_is_left_out_of_mot(write_pair):
    # one person, ids right in frames 0 and 1; in the last frame the prediction has a new id
    gt = [[(0, person_xy(100, 100))]] * 3
    pred = [[(5, person_xy(100, 100))], [(5, person_xy(100, 100))], [(6, person_xy(100, 100))]]
    gt_dir, pred_dir = write_pair("seq", gt, pred)
    official = evaluate(gt_dir, pred_dir, workers=1)
    assert official.total.mot.objects.tolist() == [2] * 15  # frames 0 and 1 only
    assert official.total.mot.switches.sum() == 0
    np.testing.assert_allclose(_mota(official), 100.0)
    np.testing.assert_allclose(official.total.ap_per_joint, 100.0)  # AP still sees frame 2
    assert [a.num_gt for a in official.total.ap] == [3] * 15
    kept = evaluate(gt_dir, pred_dir, EvalOptions(drop_last_frame=False), workers=1)
    assert kept.total.mot.objects.tolist() == [3] * 15
    assert kept.total.mot.switches.tolist() == [1] * 15
    np.testing.assert_allclose(_mota(kept), 100.0 * (1 - 1 / 3))


def test_frame_without_predictions_counts_one_placeholder_per_joint(write_pair):
    two = [(0, person_xy(100, 100)), (1, person_xy(300, 100))]
    gt_dir, pred_dir = write_pair("seq", [two, two, two], [two, [], two])
    official = evaluate(gt_dir, pred_dir, workers=1).total.mot
    # frame 0: 2 objects matched; frame 1: placeholder (1 object, 1 miss, 1 FP); frame 2 dropped
    assert official.objects.tolist() == [3] * 15
    assert official.misses.tolist() == [1] * 15
    assert official.false_positives.tolist() == [1] * 15
    assert official.detections.tolist() == [2] * 15
    real = evaluate(gt_dir, pred_dir, EvalOptions(empty_frame_placeholders=False), workers=1).total.mot
    assert real.objects.tolist() == [4] * 15
    assert real.misses.tolist() == [2] * 15
    assert real.false_positives.tolist() == [0] * 15


def test_frame_whose_gt_is_all_ignored_gets_the_placeholder_and_ap_false_positives(write_pair):
    one = [(0, person_xy(100, 100))]
    box = [[40, 0], [160, 0], [160, 200], [40, 200]]  # covers the whole person at (100, 100)
    gt_dir, pred_dir = write_pair("seq", [one, one, one], [one, [(0, person_xy(100, 100)),
                                                                  (3, person_xy(400, 100))], one],
                                  regions={1: [box]})
    result = evaluate(gt_dir, pred_dir, workers=1).total
    assert result.mot.objects.tolist() == [2] * 15  # frame 0 + placeholder; frame 2 dropped
    assert result.mot.misses.tolist() == [1] * 15 and result.mot.false_positives.tolist() == [1] * 15
    assert [a.num_gt for a in result.ap] == [2] * 15  # GT of frame 1 ignored
    assert [a.num_predicted for a in result.ap] == [3] * 15  # the prediction at 400 is a false positive
    np.testing.assert_allclose([a.precision for a in result.ap], 100 * 2 / 3)


def test_track_ids_are_offset_per_sequence_and_sequences_do_not_interact(tmp_path, write_pair):
    people = [(0, person_xy(100, 100)), (1, person_xy(300, 100))]
    swapped = [(1, person_xy(100, 100)), (0, person_xy(300, 100))]
    gt_dir, pred_dir = write_pair("a", [people] * 3, [people, swapped, people])
    write_pair("b", [people] * 3, [people] * 3)
    sequences = load_sequences(pair_files(gt_dir, pred_dir), workers=1)
    assert sequences[0].frames[0].gt_ids.tolist() == [0, 1]
    assert sequences[1].frames[0].gt_ids.tolist() == [10000, 10001]
    assert sequences[1].frames[0].pr_ids.tolist() == [10000, 10001]
    result = evaluate(gt_dir, pred_dir, workers=1)
    assert result.per_sequence["a"].mot.switches.tolist() == [2] * 15  # both people switch at frame 1
    assert result.per_sequence["b"].mot.switches.tolist() == [0] * 15
    assert result.total.mot.switches.tolist() == [2] * 15
    assert result.total.mot.objects.tolist() == [8] * 15


def test_joint_without_score_ranks_last_with_minus_9999(write_pair):
    # a far-away false positive with score 0.9, and an exact prediction written without scores
    gt_dir, pred_dir = write_pair("seq", [[(0, person_xy(100, 100))]],
                                  [[(7, person_xy(600, 100))]])
    pred_file = pred_dir / "seq.json"
    data = json.loads(pred_file.read_text())
    fp = data["annotations"][0]
    fp["scores"] = [0.9] * 17
    hit = dict(fp, track_id=8, scores=[], keypoints=[v for xy in person_xy(100, 100).tolist()
                                                    for v in ((0, 0, 0) if np.isnan(xy[0]) else (*xy, 1))])
    data["annotations"].append(hit)
    pred_file.write_text(json.dumps(data))
    result = evaluate(gt_dir, pred_dir, workers=1)
    # ranking: FP (0.9) then TP (-9999): precision 1/2 at recall 1 -> AP 50
    np.testing.assert_allclose(result.total.ap_per_joint, 50.0)
    assert [a.num_without_score for a in result.total.ap] == [1] * 15
    assert result.total.mot is None  # one evaluated frame: tracking undefined, AP still reported


def test_visibility_zero_with_coordinates_counts_as_predicted(write_pair):
    gt_dir, pred_dir = write_pair("seq", [[(0, person_xy(100, 100))]], [[(0, person_xy(100, 100))]])
    pred_file = pred_dir / "seq.json"
    data = json.loads(pred_file.read_text())
    keypoints = np.array(data["annotations"][0]["keypoints"]).reshape(17, 3)
    keypoints[:, 2] = 0  # every joint "invisible", coordinates kept
    keypoints[16] = 0  # right ankle (slot 16) written as (0, 0, 0): absent
    data["annotations"][0]["keypoints"] = keypoints.ravel().tolist()
    pred_file.write_text(json.dumps(data))
    ap = evaluate(gt_dir, pred_dir, workers=1).total.ap
    # poseval order: right_ankle is joint 0
    assert [a.num_predicted for a in ap] == [0] + [1] * 14
    assert [a.num_true_positives for a in ap] == [0] + [1] * 14
    assert ap[0].ap == 0.0 and all(a.ap == 100.0 for a in ap[1:])


def test_ignore_regions_remove_gt_and_predicted_joints(write_pair):
    people = [(0, person_xy(100, 100)), (1, person_xy(300, 100))]
    upper = [[250, 40], [350, 40], [350, 95], [250, 95]]  # above y=95: head and shoulders of person 1
    whole = [[40, 0], [160, 0], [160, 200], [40, 200]]  # all of person 0
    gt_dir, pred_dir = write_pair("seq", [people], [people + [(9, person_xy(100, 110))]],
                                  regions={0: [upper, whole]})
    ap = evaluate(gt_dir, pred_dir, workers=1).total.ap
    names = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
             "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
             "left_wrist", "neck", "nose", "head_top"]
    removed = {"right_shoulder", "left_shoulder", "neck", "nose", "head_top"}
    # person 0 and the extra prediction near it vanish; person 1 keeps only its lower joints
    assert [a.num_gt for a in ap] == [0 if n in removed else 1 for n in names]
    assert [a.num_predicted for a in ap] == [0 if n in removed else 1 for n in names]
    for a, n in zip(ap, names):
        assert a.ap == (0.0 if n in removed else 100.0)

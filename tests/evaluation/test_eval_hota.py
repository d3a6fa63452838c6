"""Keypoint HOTA equal to the PoseTrack21 kit (../shared/fixtures/hota), its quirks, and the
defined answers where the kit crashes."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from posetrack.cli import main
from posetrack.evaluation import evaluate, hota
from posetrack.evaluation.report import result_to_json

from evalcase import HEAD_BOX, person_xy

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "hota"
CASES = sorted(p.parent.name for p in FIXTURES.glob("*/expected.json"))
TOLERANCE = 1e-4  # percent points, as the issue asks; the cases agree to about 1e-13
HEAD_SIZE = 0.6 * np.hypot(HEAD_BOX, HEAD_BOX)


def _close(expected, ours, where, mismatches):
    if isinstance(expected, dict):
        for key, value in expected.items():
            _close(value, ours.get(key) if isinstance(ours, dict) else None, f"{where}/{key}", mismatches)
    elif isinstance(expected, list):
        if not isinstance(ours, list) or len(ours) != len(expected):
            mismatches.append(f"{where}: expected {len(expected)} values, got {ours!r}")
            return
        for i, (e, o) in enumerate(zip(expected, ours)):
            _close(e, o, f"{where}[{i}]", mismatches)
    elif ours is None or abs(float(expected) - float(ours)) > TOLERANCE:
        mismatches.append(f"{where}: expected {expected!r}, got {ours!r}")


def test_both_kit_cases_are_found(shared_dir):
    assert CASES == ["fp_empty_ignore", "jitter_missing"]


@pytest.mark.parametrize("case", CASES)
def test_hota_equals_the_posetrack21_kit(shared_dir, case):
    case_dir = shared_dir / "fixtures" / "hota" / case
    expected = json.loads((case_dir / "expected.json").read_text())
    result = evaluate(case_dir / "gt", case_dir / "pred", metrics=("hota",), workers=1)
    ours = result_to_json(result, per_sequence=True)
    assert set(ours) == {"hota"}
    ours = ours["hota"]
    mismatches = []
    want = expected["hota"]
    # the eight metrics asked for (the kit also reports RHOTA, FragA, FA-HOTA, ... : not produced)
    _close({"total": {k: want["total"][k] for k in hota.METRICS},
            "per_joint": {k: want["per_joint"][k] for k in hota.METRICS}},
           {"total": ours["total"], "per_joint": ours["per_joint"]}, "", mismatches)
    assert set(ours["total"]) == set(hota.METRICS) and set(ours["per_joint"]) == set(hota.METRICS)
    for key in ("TP", "FN", "FP"):  # counts per threshold, exactly
        assert ours["counts"][key] == want["counts"][key], key
    per_alpha = result.hota.total.metrics()  # every threshold, not only the mean
    for name in hota.METRICS:
        _close(want["per_alpha"]["total"][name], (100 * per_alpha[name][:, -1]).tolist(),
               f"/per_alpha/{name}", mismatches)
    assert ours["alphas"] == pytest.approx(expected["alphas"], abs=0)
    assert ours["evaluated_frames"] == expected["evaluated_frames"]
    assert set(ours["per_sequence"]) == set(expected["per_sequence"])
    for name, seq in expected["per_sequence"].items():
        _close(seq, ours["per_sequence"][name], f"/per_sequence/{name}", mismatches)
    assert not mismatches, f"{len(mismatches)} numbers differ:\n" + "\n".join(mismatches[:30])


# ---------------------------------------------------------------------------------------------
# Small cases built by hand: one person, head size 8.485 px.


def _run(write_pair, gt_frames, pred_frames, **options):
    gt_dir, pred_dir = write_pair("s", gt_frames, pred_frames, **options)
    return evaluate(gt_dir, pred_dir, metrics=("hota",), workers=1).hota


def _shifted(dx):
    return person_xy(100 + dx, 100)


def test_similarity_is_clipped_at_0_5001_head_sizes():
    gt = person_xy(100, 100)[None][:, hota.JOINT_SLOTS].astype(np.float64)
    heads = np.array([HEAD_SIZE])
    for d, want in ((0.0, 1.0), (0.25, 1 - 0.25 / 0.5001), (0.5, 1 - 0.5 / 0.5001), (0.6, 0.0)):
        pr = gt + [d * HEAD_SIZE, 0]
        assert hota.similarity(gt, heads, pr)[0, 0, 0] == pytest.approx(want, abs=1e-12)


def test_a_joint_at_half_a_head_size_is_no_true_positive_at_any_threshold(write_pair):
    """PCKh@0.5 would count it; the kit's clipping (anDoer/PoseTrack21#11) makes its similarity
    0.0002, below the lowest threshold 0.05."""
    people = [(0, person_xy(100, 100))]
    result = _run(write_pair, [people] * 2, [[(0, _shifted(0.499 * HEAD_SIZE))]] * 2)
    assert result.total.tp[:, -1].sum() == 0
    near = _run(write_pair, [people] * 2, [[(0, _shifted(0.47 * HEAD_SIZE))]] * 2)
    assert near.total.tp[0, -1] == 2 * 15 and near.total.tp[1, -1] == 0  # 0.06 >= 0.05, < 0.10


def test_perfect_tracks_score_100(write_pair):
    people = [(0, person_xy(100, 100)), (1, person_xy(300, 100))]
    result = _run(write_pair, [people] * 3, [people] * 3)
    values = hota.summary(result.total)
    for name in hota.METRICS:
        assert values[name] == pytest.approx(100.0), name


def test_an_id_switch_lowers_assa_not_deta(write_pair):
    a, b = person_xy(100, 100), person_xy(300, 100)
    gt = [[(0, a), (1, b)]] * 4
    swapped = [[(0, a), (1, b)]] * 2 + [[(1, a), (0, b)]] * 2
    values = hota.summary(_run(write_pair, gt, swapped).total)
    assert values["DetA"][-1] == pytest.approx(100.0)
    assert values["AssA"][-1] == pytest.approx(100 * (2 * 2 * 2 / 6) / 4)  # each pair 2 of 6


def test_frame_without_predictions_adds_the_whole_sequence_gt_to_false_negatives(write_pair):
    """anDoer/PoseTrack21#10, kept: the frame adds the GT joints of all labelled frames."""
    people = [(0, person_xy(100, 100))]
    result = _run(write_pair, [people] * 4, [people, people, people, []])
    assert result.total.tp[0, 0] == 3
    assert result.total.fn[0, 0] == 4  # not 1: the sequence's 4 GT noses


def test_labelled_frame_without_gt_counts_its_predictions_as_false_positives(write_pair):
    """The kit crashes here (TypeError); the defined answer is the frame's own predicted joints."""
    people = [(0, person_xy(100, 100))]
    result = _run(write_pair, [people, [], people], [people, people + [(5, person_xy(300, 100))], people])
    assert result.total.tp[0, 0] == 2 and result.total.fn[0, 0] == 0
    assert result.total.fp[0, 0] == 2  # the two noses of the frame without GT, not the sequence's 4


def test_frame_whose_gt_lies_in_ignore_regions_counts_its_predictions_as_false_positives(write_pair):
    """The kit crashes here (IndexError); same defined answer."""
    people = [(0, person_xy(100, 100))]
    region = [[(0, 0), (200, 0), (200, 200), (0, 200)]]
    pred = [people, people + [(1, person_xy(300, 100))], people]
    result = _run(write_pair, [people] * 3, pred, regions={1: region})
    assert result.total.tp[0, 0] == 2 and result.total.fp[0, 0] == 1
    assert result.per_sequence["s"].gt_people == 2 and result.per_sequence["s"].predicted_people == 3


def test_unlabelled_frames_are_not_scored(write_pair):
    people = [(0, person_xy(100, 100))]
    result = _run(write_pair, [people] * 3, [people, [(0, _shifted(40))], people], labelled={0, 2})
    assert result.evaluated_frames == 2 and result.total.fp[0, -1] == 0


def test_cli_metric_hota_prints_the_table_and_writes_only_hota(write_pair, tmp_path):
    people = [(0, person_xy(100, 100)), (1, person_xy(300, 100))]
    gt_dir, pred_dir = write_pair("s", [people] * 3, [people] * 3)
    for path in (gt_dir / "s.json", pred_dir / "s.json"):  # ids >= 10000 are fine for HOTA
        data = json.loads(path.read_text())
        for ann in data["annotations"]:
            ann["track_id"] = 12345 if ann["track_id"] == 1 else ann["track_id"]
        path.write_text(json.dumps(data))
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--metric", "hota",
                                       "--json", str(out), "--per-sequence"])
    assert result.exit_code == 0, result.output
    assert "Keypoint HOTA" in result.output and "MOTA" not in result.output
    report = json.loads(out.read_text())
    assert set(report) == {"hota"}
    assert report["hota"]["total"]["HOTA"] == pytest.approx(100.0)
    assert list(report["hota"]["per_joint"]["AssA"]) == list(hota.JOINT_NAMES)
    assert report["hota"]["per_sequence"]["s"]["gt_ids"] == 2
    refused = CliRunner().invoke(main, ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir)])
    assert refused.exit_code == 1 and "track id 12345 is outside 0..9999" in refused.output


def test_cli_metric_all_keeps_the_poseval_document_and_adds_hota(shared_dir, tmp_path):
    case_dir = shared_dir / "fixtures" / "poseval" / "format2017_mixed"  # PoseTrack 2017 files
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["eval", "--gt", str(case_dir / "gt"), "--pred", str(case_dir / "pred"),
                                       "--metric", "all", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    expected = json.loads((case_dir / "expected.json").read_text())
    assert report["ap"]["total"] == pytest.approx(expected["ap"]["total"], abs=1e-9)
    assert 0 < report["hota"]["total"]["HOTA"] < 100
    assert report["hota"]["evaluated_frames"] >= expected["evaluated_frames"]


def test_cli_html_needs_the_poseval_numbers(write_pair, tmp_path):
    people = [(0, person_xy(100, 100))]
    gt_dir, pred_dir = write_pair("s", [people] * 2, [people] * 2)
    page = tmp_path / "e.html"
    result = CliRunner().invoke(main, ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--metric", "hota",
                                       "--html", str(page)])
    assert result.exit_code == 1 and "use --metric all" in result.output
    assert not page.exists()

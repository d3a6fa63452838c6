"""Every number of every official-poseval fixture case (../shared/fixtures/poseval*), to 1e-9."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from posetrack.evaluation import evaluate, metrics
from posetrack.evaluation.joints import JOINT_NAMES
from posetrack.evaluation.report import AP_HEADER, MOT_HEADER, ap_row, mot_row, result_to_json

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
# Every case with reference numbers: synthetic (poseval), real data (poseval_real) and real GT with
# predictions built to expose float32 reading (poseval_real_float32).
CASES = sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in FIXTURES.glob("poseval*/*/expected.json"))
# Keys of expected.json that describe the case rather than hold numbers of the reference.
METADATA = {"case", "format", "sequences", "reference", "joint_names", "group_names",
            "groups_definition", "tracking_error"}
TOLERANCE = 1e-9  # percent points: float64 throughout, as poseval (float32 reading was off by 1e-6..14)


def _joints(values):
    return {name: float(v) for name, v in zip(JOINT_NAMES, values)}


def _totals(values):
    return {"total": metrics.joint_mean(values), "groups": metrics.group_means(values),
            "per_joint": _joints(values)}


def _tracking(scores):
    if scores.mot is None:
        return None
    c = scores.mot
    out = {"mota": _totals(scores.mota_per_joint)}
    for key, values in (("motp", scores.motp_per_joint), ("precision", scores.precision_per_joint),
                        ("recall", scores.recall_per_joint)):
        out[key] = {"total": metrics.joint_mean(values), "per_joint": _joints(values)}
    out["counts"] = {key: _joints(getattr(c, key)) for key in
                     ("misses", "switches", "false_positives", "objects", "detections", "sum_distance")}
    return out


def _ours(result):
    """Our result in the layout of expected.json."""
    total = result.total
    ap = total.ap
    out = {
        "evaluated_frames": result.num_frames,
        "ap": {
            **_totals(total.ap_per_joint),
            "precision_per_joint": _joints([a.precision for a in ap]),
            "precision_total": metrics.joint_mean([a.precision for a in ap]),
            "recall_per_joint": _joints([a.recall for a in ap]),
            "recall_total": metrics.joint_mean([a.recall for a in ap]),
            "counts": {"gt_joints": _joints([a.num_gt for a in ap]),
                       "predicted_joints": _joints([a.num_predicted for a in ap]),
                       "true_positives": _joints([a.num_true_positives for a in ap]),
                       "predicted_joints_without_score": _joints([a.num_without_score for a in ap])},
            "printed_header": AP_HEADER, "printed_row": ap_row(total),
        },
        "tracking": _tracking(total),
        "per_sequence": {name: {"ap": _totals(s.ap_per_joint), "tracking": _tracking(s)}
                         for name, s in result.per_sequence.items()},
    }
    if out["tracking"] is not None:
        out["tracking"].update(printed_header=MOT_HEADER, printed_row=mot_row(total))
    return out


def _compare(expected, ours, where, mismatches):
    """Walk every leaf of ``expected``; collect the ones ``ours`` lacks or differs in."""
    if isinstance(expected, dict):
        if not isinstance(ours, dict):
            mismatches.append(f"{where}: expected a mapping, got {ours!r}")
            return
        for key, value in expected.items():
            if where == "" and key in METADATA:
                continue
            if key not in ours:
                mismatches.append(f"{where}/{key}: not produced")
                continue
            _compare(value, ours[key], f"{where}/{key}", mismatches)
    elif expected is None:
        if ours is not None and not (isinstance(ours, float) and math.isnan(ours)):
            mismatches.append(f"{where}: expected null, got {ours!r}")
    elif isinstance(expected, str):
        if expected != ours:
            mismatches.append(f"{where}: expected {expected!r}, got {ours!r}")
    else:
        if ours is None or math.isnan(ours) or abs(float(expected) - float(ours)) > TOLERANCE:
            mismatches.append(f"{where}: expected {expected!r}, got {ours!r}")


def test_every_fixture_folder_has_cases(shared_dir):
    folders = {case.split("/")[0] for case in CASES}
    assert {"poseval", "poseval_real", "poseval_real_float32"} <= folders, CASES
    assert len(CASES) >= 16


@pytest.mark.parametrize("case", CASES)
def test_golden_case_equals_official_poseval(shared_dir, case):
    case_dir = shared_dir / "fixtures" / case
    expected = json.loads((case_dir / "expected.json").read_text())
    result = evaluate(case_dir / "gt", case_dir / "pred", workers=1)
    mismatches = []
    _compare(expected, _ours(result), "", mismatches)
    assert not mismatches, f"{len(mismatches)} numbers differ:\n" + "\n".join(mismatches[:30])
    # the number of leaves compared, so a schema change cannot silently skip everything
    assert len(json.dumps(expected)) > 1000


@pytest.mark.parametrize("case", ["mixed_four_seqs", "real_gt_mmpose"])
def test_json_report_carries_the_golden_totals(shared_dir, case):
    case_dir = shared_dir / "fixtures" / "poseval" / case
    expected = json.loads((case_dir / "expected.json").read_text())
    report = result_to_json(evaluate(case_dir / "gt", case_dir / "pred", workers=2), per_sequence=True)
    assert report["ap"]["total"] == pytest.approx(expected["ap"]["total"], abs=TOLERANCE)
    for group, value in expected["ap"]["groups"].items():
        assert report["ap"][group] == pytest.approx(value, abs=TOLERANCE)
    for joint, value in expected["ap"]["per_joint"].items():
        assert report["per_joint"]["ap"][joint] == pytest.approx(value, abs=TOLERANCE)
    assert set(report["per_sequence"]) == {s["name"] for s in expected["sequences"]}
    if expected["tracking"] is None:
        assert report["mota"] is None and report["counts"] is None
        return
    assert report["mota"]["total"] == pytest.approx(expected["tracking"]["mota"]["total"], abs=TOLERANCE)
    for key, json_key in (("motp", "motp"), ("precision", "precision"), ("recall", "recall")):
        assert report[json_key]["total"] == pytest.approx(expected["tracking"][key]["total"], abs=TOLERANCE)
    for joint in JOINT_NAMES:
        for count in ("misses", "switches", "false_positives", "objects"):
            assert report["counts"][joint][count] == expected["tracking"]["counts"][count][joint]
    assert np.isfinite(report["mota"]["total"])

"""Bad input gets one clear line naming the file; the CLI prints the official table and JSON."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from posetrack.cli import main
from posetrack.errors import FormatError, PosetrackError
from posetrack.evaluation import evaluate

from evalcase import person_xy

PEOPLE = [(0, person_xy(100, 100)), (1, person_xy(300, 100))]


@pytest.fixture
def folders(write_pair):
    """Two good sequences, three frames each."""
    write_pair("a", [PEOPLE] * 3, [PEOPLE] * 3)
    return write_pair("b", [PEOPLE] * 3, [PEOPLE] * 3)


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_missing_gt_folder(tmp_path):
    with pytest.raises(PosetrackError, match="no such ground-truth"):
        evaluate(tmp_path / "nope", tmp_path)


def test_empty_gt_folder(tmp_path):
    (tmp_path / "gt").mkdir()
    with pytest.raises(PosetrackError, match=r"gt: the ground-truth folder holds no \.json files"):
        evaluate(tmp_path / "gt", tmp_path)


def test_every_missing_prediction_file_is_listed(folders, tmp_path):
    gt_dir, pred_dir = folders
    (pred_dir / "a.json").unlink()
    (pred_dir / "b.json").unlink()
    with pytest.raises(PosetrackError, match=r"missing for 2 of 2 .*: a\.json, b\.json"):
        evaluate(gt_dir, pred_dir)


def test_frame_count_mismatch(write_pair):
    gt_dir, pred_dir = write_pair("a", [PEOPLE] * 3, [PEOPLE] * 2)
    with pytest.raises(FormatError, match=r"a\.json: has 2 frames, but the ground truth .* has 3"):
        evaluate(gt_dir, pred_dir, workers=1)


def test_duplicate_track_ids_in_a_frame(folders):
    gt_dir, pred_dir = folders
    _edit(pred_dir / "b.json", lambda d: d["annotations"][1].update(track_id=d["annotations"][0]["track_id"]))
    with pytest.raises(FormatError, match=r"pred/b\.json: frame .*track id 0 is used by more than one"):
        evaluate(gt_dir, pred_dir)  # in a worker process: still a FormatError naming the file


def test_track_id_of_10000_or_more(folders):
    gt_dir, pred_dir = folders
    _edit(pred_dir / "a.json", lambda d: d["annotations"][0].update(track_id=10000))
    with pytest.raises(FormatError, match=r"a\.json: frame .*track id 10000 is outside 0\.\.9999"):
        evaluate(gt_dir, pred_dir, workers=1)


def test_malformed_json(folders):
    gt_dir, pred_dir = folders
    (pred_dir / "b.json").write_text('{"images": [')
    with pytest.raises(FormatError, match=r"b\.json: not valid JSON \(line 1"):
        evaluate(gt_dir, pred_dir, workers=1)


def test_keypoints_of_the_wrong_length(folders):
    gt_dir, pred_dir = folders
    _edit(pred_dir / "a.json", lambda d: d["annotations"][2].update(keypoints=[1.0] * 45))
    with pytest.raises(FormatError, match=r"a\.json: annotations\[2\] .*'keypoints' has 45 values, expected 51"):
        evaluate(gt_dir, pred_dir, workers=1)


def test_gt_person_without_head_box(folders):
    gt_dir, pred_dir = folders
    _edit(gt_dir / "a.json", lambda d: d["annotations"][0].pop("bbox_head"))
    with pytest.raises(FormatError, match=r"gt/a\.json: frame 0 .*no head box"):
        evaluate(gt_dir, pred_dir, workers=1)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_prints_the_official_table_and_writes_json(folders, tmp_path):
    gt_dir, pred_dir = folders
    out = tmp_path / "results.json"
    result = CliRunner().invoke(main, ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir) + "/",
                                       "--json", str(out), "--per-sequence"])
    assert result.exit_code == 0, result.output
    assert "& Head & Shou & Elb  & Wri  & Hip  & Knee & Ankl & Total\\\\" in result.output
    assert "&100.0 &100.0 &100.0 &100.0 &100.0 &100.0 &100.0 &100.0 \\\\" in result.output  # as poseval prints it
    report = json.loads(out.read_text())
    groups = {"head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "total"}
    assert set(report["ap"]) == groups and set(report["mota"]) == groups
    for key in ("motp", "precision", "recall"):
        assert set(report[key]) == {"total"}
    assert set(report["per_joint"]["ap"]) == set(report["per_joint"]["mota"]) and len(report["per_joint"]["ap"]) == 15
    assert {"misses", "switches", "false_positives", "objects"} <= set(report["counts"]["nose"])
    assert report["counts"]["nose"]["objects"] == 8  # 2 people x (3 - 1) frames x 2 sequences
    assert set(report["per_sequence"]) == {"a", "b"}
    assert report["per_sequence"]["a"]["counts"]["nose"]["objects"] == 4


def test_cli_single_files(folders):
    gt_dir, pred_dir = folders
    result = CliRunner().invoke(main, ["eval", "--gt", str(gt_dir / "a.json"), "--pred", str(pred_dir / "a.json")])
    assert result.exit_code == 0, result.output
    assert "MOTP" in result.output


def test_cli_error_is_one_line(folders):
    gt_dir, pred_dir = folders
    (pred_dir / "b.json").unlink()
    result = CliRunner().invoke(main, ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Error:" in lines[0] and "b.json" in lines[0]


def test_cli_single_frame_sequences_report_ap_and_null_tracking(write_pair, tmp_path):
    gt_dir, pred_dir = write_pair("a", [PEOPLE], [PEOPLE])
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["ap"]["total"] == 100.0
    assert report["mota"] is None and report["motp"] is None and report["counts"] is None
    assert "not defined" in result.output


def test_evaluator_never_imports_torch_or_opencv(folders):
    gt_dir, pred_dir = folders
    code = ("import sys; from posetrack.cli import main; from posetrack.evaluation import evaluate; "
            f"evaluate({str(gt_dir)!r}, {str(pred_dir)!r}, workers=1); "
            "bad = [m for m in ('torch', 'cv2', 'ultralytics') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------------------------------------
# Real cases on which the official poseval crashes (../shared/fixtures/poseval_real_crashes):
# each has a defined answer here, one line naming the file and the problem.

CRASH_CASES = {
    # poseval: KeyError 'x1' in assignGTmulti (the GT person has no head box for PCKh)
    "no_head_box": r"gt/002164179_bonn_train\.json: frame 0 \(images/.*/000000\.jpg\): GT person 0 "
                   r"has annotated joints but no head box, which PCKh needs",
}


def test_every_crash_case_has_a_defined_answer(shared_dir):
    cases = {p.name for p in (shared_dir / "fixtures" / "poseval_real_crashes").iterdir() if p.is_dir()}
    assert cases == set(CRASH_CASES)


@pytest.mark.parametrize("case", sorted(CRASH_CASES))
def test_official_crash_cases_give_one_clear_line(shared_dir, case):
    case_dir = shared_dir / "fixtures" / "poseval_real_crashes" / case
    with pytest.raises(FormatError, match=CRASH_CASES[case]):
        evaluate(case_dir / "gt", case_dir / "pred")
    result = CliRunner().invoke(main, ["eval", "--gt", str(case_dir / "gt"), "--pred", str(case_dir / "pred")])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output

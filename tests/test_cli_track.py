import json

import numpy as np
import pytest
from click.testing import CliRunner

from posetrack.cli import main
from posetrack.formats import read_posetrack

FIXTURE_CASES = ["perfect_single_seq", "tracking_errors", "mixed_four_seqs", "format2017_mixed"]


def _strip_ids(source, target):
    data = json.loads(source.read_text())
    if "annotations" in data:
        for ann in data["annotations"]:
            ann["track_id"] = -1
    else:
        for entry in data["annolist"]:
            for rect in entry.get("annorect") or []:
                rect.pop("track_id", None)
    target.write_text(json.dumps(data))


@pytest.mark.parametrize("case", FIXTURE_CASES)
def test_retracked_ground_truth_gets_ids_consistent_with_the_original(tmp_path, shared_dir, case):
    for gt_path in sorted((shared_dir / "fixtures/poseval" / case / "gt").glob("*.json")):
        stripped, out = tmp_path / "poses.json", tmp_path / "tracks.json"
        _strip_ids(gt_path, stripped)
        result = CliRunner().invoke(main, ["track", str(stripped), "--out", str(out)])
        assert result.exit_code == 0, result.output
        original, tracked = read_posetrack(gt_path), read_posetrack(out)
        pairs = set()
        for a, b in zip(original.poses, tracked.poses):
            assert len(a) == len(b)
            pairs |= set(zip(a.track_ids.tolist(), b.track_ids.tolist()))
        # one new id per original track and one original track per new id
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_track_with_frames_uses_flow(tmp_path, shared_dir):
    pytest.importorskip("posetrack.flow")
    pytest.importorskip("posetrack.video")
    frames = shared_dir / "assets/posetrack18_sample/videos/000001_mpiinew_test"
    images = sorted(frames.glob("*.jpg"))
    rng = np.random.default_rng(0)
    annotations = []
    for k in range(len(images)):
        for p in range(2):
            keypoints = np.c_[rng.uniform(100, 600, (17, 2)) + [300 * p, 0], np.ones(17)]
            annotations.append({"image_id": k, "track_id": -1, "keypoints": keypoints.ravel().tolist(),
                                "scores": [0.9] * 17})
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps({"images": [{"id": k, "file_name": p.name} for k, p in enumerate(images)],
                                 "annotations": annotations}))
    result = CliRunner().invoke(main, ["track", str(poses), "--out", str(tmp_path / "t.csv"),
                                       "--frames", str(frames)])
    assert result.exit_code == 0, result.output
    assert "5 frames, 10 poses" in result.output
    result = CliRunner().invoke(main, ["track", str(poses), "--out", str(tmp_path / "t.json"),
                                       "--frames", str(images[0].parent.parent.parent / "images/val/003418_mpii_test")])
    assert result.exit_code == 1 and "has 1 frames but" in result.output


@pytest.mark.parametrize("content, message", [
    ("{oops", "not valid JSON (line 1"),
    (json.dumps({"images": [{"id": 0}], "annotations": [{"image_id": 0, "keypoints": [0] * 50}]}),
     "'keypoints' has 50 values, expected 51"),
])
def test_bad_input_is_one_line_without_traceback(tmp_path, content, message):
    path = tmp_path / "poses.json"
    path.write_text(content)
    result = CliRunner().invoke(main, ["track", str(path), "--out", str(tmp_path / "o.json")])
    assert result.exit_code == 1
    assert message in result.output and str(path) in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_input_and_output_folder(tmp_path, shared_dir):
    result = CliRunner().invoke(main, ["track", str(tmp_path / "none.json"), "--out", "x.json"])
    assert result.exit_code == 2 and "does not exist" in result.output
    gt = shared_dir / "fixtures/poseval/perfect_single_seq/gt/029033_mpii_test.json"
    result = CliRunner().invoke(main, ["track", str(gt), "--out", str(tmp_path / "no/dir/o.json")])
    assert result.exit_code == 1 and "output folder" in result.output


def test_bad_setting_is_reported(tmp_path, shared_dir):
    gt = shared_dir / "fixtures/poseval/perfect_single_seq/gt/029033_mpii_test.json"
    result = CliRunner().invoke(main, ["track", str(gt), "--out", str(tmp_path / "o.json"),
                                       "--min-similarity", "3"])
    assert result.exit_code == 1 and "--min-similarity: must be a number in [0, 1], got 3" in result.output


@pytest.mark.parametrize("command", [[], ["track"]])
def test_help(command):
    result = CliRunner().invoke(main, command + ["--help"])
    assert result.exit_code == 0 and "Usage" in result.output

"""Exit codes and messages: 1 with one line for bad input, 2 with one line for usage errors,
130 with one line on Ctrl-C; -q leaves only warnings and errors."""

import json

import pytest
from click.testing import CliRunner

from posetrack import retrack
from posetrack.cli import main


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _poses_file(tmp_path):
    path = tmp_path / "poses.json"
    person = {"image_id": 0, "track_id": -1, "keypoints": [10.0, 10.0, 1.0] * 17, "scores": [0.9] * 17}
    path.write_text(json.dumps({"images": [{"id": 0, "file_name": "a.jpg"}], "annotations": [person]}))
    return path


@pytest.mark.parametrize("args, message", [
    (["run"], "Missing argument 'INPUT'"),
    (["track", "{poses}", "--out", "{tmp}/o.json", "--no-such-option"], "No such option '--no-such-option'"),
    (["track", "{poses}", "--out", "{tmp}/o.json", "--memory-frames", "many"], "'many' is not a valid integer"),
    (["track", "{tmp}/absent.json", "--out", "{tmp}/o.json"], "does not exist"),
    (["no-such-command"], "No such command 'no-such-command'"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    poses = _poses_file(tmp_path)
    result = _cli(*[a.format(tmp=tmp_path, poses=poses) for a in args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert "--help" in lines[0]


def test_bad_input_exits_1_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = _cli("track", bad, "--out", tmp_path / "o.json")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(f"Error: {bad}: not valid JSON")


def test_ctrl_c_exits_130_with_one_line_and_no_output(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(retrack, "retrack", interrupted)
    result = _cli("track", _poses_file(tmp_path), "--out", tmp_path / "o.json")
    assert result.exit_code == 130
    assert result.output.strip() == "Error: interrupted; outputs in progress were discarded"
    assert not (tmp_path / "o.json").exists()


def test_help_and_version_exit_0():
    assert _cli("--help").exit_code == 0
    assert _cli("--version").exit_code == 0
    assert "Exit codes" in _cli("--help").output


def test_quiet_silences_summaries(tmp_path):
    poses = _poses_file(tmp_path)
    loud = _cli("track", poses, "--out", tmp_path / "a.json")
    quiet = _cli("-q", "track", poses, "--out", tmp_path / "b.json")
    assert loud.exit_code == quiet.exit_code == 0
    assert "1 frames" in loud.output and quiet.output == ""
    assert (tmp_path / "b.json").is_file()

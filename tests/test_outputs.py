"""Outputs are checked before any work (fileio.check_outputs), no command overwrites one of its
inputs, temporary files carry a recognisable name and stale ones are removed by a later run."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack import fileio
from posetrack.cli import main
from posetrack.errors import PosetrackError
from posetrack.fileio import TEMP_MARK, check_outputs, remove_stale_temps, write_json

W, H = 64, 48


def _clip(path, frames=4):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for k in range(frames):
        writer.write(np.full((H, W, 3), 40 * k, np.uint8))
    writer.release()
    return path


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ---------------------------------------------------------------------------------------------
# check_outputs


@pytest.mark.parametrize("outputs, message", [
    # every output path needs an extension its role can be written as
    ([("t.txt", "tracks")], r"unknown extension '\.txt' for the tracks output; use \.json, \.csv"),
    ([("o.gif", "overlay")], r"unknown extension '\.gif' for the overlay output"),
    ([("o", "overlay")], r"unknown extension '\(none\)'"),
    # two outputs on one file: the second would replace the first
    ([("a.json", "tracks"), ("./sub/../a.json", "results")], r"more than one output .*\(tracks and results\)"),
    # a folder where a file is expected
    ([("sub", "file")], "is a folder"),
    ([("missing/t.json", "tracks")], "output folder .*missing does not exist"),
    # stdout is for the roles that stream (tracks as JSON Lines)
    ([("-", "overlay")], "cannot be written to standard output"),
])
def test_bad_outputs(tmp_path, monkeypatch, outputs, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(PosetrackError, match=message):
        check_outputs(outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # nothing left behind


def test_good_outputs_and_skipped_ones(tmp_path):
    check_outputs([(tmp_path / "t.json", "tracks"), (tmp_path / "T.CSV", "tracks"), (None, "overlay"),
                   (tmp_path / "o.mp4", "overlay"), (tmp_path / "x.anything", "file")],
                  inputs=[tmp_path / "in.mp4", None])
    assert list(tmp_path.iterdir()) == []  # the write probe is removed


def test_unknown_role_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="unknown output role"):
        check_outputs([(tmp_path / "t.json", "trackz")])


def test_output_equal_to_an_input_by_any_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "dets.json").write_text("[]")
    os.link(tmp_path / "d" / "dets.json", tmp_path / "hard.json")
    os.symlink(tmp_path / "d" / "dets.json", tmp_path / "soft.json")
    for out in ("d/dets.json", "d/../d/dets.json", "soft.json", "hard.json", str(tmp_path / "d/dets.json")):
        with pytest.raises(PosetrackError, match="would overwrite the input"):
            check_outputs([(out, "tracks")], inputs=["d/dets.json"])


def test_a_folder_that_cannot_be_written_fails_before_the_work(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)
    with pytest.raises(PosetrackError, match=r"t.json: cannot write in the folder .*Permission denied"):
        check_outputs([(tmp_path / "t.json", "tracks")])
    with pytest.raises(PosetrackError, match="cannot write in the folder"):
        write_json(tmp_path / "t.json", {})


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write in any folder")
def test_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PosetrackError, match="cannot write in the folder"):
            check_outputs([(folder / "t.json", "tracks")])
    finally:
        folder.chmod(0o700)


# ---------------------------------------------------------------------------------------------
# Temporary files


def test_temporary_files_are_recognisable_and_stale_ones_removed(tmp_path):
    out = tmp_path / "t.json"
    stale = tmp_path / f".t.json.{_dead_pid()}-abcd{TEMP_MARK}.json"
    mine = tmp_path / f".t.json.{os.getpid()}-efgh{TEMP_MARK}.json"
    other_output = tmp_path / f".u.json.{_dead_pid()}-abcd{TEMP_MARK}.json"
    not_ours = tmp_path / ".t.json.12-notours.tmp"
    for path in (stale, mine, other_output, not_ours):
        path.write_text("partial")
    write_json(out, {"a": 1})
    assert json.loads(out.read_text()) == {"a": 1}
    assert not stale.exists()  # its process is gone: removed
    assert mine.exists() and other_output.exists() and not_ours.exists()  # alive, or not ours
    assert remove_stale_temps(tmp_path / "u.json") == [other_output]


def test_overlay_left_by_sigkill_is_removed_by_the_next_run(tmp_path):
    """A run killed while rendering leaves its temporary overlay (nothing can clean up after
    SIGKILL); the next run writing the same output removes it."""
    clip = _clip(tmp_path / "clip.avi")
    out = tmp_path / "overlay.mp4"
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from posetrack.video import VideoWriter
        writer = VideoWriter({str(out)!r}, 10, ({W}, {H})).__enter__()
        writer.write(np.zeros(({H}, {W}, 3), np.uint8))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    killed = subprocess.run([sys.executable, "-c", script], env=env)
    assert killed.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir() if TEMP_MARK in p.name]
    assert len(left) == 1 and left[0].startswith(".overlay.mp4.") and left[0].endswith(".mp4")
    tracks = tmp_path / "tracks.json"
    tracks.write_text(json.dumps({"images": [], "annotations": []}))
    result = _cli("render", clip, tracks, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "overlay.mp4", "tracks.json"]


# ---------------------------------------------------------------------------------------------
# Commands: a bad output fails at once, and never replaces an input


@pytest.fixture()
def clip_and_dets(tmp_path):
    clip = _clip(tmp_path / "clip.mp4")
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 0, "category_id": 1, "bbox": [5, 5, 20, 30], "score": 0.9}]))
    return clip, dets


@pytest.mark.parametrize("extra, message", [
    (["--out", "{tmp}/t.txt"], r"t.txt: unknown extension '\.txt' for the tracks output"),
    (["--out", "{tmp}/none/t.json"], "output folder .* does not exist"),
    (["--out", "{tmp}/t.json", "--render", "{tmp}/o.gif"], r"unknown extension '\.gif'"),
    (["--out", "{tmp}/t.json", "--render", "{tmp}/clip.mp4"], "would overwrite the input .*clip.mp4"),
    (["--out", "{tmp}/dets.json"], "would overwrite the input .*dets.json"),
])
def test_run_checks_outputs_before_loading_anything(tmp_path, clip_and_dets, extra, message):
    clip, dets = clip_and_dets
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # the pose model does not exist: a failure about the output proves it came first
    result = _cli("run", clip, "--detections", dets, "--pose-model", tmp_path / "absent.pth",
                  "--device", "cpu", *[e.format(tmp=tmp_path) for e in extra])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output
    assert __import__("re").search(message, result.output), result.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # inputs untouched


def test_render_track_eval_export_refuse_to_overwrite_inputs(tmp_path):
    clip = _clip(tmp_path / "clip.mp4")
    tracks = tmp_path / "tracks.json"
    tracks.write_text(json.dumps({"images": [], "annotations": []}))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for args in (["render", clip, tracks, "--out", clip],
                 ["track", tracks, "--out", tracks],
                 ["eval", "--gt", tracks, "--pred", tracks, "--json", tracks],
                 ["export-onnx", tmp_path / "model.onnx", "--out", tmp_path / "model.onnx"]):
        result = _cli(*args)
        assert result.exit_code == 1 and "would overwrite the input" in result.output, (args, result.output)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_batch_refuses_an_output_folder_that_is_an_input_folder(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    _clip(clips / "a.mp4")
    dets = tmp_path / "dets"
    dets.mkdir()
    (dets / "a.json").write_text("[]")
    result = _cli("batch", clips, "--out", dets, "--detections", dets, "--pose-model",
                  tmp_path / "absent.pth")
    assert result.exit_code == 1 and "also the --detections folder" in result.output
    assert (dets / "a.json").read_text() == "[]"


def test_batch_refuses_two_clips_with_one_output(tmp_path):
    clips = tmp_path / "clips"
    (clips / "a").mkdir(parents=True)
    cv2.imwrite(str(clips / "a" / "000.jpg"), np.zeros((H, W, 3), np.uint8))
    _clip(clips / "a.mp4")
    result = _cli("batch", clips, "--out", tmp_path / "out", "--pose-model", tmp_path / "absent.pth")
    assert result.exit_code == 1 and "more than one output" in result.output and "a.json" in result.output

"""Live and streamed input through `posetrack run`: a clip served over HTTP tracked into JSON Lines
(flushed frame by frame, also to standard output), Ctrl-C on a stream keeping what was tracked,
frame ranges, the run's metadata, --show, and batch --render."""

import json
import os
import signal
import subprocess
import sys
import time

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from posetrack.cli import main  # noqa: E402
from posetrack.formats import read_posetrack  # noqa: E402
from posetrack.frame import Poses  # noqa: E402
from posetrack.posenet import PoseNetConfig, SimpleBaseline  # noqa: E402
from posetrack.run import FrameRange, Models, RunSettings, run_clip  # noqa: E402

W, H, FRAMES = 160, 112, 12
from posetrack.tracker import TrackerConfig  # noqa: E402

# A new track is written once confirmed (min_hits), its first frames then: with min_hits 1 no
# frame is held back, so frames estimated and frames written are counted alike below.
NO_DELAY = RunSettings(tracker=TrackerConfig(min_hits=1))


def _frames():
    for k in range(FRAMES):
        image = np.full((H, W, 3), 90, np.uint8)
        cv2.rectangle(image, (10 + 5 * k, 15), (40 + 5 * k, 95), (40, 200, 40), -1)
        yield image


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A clip as MJPG in AVI (plain http.server can serve it: no range requests needed), its
    detections, and a random-weight pose network."""
    root = tmp_path_factory.mktemp("live")
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for image in _frames():
        writer.write(image)
    writer.release()
    (root / "clip.json").write_text(json.dumps(
        [{"image_id": k, "category_id": 1, "bbox": [10 + 5 * k, 15, 30, 80], "score": 0.9} for k in range(FRAMES)]))
    torch.manual_seed(0)
    torch.save(SimpleBaseline(PoseNetConfig(depth=18, input_size_hw=(96, 64))).state_dict(),
               root / "tiny_res18_96x64.pth")
    return root


def _options(clip):
    return ["--detections", str(clip / "clip.json"), "--pose-model", str(clip / "tiny_res18_96x64.pth"),
            "--device", "cpu", "--flow", "dis", "--output-joint-threshold", "0", "--min-similarity", "0"]


def _one_person(image, boxes):
    """An estimator without a network: a person with 17 joints inside each box."""
    n = len(boxes)
    xy = np.repeat(boxes.boxes_xyxy[:, None, :2], 17, axis=1) + np.linspace(2, 20, 17)[None, :, None]
    return Poses(boxes.boxes_xyxy, boxes.scores, xy.astype(np.float32), np.full((n, 17), 0.9, np.float32),
                 np.full(n, -1))


def test_lines_are_flushed_as_frames_are_tracked(clip, tmp_path):
    out = tmp_path / "tracks.jsonl"
    seen = []

    def estimator(image, boxes):
        # when frame k is estimated, the lines of frames 0..k-1 are already on disk
        seen.append(len(out.read_text().splitlines()) if out.exists() else 0)
        return _one_person(image, boxes)

    summary = run_clip(clip / "clip.avi", out, Models(estimator, None, None, "cpu"), NO_DELAY,
                       detections_file=clip / "clip.json", progress=False)
    assert seen == list(range(FRAMES))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(FRAMES)) and summary.frames == FRAMES
    first = records[0]
    assert set(first) == {"frame", "time", "people"}  # a file has no wall time
    assert first["time"] == 0 and records[5]["time"] == pytest.approx(0.5)
    person = first["people"][0]
    assert set(person) == {"track_id", "box_xywh", "box_score", "keypoints"}
    assert person["track_id"] == 0 and person["box_xywh"] == [10, 15, 30, 80]
    assert person["box_score"] == pytest.approx(0.9) and len(person["keypoints"]) == 17
    assert person["keypoints"][0] == [12, 17, 0.9]


def test_ctrl_c_on_a_stream_keeps_what_was_tracked(clip, tmp_path, http_folder):
    url = http_folder(clip) + "/clip.avi"

    def estimator(image, boxes):
        estimator.calls += 1
        if estimator.calls == 6:
            raise KeyboardInterrupt
        return _one_person(image, boxes)
    estimator.calls = 0

    summary = run_clip(url, tmp_path / "t.json", Models(estimator, None, None, "cpu"), NO_DELAY,
                       detections_file=clip / "clip.json", progress=False,
                       render_path=tmp_path / "o.mp4")
    assert summary.stopped == "Ctrl-C" and summary.frames == 5
    assert "stopped by Ctrl-C; kept the 5 frames tracked" in summary.lines()[0]
    video = read_posetrack(tmp_path / "t.json")
    assert len(video) == 5 and video.info["live"] and video.info["stopped"] == "Ctrl-C"
    with av.open(str(tmp_path / "o.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5


def test_first_ctrl_c_on_a_stream_finishes_the_frame_in_hand(clip, tmp_path, http_folder):
    """SIGINT while frame 2 is estimated: frame 2 is finished and written, then the run ends
    (the pipeline's held-back frames, if any, are flushed) and the handler is put back."""
    url = http_folder(clip) + "/clip.avi"
    before = signal.getsignal(signal.SIGINT)

    def estimator(image, boxes):
        estimator.calls += 1
        if estimator.calls == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return _one_person(image, boxes)
    estimator.calls = 0

    summary = run_clip(url, tmp_path / "t.jsonl", Models(estimator, None, None, "cpu"), RunSettings(),
                       detections_file=clip / "clip.json", progress=False)
    assert summary.stopped == "Ctrl-C" and summary.frames == 3 and estimator.calls == 3
    assert [json.loads(line)["frame"] for line in (tmp_path / "t.jsonl").read_text().splitlines()] == [0, 1, 2]
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_on_a_file_writes_nothing(clip, tmp_path):
    def estimator(image, boxes):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_clip(clip / "clip.avi", tmp_path / "t.json", Models(estimator, None, None, "cpu"), RunSettings(),
                 detections_file=clip / "clip.json", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_frame_range_and_run_metadata(clip, tmp_path):
    summary = run_clip(clip / "clip.avi", tmp_path / "t.json", Models(_one_person, None, None, "cpu"),
                       RunSettings(), detections_file=clip / "clip.json", progress=False,
                       frames=FrameRange(start=3, end=9, max_frames=4))
    video = read_posetrack(tmp_path / "t.json")
    assert summary.frames == 4
    assert [i.image_id for i in video.images] == [3, 4, 5, 6]
    assert [i.file_name for i in video.images] == [f"clip/{k:06d}.jpg" for k in (3, 4, 5, 6)]
    # the detections of frame k are the ones used for frame k
    assert [float(p.boxes_xyxy[0, 0]) for p in video.poses] == [10 + 5 * k for k in (3, 4, 5, 6)]
    info = video.info
    assert info["frame_range"] == [3, 7] and info["frames"] == 4 and info["fps"] == 10
    assert set(info["stage_ms_per_frame"]) == {"decode", "detect", "flow", "pose", "match"}
    assert set(info["settings"]) == {"models", "detection", "flow", "pose", "pipeline", "tracker", "smoothing"}
    assert info["settings"]["tracker"]["memory_frames"] > 0 and info["settings"]["smoothing"]["enabled"] is False


def test_http_stream_into_json_lines_on_stdout_then_ctrl_c(clip, tmp_path, http_folder):
    """The CLI in its own process: `run URL --out -` prints one JSON line per frame and nothing
    else; SIGINT after the first lines ends it cleanly with what was tracked."""
    url = http_folder(clip) + "/clip.avi"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "posetrack", "run", url, "--out", "-", *_options(clip)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]  # every line is JSON
    assert [r["frame"] for r in records] == list(range(FRAMES))
    assert all("wall_time" in r and len(r["people"]) == 1 for r in records)
    assert f"{FRAMES} frames" in done.stderr and "standard output" in done.stderr

    # Ctrl-C: slow the stream down by tracking it again and again (--end far away is not needed:
    # a stream has no end to wait for but its own), interrupt after two lines
    process = subprocess.Popen(command + ["--flip-test"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=120)
    finally:
        process.kill()
    got = [json.loads(line) for line in lines + rest.splitlines()]
    assert [r["frame"] for r in got] == list(range(len(got))) and 2 <= len(got) <= FRAMES
    assert process.returncode == 0 or len(got) == FRAMES, err  # stopped cleanly, or had finished
    assert "Traceback" not in err


def test_show_without_a_display_is_one_warning(clip, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    result = CliRunner().invoke(main, ["run", str(clip / "clip.avi"), "--out", str(tmp_path / "t.jsonl"),
                                       "--show", "--no-progress", *_options(clip)])
    assert result.exit_code == 0, result.output
    assert [r.getMessage() for r in caplog.records if "--show" in r.getMessage()] == [
        "--show: no display here (neither DISPLAY nor WAYLAND_DISPLAY is set); tracking without a window"]
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == FRAMES


def test_show_draws_every_frame_and_q_stops(clip, tmp_path, monkeypatch):
    import posetrack.video as video

    shown = []

    class Window:
        def __init__(self, title, size):
            assert size == (W, H)

        def show(self, image):
            shown.append(image)
            return len(shown) < 4  # q pressed on the fourth frame

        def close(self):
            shown.append("closed")

    monkeypatch.setattr(video, "display_problem", lambda: None)
    monkeypatch.setattr(video, "FrameWindow", Window)
    summary = run_clip(clip / "clip.avi", tmp_path / "t.json", Models(_one_person, None, None, "cpu"),
                       NO_DELAY, detections_file=clip / "clip.json", progress=False, show=True)
    assert summary.stopped == "the window closed" and summary.frames == 4
    assert len(read_posetrack(tmp_path / "t.json")) == 4
    assert shown[-1] == "closed" and all(isinstance(s, np.ndarray) for s in shown[:-1])
    assert not np.array_equal(shown[0], next(_frames()))  # the overlay is drawn


def test_batch_render_writes_one_h264_overlay_per_clip(clip, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.avi").write_bytes((clip / "clip.avi").read_bytes())
    (clips / "b.avi").write_bytes((clip / "clip.avi").read_bytes())
    dets = tmp_path / "dets"
    dets.mkdir()
    for name in ("a", "b"):
        (dets / f"{name}.json").write_text((clip / "clip.json").read_text())
    options = _options(clip)
    options[1] = str(dets)
    result = CliRunner().invoke(main, ["batch", str(clips), "--out", str(tmp_path / "out"), "--render",
                                       str(tmp_path / "overlays"), "--max-frames", "5", "--format",
                                       "jsonl", "--no-progress", *options])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jsonl", "b.jsonl"]
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["a.mp4", "b.mp4"]
    for name in ("a", "b"):
        assert len((tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()) == 5
        with av.open(str(tmp_path / "overlays" / f"{name}.mp4")) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert sum(1 for _ in container.decode(video=0)) == 5


def test_stdout_takes_json_lines_only(clip, tmp_path):
    result = CliRunner().invoke(main, ["run", str(clip / "clip.avi"), "--out", "-", "--format", "csv",
                                       "--no-progress", *_options(clip)])
    assert result.exit_code == 1 and "standard output takes JSON Lines only" in result.output


def test_shared_asset_served_over_http(shared_dir, tmp_path, http_folder):
    """The real clip of the assets, served by http.server, tracked like a file."""
    videos = shared_dir / "assets" / "videos"
    url = http_folder(videos) + "/openpose_video.avi"
    detections = shared_dir / "assets" / "detections" / "openpose_video.json"
    summary = run_clip(url, tmp_path / "t.jsonl", Models(_one_person, None, None, "cpu"), RunSettings(),
                       detections_file=detections, progress=False, frames=FrameRange(max_frames=20))
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert summary.frames == 20 and [r["frame"] for r in records] == list(range(20))
    assert all(r["people"] for r in records)

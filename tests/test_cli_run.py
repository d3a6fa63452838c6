"""posetrack run / batch end to end on generated clips with a random-weight pose network, and on
a real sample clip with a real (small, third-party) pose model when ../shared is present."""

import json
import os

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from posetrack.cli import main  # noqa: E402
from posetrack.formats import read_posetrack  # noqa: E402
from posetrack.posenet import PoseNetConfig, SimpleBaseline  # noqa: E402

W, H, FRAMES = 192, 128, 10


def _frames(shift=0):
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (5, 5), 0)
    for k in range(FRAMES):
        image = background.copy()
        for x0, y0 in ((20 + 4 * k + shift, 20), (130 - 4 * k, 30)):
            cv2.rectangle(image, (x0, y0), (x0 + 30, y0 + 80), (40, 200, 40), -1)
        yield image


def _detections(shift=0):
    return [{"image_id": k, "category_id": 1, "bbox": [x0, y0, 30, 80], "score": 0.9}
            for k in range(FRAMES) for x0, y0 in ((20 + 4 * k + shift, 20), (130 - 4 * k, 30))]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for image in _frames():
        writer.write(image)
    writer.release()
    (root / "clip.json").write_text(json.dumps(_detections()))
    torch.manual_seed(0)
    model = SimpleBaseline(PoseNetConfig(depth=18, input_size_hw=(96, 64)))
    torch.save(model.state_dict(), root / "tiny_res18_96x64.pth")
    return root


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_run_writes_tracks_csv_and_overlay(assets, tmp_path):
    # random weights give random poses: --min-similarity 0 lets each box's pose continue its
    # track, so tracks are confirmed (min_hits) and every pose is written
    common = ["--detections", assets / "clip.json", "--pose-model", assets / "tiny_res18_96x64.pth",
              "--device", "cpu", "--flow", "dis", "--no-progress", "--min-similarity", "0"]
    result = _run("run", assets / "clip.mp4", "--out", tmp_path / "t.json", "--render",
                  tmp_path / "o.mp4", "--output-joint-threshold", "0",
                  *common)
    assert result.exit_code == 0, result.output
    assert f"{FRAMES} frames" in result.output and "frames/s" in result.output
    for stage in ("decode", "detect", "flow", "pose", "match"):
        assert stage in result.output
    video = read_posetrack(tmp_path / "t.json")
    assert len(video) == FRAMES
    assert [i.image_id for i in video.images] == list(range(FRAMES))
    assert all(len(p) >= 2 for p in video.poses)  # both boxes estimated every frame
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (W, H)
    result = _run("run", assets / "clip.mp4", "--out", tmp_path / "t.csv", *common)
    assert result.exit_code == 0 and (tmp_path / "t.csv").read_text().startswith("frame,image_id,track_id")
    # --smooth changes keypoints, not people or ids; render --smooth draws a smoothed file
    # (random weights give random poses: --min-similarity 0 keeps the two tracks going)
    steady = ["--min-similarity", "0", "--output-joint-threshold", "0"]
    _run("run", assets / "clip.mp4", "--out", tmp_path / "u.json", *steady, *common)
    result = _run("run", assets / "clip.mp4", "--out", tmp_path / "s.json", "--smooth", *steady, *common)
    assert result.exit_code == 0, result.output
    raw, smoothed = read_posetrack(tmp_path / "u.json"), read_posetrack(tmp_path / "s.json")
    assert [p.track_ids.tolist() for p in smoothed.poses] == [p.track_ids.tolist() for p in raw.poses] \
        == [[0, 1]] * FRAMES
    np.testing.assert_allclose(smoothed.poses[0].keypoints_xy, raw.poses[0].keypoints_xy)
    assert not np.allclose(smoothed.poses[-1].keypoints_xy, raw.poses[-1].keypoints_xy)
    result = _run("render", assets / "clip.mp4", tmp_path / "t.json", "--out", tmp_path / "r.mp4", "--smooth")
    assert result.exit_code == 0 and (tmp_path / "r.mp4").is_file()


def test_run_config_file_and_bad_input(assets, tmp_path):
    common = ["--detections", assets / "clip.json", "--pose-model", assets / "tiny_res18_96x64.pth",
              "--device", "cpu", "--no-progress", "--out", tmp_path / "t.json"]
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"tracker": {"memory_frame": 3}}))
    result = CliRunner().invoke(main, ["run", str(assets / "clip.mp4"), "--config", str(config), *map(str, common)])
    assert result.exit_code == 1 and "unknown key 'memory_frame'; did you mean 'memory_frames'?" in result.output
    config.write_text(yaml.safe_dump({"run": {"flow": "none"}, "tracker": {"memory_frames": 3}}))
    assert _run("run", assets / "clip.mp4", "--config", config, *common).exit_code == 0
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(4000))
    result = CliRunner().invoke(main, ["run", str(bad), *map(str, common)])
    assert result.exit_code == 1 and str(bad) in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["run", str(assets / "clip.mp4"), *map(str, common[:-1]),
                                       str(tmp_path / "missing" / "t.json")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_run_with_no_people_writes_an_empty_track_file(assets, tmp_path):
    (tmp_path / "none.json").write_text("[]")
    result = _run("run", assets / "clip.mp4", "--detections", tmp_path / "none.json", "--pose-model",
                  assets / "tiny_res18_96x64.pth", "--device", "cpu", "--no-progress", "--out", tmp_path / "t.json")
    assert result.exit_code == 0 and "0 people, 0 tracks" in result.output
    assert len(read_posetrack(tmp_path / "t.json")) == FRAMES


def _run_dets(assets, tmp_path, rows, *extra):
    (tmp_path / "d.json").write_text(json.dumps(rows))
    return CliRunner().invoke(main, [str(a) for a in (
        "run", assets / "clip.mp4", "--detections", tmp_path / "d.json", "--pose-model",
        assets / "tiny_res18_96x64.pth", "--device", "cpu", "--flow", "none", "--no-progress",
        "--out", tmp_path / "t.json", *extra)])


def test_run_refuses_detections_that_are_not_of_this_clip(assets, tmp_path):
    beyond = _detections() + [dict(d, image_id=d["image_id"] + FRAMES) for d in _detections()]
    result = _run_dets(assets, tmp_path, beyond)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert f"image ids {FRAMES}, {FRAMES + 1}, {FRAMES + 2}, {FRAMES + 3}, {FRAMES + 4} (and 5 more) " \
           f"are not among the frame indices 0-{FRAMES - 1}" in result.output
    other = [dict(d, image_id=d["image_id"] + 5000) for d in _detections()]
    result = _run_dets(assets, tmp_path, other)
    assert result.exit_code == 1 and "none of its image ids is a frame of" in result.output
    assert not (tmp_path / "t.json").exists()


def test_run_skips_a_few_bad_boxes_and_refuses_many(assets, tmp_path, caplog):
    rows = _detections()
    rows[0] = dict(rows[0], bbox=[20, 20, -30, 80])  # one negative width among 20 boxes
    with caplog.at_level("WARNING"):
        result = _run_dets(assets, tmp_path, rows, "--output-joint-threshold", "0")
    assert result.exit_code == 0, result.output
    assert any("skipped 1 invalid entry of 20" in r.getMessage() for r in caplog.records)
    boxes = [a["bbox"] for a in json.loads((tmp_path / "t.json").read_text())["annotations"]]
    assert all(w > 0 and h > 0 for _, _, w, h in boxes)
    rows = [dict(d, bbox=[d["bbox"][0], d["bbox"][1], -30, 80]) for d in _detections()]
    result = _run_dets(assets, tmp_path, rows)
    assert result.exit_code == 1 and "20 of 20 entries are not valid detections" in result.output


def test_max_detections_bounds_precomputed_boxes(assets, tmp_path):
    """Frames of 10,000 boxes each cost no more than --max-detections of them."""
    rng = np.random.default_rng(0)
    n = 100_000
    xy = rng.random((n, 2)) * [W - 30, H - 60]
    crowd = [{"image_id": k % FRAMES, "category_id": 1, "bbox": [x, y, 30, 60], "score": s}
             for k, ((x, y), s) in enumerate(zip(xy.tolist(), (0.3 + 0.6 * rng.random(n)).tolist()))]
    result = _run_dets(assets, tmp_path, crowd, "--max-detections", "10",
                       "--output-joint-threshold", "0", "--pose-nms-oks", "1", "--unify-iou", "1")
    assert result.exit_code == 0, result.output
    per_frame = np.bincount([a["image_id"] for a in json.loads((tmp_path / "t.json").read_text())["annotations"]],
                            minlength=FRAMES)
    assert per_frame.sum() > 0 and per_frame.max() <= 10, per_frame


def test_batch_resumes_and_reports_failures(assets, tmp_path):
    clips, dets, out = tmp_path / "clips", tmp_path / "dets", tmp_path / "out"
    clips.mkdir(), dets.mkdir()
    (clips / "a.mp4").write_bytes((assets / "clip.mp4").read_bytes())
    (clips / "b").mkdir()
    for k, image in enumerate(_frames(shift=2)):
        cv2.imwrite(str(clips / "b" / f"{k:06d}.jpg"), image)
    (clips / "broken.mp4").write_bytes(os.urandom(3000))
    (dets / "a.json").write_text(json.dumps(_detections()))
    (dets / "b.json").write_text(json.dumps(_detections(shift=2)))
    (dets / "broken.json").write_text("[]")
    args = ["batch", clips, "--out", out, "--detections", dets, "--pose-model",
            assets / "tiny_res18_96x64.pth", "--device", "cpu", "--no-progress"]
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 1
    assert "2 done, 0 skipped (output already there), 1 failed" in result.output and "failed: broken:" in result.output
    assert sorted(os.listdir(out)) == ["a.json", "b.json"]
    assert len(read_posetrack(out / "b.json")) == FRAMES
    stamp = (out / "a.json").stat().st_mtime_ns
    result = CliRunner().invoke(main, list(map(str, args)))
    assert "0 done, 2 skipped (output already there), 1 failed" in result.output
    assert (out / "a.json").stat().st_mtime_ns == stamp


def test_run_on_a_posetrack_frame_folder_pairs_with_its_ground_truth(assets, tmp_path, shared_dir):
    sample = shared_dir / "assets/posetrack18_sample"
    gt = sample / "annotations/val/009473_mpii_test.json"
    result = _run("run", sample / "images/val/009473_mpii_test", "--annotations", gt,
                  "--detections", shared_dir / "assets/detections/posetrack18_009473_mpii_test.json",
                  "--pose-model", assets / "tiny_res18_96x64.pth", "--device", "cpu", "--no-progress",
                  "--out", tmp_path / "009473_mpii_test.json")
    assert result.exit_code == 0, result.output
    ours, truth = read_posetrack(tmp_path / "009473_mpii_test.json"), read_posetrack(gt)
    assert [(i.image_id, i.file_name) for i in ours.images] == [(i.image_id, i.file_name) for i in truth.images]


ONNX_MODEL = "assets/models/mobilenetv2_simplepose_coco17_256x192.onnx"


def test_real_clip_gives_one_long_track_per_person(tmp_path, shared_dir):
    """The classroom clip: four people seated all through 45 frames (and a chair that the
    detector sometimes calls a person). Expect four long tracks, each on one person."""
    pytest.importorskip("onnxruntime")
    result = _run("run", shared_dir / "assets/videos/intel_preview_classroom.mp4", "--detections",
                  shared_dir / "assets/detections/intel_preview_classroom.json", "--pose-model",
                  shared_dir / ONNX_MODEL, "--flow", "dis", "--device", "cpu", "--no-progress",
                  "--out", tmp_path / "t.json")
    assert result.exit_code == 0, result.output
    video = read_posetrack(tmp_path / "t.json")
    lengths = {}
    for poses in video.poses:
        for track in poses.track_ids.tolist():
            lengths[track] = lengths.get(track, 0) + 1
    long_tracks = [t for t, n in lengths.items() if n >= 40]
    assert len(long_tracks) == 4, lengths
    # each long track stays on one person: its box centre moves little (people are seated)
    for track in long_tracks:
        centres = np.array([(p.boxes_xyxy[p.track_ids == track][0, :2] + p.boxes_xyxy[p.track_ids == track][0, 2:]) / 2
                            for p in video.poses if (p.track_ids == track).any()])
        assert np.ptp(centres[:, 0]) < 60, (track, np.ptp(centres, axis=0))


def test_a_failure_mid_run_leaves_no_partial_outputs(assets, tmp_path):
    from posetrack.frame import Poses
    from posetrack.run import Models, run_clip

    def estimator(image, boxes):
        estimator.calls += 1
        if estimator.calls == 4:
            raise RuntimeError("out of memory in frame 3")
        return Poses.empty()
    estimator.calls = 0

    models = Models(estimator=estimator, flow=None, detector=None, device="cpu")
    (tmp_path / "t.json").write_text("previous result")
    with pytest.raises(RuntimeError, match="frame 3"):
        run_clip(assets / "clip.mp4", tmp_path / "t.json", models, progress=False,
                 detections_file=assets / "clip.json", render_path=tmp_path / "o.mp4")
    assert (tmp_path / "t.json").read_text() == "previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_settings_reach_the_models(assets, monkeypatch):
    from posetrack import flow as flow_module
    from posetrack.detection import DetectorConfig
    from posetrack.flow import FlowConfig, flow_from_config
    from posetrack.run import ModelSpec, PoseConfig, RunSettings, load_models

    settings = RunSettings(models=ModelSpec(pose_model=str(assets / "tiny_res18_96x64.pth"), device="cpu"),
                           detection=DetectorConfig(detections=str(assets / "clip.json")),
                           flow=FlowConfig(method="dis", dis_preset="fast", scale=0.25),
                           pose=PoseConfig(flip_test=False, box_padding=1.4))
    models = load_models(settings)
    assert models.detector is None  # boxes come from the file
    assert models.estimator.config.box_padding == 1.4 and not models.estimator.config.flip_test
    assert (models.flow.config.preset, models.flow.config.scale) == ("fast", 0.25)
    assert flow_from_config(FlowConfig(method="none")) is None
    built = {}
    monkeypatch.setattr(flow_module, "RaftFlow", lambda arch, weights, config, device, weights_dir:
                        built.update(arch=arch, config=config, device=device))
    flow_from_config(FlowConfig(method="auto", raft_iterations=5, raft_half=False), "cuda:1")
    assert built["arch"] == "small" and built["device"] == "cuda:1"
    assert (built["config"].num_flow_updates, built["config"].half) == (5, False)


def test_detection_min_score_filters_a_detections_file(assets, tmp_path):
    common = ["--detections", assets / "clip.json", "--pose-model", assets / "tiny_res18_96x64.pth",
              "--device", "cpu", "--flow", "none", "--no-progress", "--out", tmp_path / "t.json"]
    result = _run("run", assets / "clip.mp4", "--detection-min-score", "0.95", *common)  # boxes score 0.9
    assert result.exit_code == 0 and "0 people" in result.output, result.output


def _same_tracks(path_a, path_b, tolerance_px=0.5):
    a, b = read_posetrack(path_a), read_posetrack(path_b)
    assert len(a.poses) == len(b.poses)
    for frame_a, frame_b in zip(a.poses, b.poses):
        np.testing.assert_array_equal(frame_a.track_ids, frame_b.track_ids)
        np.testing.assert_allclose(frame_a.keypoints_xy, frame_b.keypoints_xy, atol=tolerance_px)


def test_frame_batch_does_not_change_the_tracks(assets, tmp_path):
    """Detection and flow in chunks of 8 frames (one of them short), prepared in a worker
    thread: the same ids and keypoints as frame by frame."""
    common = ["--detections", assets / "clip.json", "--pose-model", assets / "tiny_res18_96x64.pth",
              "--device", "cpu", "--flow", "dis", "--no-progress", "--output-joint-threshold", "0",
              "--min-hits", "1"]  # random weights: every pose kept, so there is much to compare
    for k in (1, 8):
        result = _run("run", assets / "clip.mp4", "--out", tmp_path / f"k{k}.json", "--frame-batch", k, *common)
        assert result.exit_code == 0, result.output
    _same_tracks(tmp_path / "k1.json", tmp_path / "k8.json")
    assert sum(len(p) for p in read_posetrack(tmp_path / "k8.json").poses) >= FRAMES


def test_frame_batch_does_not_change_the_tracks_of_a_real_clip(tmp_path, shared_dir):
    """The store-aisle clip (67 frames, three people, one passing in front of another) with the
    real small pose model: --frame-batch 8 gives the same ids, keypoints within 0.5 px."""
    pytest.importorskip("onnxruntime")
    common = ["--detections", shared_dir / "assets/detections/intel_preview_store-aisle-detection.json",
              "--pose-model", shared_dir / ONNX_MODEL, "--flow", "dis", "--device", "cpu",
              "--no-progress"]
    clip = shared_dir / "assets/videos/intel_preview_store-aisle-detection.mp4"
    for k in (1, 8):
        result = _run("run", clip, "--out", tmp_path / f"k{k}.json", "--frame-batch", k, *common)
        assert result.exit_code == 0, result.output
    _same_tracks(tmp_path / "k1.json", tmp_path / "k8.json")
    assert len({t for p in read_posetrack(tmp_path / "k8.json").poses for t in p.track_ids}) >= 3

"""posetrack batch --engine ray on a local Ray instance (one for the whole module): the same
outputs as the built-in engine, a worker killed during a clip, a clip that kills every worker,
a driver killed during a batch, and the check that the output folder is shared."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from posetrack.cli import main  # noqa: E402
from posetrack.cluster import RayConfig, check_shared_folder, run_batch_ray  # noqa: E402
from posetrack.errors import PosetrackError  # noqa: E402
from posetrack.detection import DetectorConfig  # noqa: E402
from posetrack.flow import FlowConfig  # noqa: E402
from posetrack.pipeline import PipelineConfig  # noqa: E402
from posetrack.posenet import PoseNetConfig, SimpleBaseline  # noqa: E402
from posetrack.run import ModelSpec, PoseConfig, RunSettings, load_models, run_batch  # noqa: E402

# The fault-injecting loaders below go to the workers by value: they cannot import this module.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

H = 128
CLIPS = {"a": (6, 192), "b": (8, 192), "c": (10, 192)}  # name: (frames, width); b is a frame folder
POISON_WIDTH = 160


def _frames(count, width, shift):
    rng = np.random.default_rng(shift)
    background = cv2.GaussianBlur(rng.integers(0, 255, (H, width, 3), dtype=np.uint8), (5, 5), 0)
    for k in range(count):
        image = background.copy()
        for x0, y0 in ((20 + 4 * k + shift, 20), (width - 60 - 4 * k, 30)):
            cv2.rectangle(image, (x0, y0), (x0 + 30, y0 + 80), (40, 200, 40), -1)
        yield image


def _detections(count, width, shift):
    return [{"image_id": k, "category_id": 1, "bbox": [x0, y0, 30, 80], "score": 0.9}
            for k in range(count) for x0, y0 in ((20 + 4 * k + shift, 20), (width - 60 - 4 * k, 30))]


def _write_clip(clips, dets, name, count, width, shift, folder=False):
    if folder:
        (clips / name).mkdir()
        for k, image in enumerate(_frames(count, width, shift)):
            cv2.imwrite(str(clips / name / f"{k:06d}.png"), image)
    else:
        writer = cv2.VideoWriter(str(clips / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, H))
        for image in _frames(count, width, shift):
            writer.write(image)
        writer.release()
    (dets / f"{name}.json").write_text(json.dumps(_detections(count, width, shift)))


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance for the module: 2 logical cores, no dashboard, no usage stats."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    yield context.address_info["address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Three clips (two videos, one frame folder), a corrupt video, their detections, a tiny
    random-weight pose model, and the built-in engine's outputs as the reference."""
    root = tmp_path_factory.mktemp("cluster")
    clips, dets = root / "clips", root / "dets"
    clips.mkdir(), dets.mkdir()
    for shift, (name, (count, width)) in enumerate(CLIPS.items()):
        _write_clip(clips, dets, name, count, width, shift, folder=name == "b")
    (clips / "broken.mp4").write_bytes(os.urandom(3000))
    (dets / "broken.json").write_text("[]")
    torch.manual_seed(0)
    model = root / "tiny_res18_96x64.pth"
    torch.save(SimpleBaseline(PoseNetConfig(depth=18, input_size_hw=(96, 64))).state_dict(), model)
    # every joint written, so the files hold keypoints and ids to compare
    settings = RunSettings(models=ModelSpec(pose_model=str(model), device="cpu"),
                           detection=DetectorConfig(detections=str(dets)),
                           flow=FlowConfig(method="dis"), pose=PoseConfig(flip_test=False),
                           pipeline=PipelineConfig(output_joint_threshold=0.0))
    reference = root / "reference"
    reference.mkdir()
    report = run_batch(clips, reference, load_models(settings), settings, progress=False)
    assert len(report.done) == 3 and [name for name, _ in report.failed] == ["broken"]
    return {"root": root, "clips": clips, "dets": dets, "model": model, "settings": settings,
            "reference": {p.name: p.read_bytes() for p in reference.iterdir()}}


def _cli_args(batch, out, *more):
    return ["batch", str(batch["clips"]), "--out", str(out), "--detections", str(batch["dets"]),
            "--pose-model", str(batch["model"]), "--device", "cpu", "--flow", "dis",
            "--no-flip-test", "--output-joint-threshold", "0",
            *map(str, more)]


def _tracks(data: bytes) -> dict:
    """An output without its ``info`` (when, where and how fast it was tracked)."""
    video = json.loads(data)
    info = video.pop("info")
    assert info["frames"] == len(video["images"])
    return video


def _assert_complete(batch, out):
    """Every clip's output present, whole, and equal to the built-in engine's but for ``info``;
    nothing else in the folder."""
    assert sorted(os.listdir(out)) == sorted(batch["reference"])
    for name, data in batch["reference"].items():
        assert _tracks((out / name).read_bytes()) == _tracks(data), name


def test_ray_engine_writes_what_the_builtin_engine_writes(ray_address, batch, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, _cli_args(batch, out, "--engine", "ray", "--workers", "2",
                                                "--no-progress"))
    assert result.exit_code == 1, result.output  # the corrupt clip, as with the built-in engine
    assert "3 done, 0 skipped (output already there), 1 failed" in result.output
    assert "failed: broken:" in result.output and "cannot open as a video" in result.output
    _assert_complete(batch, out)
    # resumable like the built-in engine: nothing left to do but the broken clip
    result = CliRunner().invoke(main, _cli_args(batch, out, "--engine", "ray", "--no-progress"))
    assert "0 done, 3 skipped (output already there), 1 failed" in result.output
    # the engine's settings belong to the engine
    result = CliRunner().invoke(main, _cli_args(batch, out, "--workers", "2"))
    assert result.exit_code == 1 and "settings of --engine ray" in result.output


def _dying_loader(marker: str, when):
    """A model loader whose pose estimator kills its own worker process (SIGKILL, as the OOM
    killer or a lost node would) when ``when(image, calls, marker)`` says so."""
    def load(settings):
        models = load_models(settings)
        inner, calls = models.estimator, [0]

        def estimator(image, boxes):
            calls[0] += 1
            if when(image, calls[0], marker):
                os.kill(os.getpid(), signal.SIGKILL)
            return inner(image, boxes)
        models.estimator = estimator
        return models
    return load


def _first_time_at_frame_3(image, calls, marker):
    if calls != 3:
        return False
    try:  # only the first worker to get there dies
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def test_a_worker_killed_during_a_clip_has_the_clip_tracked_by_another(ray_address, batch, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    marker = tmp_path / "killed"
    report = run_batch_ray(batch["clips"], out, batch["settings"], RayConfig(workers=2), progress=False,
                           load=_dying_loader(str(marker), _first_time_at_frame_3))
    assert marker.exists()  # a worker really died mid-clip
    assert sorted(s.clip for s in report.done) == ["a.mp4", "b", "c.mp4"]
    assert [name for name, _ in report.failed] == ["broken"]
    _assert_complete(batch, out)  # no partial file, no temporary file left


def _always_on_poison(image, calls, marker):
    return image.shape[1] == POISON_WIDTH


def test_a_clip_that_kills_every_worker_fails_after_the_retries(ray_address, batch, tmp_path):
    clips, out = tmp_path / "clips", tmp_path / "out"
    clips.mkdir(), out.mkdir()
    (clips / "a.mp4").write_bytes((batch["clips"] / "a.mp4").read_bytes())
    _write_clip(clips, batch["dets"], "poison", 4, POISON_WIDTH, 0)
    report = run_batch_ray(clips, out, batch["settings"], RayConfig(workers=2, retries=1),
                           progress=False, load=_dying_loader("", _always_on_poison))
    assert [s.clip for s in report.done] == ["a.mp4"]
    assert len(report.failed) == 1 and report.failed[0][0] == "poison"
    assert "died 2 times" in report.failed[0][1]  # first try + 1 retry
    assert sorted(os.listdir(out)) == ["a.json"]
    assert _tracks((out / "a.json").read_bytes()) == _tracks(batch["reference"]["a.json"])


def test_a_killed_driver_leaves_whole_outputs_and_the_same_command_resumes(ray_address, batch, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                                     os.environ.get("PYTHONPATH")])))
    args = _cli_args(batch, out, "--engine", "ray", "--workers", "2", "--address", ray_address,
                     "--no-progress")
    driver = subprocess.Popen([sys.executable, "-m", "posetrack", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (out.is_dir() and any(p.suffix == ".json" for p in out.iterdir())):
            assert driver.poll() is None, "the driver ended before its first clip"
            assert time.monotonic() < deadline, "no clip finished in 5 minutes"
            time.sleep(0.2)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    written = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert 0 < len(written) < 3, written  # killed mid-batch
    for name in written:  # what is there is whole
        assert _tracks((out / name).read_bytes()) == _tracks(batch["reference"][name])
    # a worker killed while writing leaves its temporary file (named after its process id)
    gone = subprocess.Popen(["true"])
    gone.wait()
    missing = sorted(set(batch["reference"]) - written)[0]
    (out / f".{missing}.{gone.pid}-x1y2.posetrack-tmp.json").write_text('{"images": [')
    result = CliRunner().invoke(main, _cli_args(batch, out, "--engine", "ray", "--workers", "2",
                                                "--no-progress"))
    assert f"{3 - len(written)} done, {len(written)} skipped" in result.output, result.output
    _assert_complete(batch, out)


def test_an_output_folder_a_node_does_not_share_stops_the_batch(tmp_path):
    from posetrack.cluster import _probe_node

    out, elsewhere = tmp_path / "out", tmp_path / "node-local"
    out.mkdir(), elsewhere.mkdir()

    def shared(out_dir, probe, inputs):
        return [_probe_node(out_dir, probe, inputs)]

    def own_disk(out_dir, probe, inputs):  # a node that writes to its own disk
        return [_probe_node(str(elsewhere), probe, inputs)]

    check_shared_folder(out, [str(tmp_path)], shared)
    assert os.listdir(out) == []  # the probe is removed
    with pytest.raises(PosetrackError, match="not shared with the Ray node"):
        check_shared_folder(out, [str(tmp_path)], own_disk)
    with pytest.raises(PosetrackError, match="missing-clips: not found on the Ray node"):
        check_shared_folder(out, [str(tmp_path / "missing-clips")], shared)
    assert os.listdir(out) == []


def test_engine_settings_are_checked():
    with pytest.raises(ValueError, match="workers"):
        RayConfig(workers=0)
    with pytest.raises(ValueError, match="gpus_per_worker"):
        RayConfig(gpus_per_worker=0)
    with pytest.raises(ValueError, match="retries"):
        RayConfig(retries=-1)

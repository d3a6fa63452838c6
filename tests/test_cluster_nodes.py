"""posetrack batch --engine ray on a cluster of two Ray nodes simulated on this machine
(``ray.cluster_utils.Cluster``, one session for the module): the clips are spread over both
nodes, every node passes the shared-folder check, and the outputs are whole."""

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from posetrack.cluster import RayConfig, run_batch_ray  # noqa: E402
from posetrack.formats import read_posetrack  # noqa: E402
from posetrack.posenet import PoseNetConfig, SimpleBaseline  # noqa: E402
from posetrack.detection import DetectorConfig  # noqa: E402
from posetrack.flow import FlowConfig  # noqa: E402
from posetrack.run import ModelSpec, PoseConfig, RunSettings  # noqa: E402

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # for _loader_waiting_for_all

W, H, FRAMES = 160, 96, 4


def _loader_waiting_for_all(folder: str, workers: int):
    """Loads the models, then waits until every worker has: so no worker can take all the clips
    before the other is up (worker start-up times differ by seconds on a busy machine)."""
    def load(settings):
        from posetrack.run import load_models

        models = load_models(settings)
        Path(folder, f"up-{os.getpid()}").touch()
        deadline = time.monotonic() + 300
        while len(list(Path(folder).glob("up-*"))) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return models
    return load


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a second node, one logical core each, so two one-core workers must go to
    different nodes."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    cluster = cluster_utils.Cluster(initialize_head=True,
                                    head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, configure_logging=False)
    yield {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    ray.shutdown()
    cluster.shutdown()


def test_clips_are_spread_over_both_nodes(two_nodes, tmp_path):
    assert len(two_nodes) == 2
    clips, dets, out = tmp_path / "clips", tmp_path / "dets", tmp_path / "out"
    for folder in (clips, dets, out):
        folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d"):
        writer = cv2.VideoWriter(str(clips / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
        for k in range(FRAMES):
            writer.write(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        writer.release()
        (dets / f"{name}.json").write_text(json.dumps(
            [{"image_id": k, "category_id": 1, "bbox": [20 + 5 * k, 10, 30, 70], "score": 0.9}
             for k in range(FRAMES)]))
    torch.manual_seed(0)
    model = tmp_path / "tiny_res18_96x64.pth"
    torch.save(SimpleBaseline(PoseNetConfig(depth=18, input_size_hw=(96, 64))).state_dict(), model)
    settings = RunSettings(models=ModelSpec(pose_model=str(model), device="cpu"),
                           detection=DetectorConfig(detections=str(dets)),
                           flow=FlowConfig(method="dis"), pose=PoseConfig(flip_test=False))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    report = run_batch_ray(clips, out, settings, RayConfig(workers=2, cpus_per_worker=1),
                           progress=False, load=_loader_waiting_for_all(str(barrier), 2))
    assert sorted(s.clip for s in report.done) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert not report.failed
    assert set(report.placed.values()) == two_nodes  # both nodes tracked clips
    assert sorted(os.listdir(out)) == ["a.json", "b.json", "c.json", "d.json"]
    assert all(len(read_posetrack(out / f"{name}.json")) == FRAMES for name in "abcd")

"""The speed options of the pose stage give the same answers: channels-last memory order, network
batches in chunks, half precision (CUDA only), and the frame uploaded once per frame."""

import numpy as np
import pytest
import torch

from posetrack.errors import PosetrackError
from posetrack.frame import Detections
from posetrack.joints import COCO17
from posetrack.pose import (PoseEstimator, PoseEstimatorConfig, TorchBackend,
                            default_network_batch)
from posetrack.posenet import PoseNetConfig, SimpleBaseline
from posetrack.run import batched_estimate

INPUT_HW = (128, 96)
# Five people in a 360x640 frame, one partly outside it.
BOXES = np.array([[10, 20, 90, 200], [150, 40, 230, 300], [300, 10, 380, 180],
                  [420, 100, 520, 350], [560, 200, 700, 400]], np.float32)


def _peaky_net(seed=0) -> SimpleBaseline:
    """A random SimpleBaseline whose heatmaps have clear maxima (the released head initialisation
    gives near-flat maps, where float rounding alone could move an argmax)."""
    torch.manual_seed(seed)
    net = SimpleBaseline(PoseNetConfig(depth=18, input_size_hw=INPUT_HW))
    torch.nn.init.normal_(net.final_layer.weight, std=1.0)
    for module in net.deconv_layers.modules():
        if isinstance(module, torch.nn.ConvTranspose2d):
            torch.nn.init.kaiming_normal_(module.weight)
    return net.eval()


def _frame(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (45, 80, 3), dtype=np.uint8)  # coarse texture, upscaled
    return np.repeat(np.repeat(image, 8, axis=0), 8, axis=1)


def _estimator(**backend_options):
    backend = TorchBackend(_peaky_net(), device="cpu", **backend_options)
    return PoseEstimator(backend, COCO17, PoseEstimatorConfig(flip_test=True))


def test_channels_last_gives_the_same_heatmaps_and_keypoints():
    crops = torch.randn(6, 3, *INPUT_HW)
    plain = TorchBackend(_peaky_net(), device="cpu")
    nhwc = TorchBackend(_peaky_net(), device="cpu", channels_last=True)
    reference, fast = plain(crops), nhwc(crops)
    assert fast.dtype == torch.float32 and fast.shape == reference.shape
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-4 * float(reference.abs().max()))

    frame, detections = _frame(), Detections(BOXES, np.ones(len(BOXES), np.float32))
    a = _estimator()(frame, detections)
    b = _estimator(channels_last=True)(frame, detections)
    # same joints to a hundredth of a pixel (a quarter-pixel step can only flip on an exact tie)
    np.testing.assert_allclose(b.keypoints_xy, a.keypoints_xy, atol=0.01)
    np.testing.assert_allclose(b.keypoint_scores, a.keypoint_scores, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("max_batch", [1, 3, 10, 64])  # 1 crop per call, uneven chunks, all at once
def test_network_batch_in_chunks_gives_the_same_heatmaps(max_batch):
    crops = torch.randn(10, 3, *INPUT_HW)
    whole = TorchBackend(_peaky_net(), device="cpu")(crops)
    chunked = TorchBackend(_peaky_net(), device="cpu", max_batch=max_batch)(crops)
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-4 * float(whole.abs().max()))


@pytest.mark.parametrize("max_batch", [0, -1, 2.5])
def test_network_batch_must_be_positive(max_batch):
    with pytest.raises(PosetrackError, match="max_batch"):
        TorchBackend(_peaky_net(), device="cpu", max_batch=max_batch)


def test_default_network_batch_is_chunked_on_cpu_only():
    assert default_network_batch("cpu") >= 1
    assert default_network_batch("cuda") is None


def test_onnx_backend_chunks_a_dynamic_batch(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from posetrack.pose import OnnxBackend
    from posetrack.posenet import export_onnx

    net = _peaky_net()
    path = export_onnx(net, tmp_path / "net.onnx")
    crops = torch.randn(5, 3, *INPUT_HW)
    whole = OnnxBackend(path)(crops)
    chunked = OnnxBackend(path, max_batch=2)(crops)
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-4 * float(whole.abs().max()))
    assert OnnxBackend(path, max_batch=2)(crops[:0]).shape[0] == 0


class _Recorder:
    """An estimator that records what frame it is handed and delegates to a real one."""

    def __init__(self, estimator):
        self.estimator, self.images = estimator, []

    @property
    def device(self):
        return self.estimator.device

    def __call__(self, image, detections):
        self.images.append(image)
        return self.estimator(image, detections)


def test_batched_estimate_uploads_the_frame_once_and_agrees_with_one_batch():
    frame, detections = _frame(), Detections(BOXES, np.linspace(0.9, 0.5, len(BOXES)).astype(np.float32))
    whole = batched_estimate(_estimator(), 64)(frame, detections)
    recorder = _Recorder(_estimator())
    chunked = batched_estimate(recorder, 2)(frame, detections)
    assert len(recorder.images) == 3  # 2 + 2 + 1 boxes
    # every chunk got the same device copy of the frame, made once
    assert all(isinstance(image, torch.Tensor) for image in recorder.images)
    assert all(image is recorder.images[0] for image in recorder.images)
    np.testing.assert_allclose(chunked.keypoints_xy, whole.keypoints_xy, atol=0.01)
    np.testing.assert_array_equal(chunked.boxes_xyxy, whole.boxes_xyxy)
    np.testing.assert_array_equal(chunked.box_scores, whole.box_scores)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="half precision needs a CUDA GPU")
def test_half_precision_on_cuda_keeps_the_keypoints():
    frame, detections = _frame(), Detections(BOXES, np.ones(len(BOXES), np.float32))
    reference = PoseEstimator(TorchBackend(_peaky_net(), device="cuda"), COCO17)(frame, detections)
    for channels_last in (False, True):
        half = PoseEstimator(TorchBackend(_peaky_net(), device="cuda", half=True,
                                          channels_last=channels_last), COCO17)(frame, detections)
        # within one heatmap pixel (here 80/24 image pixels for the widest box) for 95% of joints
        error = np.linalg.norm(half.keypoints_xy - reference.keypoints_xy, axis=2)
        assert np.mean(error <= 4.0) >= 0.95, error


@pytest.mark.parametrize("n, plan", [
    (0, []),                                    # no crops: nothing to replay
    (1, [(1, 8)]),                              # one crop: the smallest graph
    (8, [(8, 8)]),                              # exactly a size
    (9, [(9, 16)]),                             # just over: the next size up
    (40, [(40, 64)]),                           # a crowd with flip test
    (128, [(128, 128)]),                        # the largest size
    (300, [(128, 128), (128, 128), (44, 64)]),  # beyond: chunks of the largest, then the rest
])
def test_graph_batch_plan(n, plan):
    from posetrack.pose import graph_batch_plan

    assert graph_batch_plan(n) == plan
    assert sum(count for count, _ in plan) == n


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "bf16"}, "bf16 precision needs a CUDA device"),
    ({"half": True}, "fp16 precision needs a CUDA device"),
    ({"precision": "int4"}, "precision must be one of fp32, fp16, bf16"),
    ({"graphs": True}, "CUDA graphs need a CUDA device"),
])
def test_cuda_only_settings_are_refused_on_a_cpu(kwargs, message):
    from posetrack.errors import PosetrackError

    with pytest.raises(PosetrackError, match=message):
        TorchBackend(_peaky_net(), device="cpu", **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 and CUDA graphs need a CUDA GPU")
@pytest.mark.parametrize("boxes", [1, 3, 150])  # one graph, padding, chunks of the largest graph
def test_cuda_graphs_and_bf16_keep_the_keypoints(boxes):
    rng = np.random.default_rng(boxes)
    corner = rng.uniform([0, 0], [200, 120], (boxes, 2))
    chosen = np.concatenate([corner, corner + rng.uniform(30, 80, (boxes, 2))], axis=1).astype(np.float32)
    frame, detections = _frame(), Detections(chosen, np.ones(boxes, np.float32))
    reference = PoseEstimator(TorchBackend(_peaky_net(), device="cuda"), COCO17)(frame, detections)
    graphed = TorchBackend(_peaky_net(), device="cuda", channels_last=True, graphs=True)
    for _ in range(2):  # captured on the first call, replayed on the second
        got = PoseEstimator(graphed, COCO17)(frame, detections)
        np.testing.assert_allclose(got.keypoints_xy, reference.keypoints_xy, atol=0.01)
    bf16 = PoseEstimator(TorchBackend(_peaky_net(), device="cuda", precision="bf16", graphs=True,
                                      channels_last=True), COCO17)(frame, detections)
    error = np.linalg.norm(bf16.keypoints_xy - reference.keypoints_xy, axis=2)
    assert np.mean(error <= 4.0) >= 0.95, error


@pytest.mark.parametrize("shear", [0.0, 1e-17, 0.05])  # axis-aligned, rounding-level, rotated
def test_sampling_grid_equals_affine_grid(shear):
    import torch.nn.functional as F

    from posetrack.pose import sampling_grid

    theta = np.array([[[0.4, shear, 0.1], [-shear, 0.7, -0.3]],
                      [[1.3, 0.0, -0.5], [0.0, 0.2, 0.9]]])
    expected = F.affine_grid(torch.as_tensor(theta, dtype=torch.float32), [2, 1, 16, 12],
                             align_corners=False)
    grid = sampling_grid(theta, (16, 12), "cpu")
    assert grid.shape == (2, 16, 12, 2) and grid.dtype == torch.float32
    torch.testing.assert_close(grid, expected, rtol=0, atol=1e-6)


def test_mirrored_batch_is_the_crops_then_their_mirror_images():
    from posetrack.pose import with_mirrored

    crops = torch.randn(3, 3, 8, 6)
    batch = with_mirrored(crops)
    torch.testing.assert_close(batch, torch.cat([crops, crops.flip(3)]), rtol=0, atol=0)
    assert with_mirrored(crops[:0]).shape == (0, 3, 8, 6)


def test_device_frames_uploads_each_frame_once_and_keeps_two():
    from posetrack.run import DeviceFrames

    upload = DeviceFrames("cpu")
    frames = [_frame(seed) for seed in range(3)]
    first = upload(frames[0])
    assert isinstance(first, torch.Tensor) and upload(frames[0]) is first
    second = upload(frames[1])
    assert upload(frames[0]) is first and upload(frames[1]) is second  # flow: k-1 and k
    upload(frames[2])
    assert upload(frames[1]) is second  # the two latest are kept
    assert upload(frames[0]) is not first  # the oldest was dropped: uploaded again
    np.testing.assert_array_equal(upload(frames[0]).numpy(), frames[0])


def test_stage_functions_on_a_cpu_give_flow_fields_and_the_estimator():
    from posetrack.run import Models, stage_functions

    class Flow:
        def __call__(self, prev, next_):
            raise AssertionError("the full-size flow must not be asked for")

        def field(self, prev, next_):
            return ("field", prev, next_)
    models = Models(estimator=_estimator(), flow=Flow(), detector=None, device="cpu")
    frames = [(k, _frame(k)) for k in range(3)]
    detections = Detections(BOXES, np.ones(len(BOXES), np.float32))
    inputs, estimate = stage_functions(models, 64, lambda indices, images: [detections] * len(images),
                                       frame_batch=2)
    prepared = list(inputs(frames))
    assert [p[0] for p in prepared] == [0, 1, 2] and prepared[0][3] is None
    assert prepared[2][3][0] == "field" and prepared[2][3][1] is frames[1][1]
    np.testing.assert_array_equal(estimate(_frame(), detections).keypoints_xy,
                                  models.estimator(_frame(), detections).keypoints_xy)

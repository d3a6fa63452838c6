"""int8 ONNX copies of the pose network (posenet.quantize_onnx, posetrack quantize-onnx)."""

import numpy as np
import pytest
import torch

from posetrack.errors import PosetrackError
from posetrack.frame import Detections
from posetrack.pose import OnnxBackend, calibration_crops, load_pose_estimator

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SIZE_HW = (64, 32)
BOXES = np.array([[20, 10, 80, 120], [90, 30, 150, 140], [5, 60, 60, 150]], np.float32)


def _frames(count=4, seed=0):
    """Smooth random frames with three boxes each (calibration input)."""
    import cv2

    rng = np.random.default_rng(seed)
    for _ in range(count):
        noise = rng.random((160, 200, 3)).astype(np.float32) * 255
        yield np.clip(cv2.GaussianBlur(noise, (0, 0), 3), 0, 255).astype(np.uint8), BOXES


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    from posetrack.posenet import PoseNetConfig, SimpleBaseline, export_onnx

    torch.manual_seed(0)
    model = SimpleBaseline(PoseNetConfig(depth=18, input_size_hw=SIZE_HW, joint_layout="posetrack17"))
    return export_onnx(model, tmp_path_factory.mktemp("float") / "float.onnx")


@pytest.fixture(scope="module")
def int8_model(float_model, tmp_path_factory):
    from posetrack.posenet import quantize_onnx

    out = tmp_path_factory.mktemp("int8") / "int8.onnx"
    return quantize_onnx(float_model, out, calibration_crops(_frames(), SIZE_HW, max_crops=16))


def test_calibration_crops_are_the_estimators_crops_and_stop_at_the_limit():
    crops = list(calibration_crops(_frames(2), SIZE_HW, max_crops=10))
    assert len(crops) == 10 and all(c.shape == (1, 3, *SIZE_HW) for c in crops)
    # each frame gives its 3 crops, then the same 3 mirrored
    np.testing.assert_array_equal(crops[3][0], crops[0][0][:, :, ::-1])
    unmirrored = list(calibration_crops(_frames(2), SIZE_HW, max_crops=100, mirrored=False))
    assert len(unmirrored) == 6
    assert list(calibration_crops([(next(_frames(1))[0], np.zeros((0, 4)))], SIZE_HW)) == []


def test_int8_model_is_quantised_and_keeps_the_metadata(int8_model):
    proto = onnx.load(str(int8_model))
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 20  # every convolution of a ResNet-18 with its head
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["posetrack.joint_layout"] == "posetrack17"
    assert meta["posetrack.quantization"].startswith("int8 static QDQ (per-channel weights)")
    assert OnnxBackend(int8_model).input_size_hw == SIZE_HW


def test_int8_heatmaps_follow_the_float_model(float_model, int8_model):
    """On crops it was not calibrated on, the int8 network's heatmaps stay close to the float
    network's (a quantisation error, not a different function)."""
    crops = torch.from_numpy(np.concatenate(list(calibration_crops(_frames(2, seed=5), SIZE_HW))))
    reference = OnnxBackend(float_model)(crops).numpy()
    quantised = OnnxBackend(int8_model)(crops).numpy()
    error = np.linalg.norm(quantised - reference) / np.linalg.norm(reference)
    assert error < 0.2, error
    # and the estimator runs it like any ONNX model, reading the layout from the file
    estimator = load_pose_estimator(int8_model, "cpu")
    poses = estimator(next(_frames(1, seed=5))[0], Detections(BOXES, np.ones(3, np.float32)))
    labelled = [0, 1, 2] + list(range(5, 17))  # PoseTrack leaves the ears (3, 4) unused
    assert poses.keypoints_xy.shape == (3, 17, 2) and np.isfinite(poses.keypoints_xy[:, labelled]).all()


def test_quantize_refuses_its_own_input_and_empty_calibration(float_model, tmp_path):
    from posetrack.posenet import quantize_onnx

    with pytest.raises(PosetrackError, match="would overwrite its float input"):
        quantize_onnx(float_model, float_model, calibration_crops(_frames(1), SIZE_HW))
    with pytest.raises(PosetrackError, match="at least one batch"):
        quantize_onnx(float_model, tmp_path / "x.onnx", [])
    assert not (tmp_path / "x.onnx").exists()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(PosetrackError, match="bad.onnx"):
        quantize_onnx(bad, tmp_path / "y.onnx", calibration_crops(_frames(1), SIZE_HW))


def test_old_opset_sample_model_quantises(shared_dir, tmp_path):
    """The assets' MobileNetV2 model is opset 8 with fixed batch 1: it is converted (batch norms
    folded, opset 13) and quantised; its joints stay near the float model's on a real frame."""
    import cv2

    from posetrack.posenet import quantize_onnx

    model = shared_dir / "assets" / "models" / "mobilenetv2_simplepose_coco17_256x192.onnx"
    if not model.is_file():
        pytest.skip(f"{model} not found")
    sample = shared_dir / "assets" / "posetrack18_sample" / "images" / "val" / "012834_mpii_test" / "000000.jpg"
    image = cv2.imread(str(sample))
    from posetrack.formats import read_posetrack

    gt = read_posetrack(shared_dir / "assets" / "posetrack18_sample" / "annotations" / "val" / "012834_mpii_test.json")
    boxes = gt.poses[0].boxes_xyxy
    out = quantize_onnx(model, tmp_path / "int8.onnx",
                        calibration_crops([(image, boxes)], (256, 192), max_crops=16))
    detections = Detections(boxes, np.ones(len(boxes), np.float32))
    reference = load_pose_estimator(model, "cpu", flip_test=False)(image, detections)
    quantised = load_pose_estimator(out, "cpu", flip_test=False)(image, detections)
    distance = np.linalg.norm(quantised.keypoints_xy - reference.keypoints_xy, axis=2)
    # 1920x1080 frame, people 200-400 px tall: most joints land on the same heatmap cell
    assert np.median(distance) < 8, np.median(distance)

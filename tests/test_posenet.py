"""The SimpleBaseline network: shapes, strict checkpoint loading in both layouts, ONNX export."""

import numpy as np
import pytest
import torch
import torchvision
from click.testing import CliRunner

from posetrack.cli import main
from posetrack.errors import PosetrackError
from posetrack.posenet import (PoseNetConfig, SimpleBaseline, checkpoint_layout, export_onnx,
                               infer_depth, load_posenet, read_checkpoint)

SMALL = (128, 96)  # a small input (multiple of 32) keeps the tests fast


def _model(num_joints=17, seed=0, layout="coco17"):
    """A resnet18 SimpleBaseline with random weights and non-trivial BN statistics."""
    torch.manual_seed(seed)
    model = SimpleBaseline(PoseNetConfig(depth=18, num_joints=num_joints, input_size_hw=SMALL,
                                         joint_layout=layout))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        model.final_layer.weight.normal_(std=0.05)
    return model.eval()


def _as_mmpose(state):
    out = {}
    for key, value in state.items():
        if key.startswith(("deconv_layers.", "final_layer.")):
            out["keypoint_head." + key] = value
        else:
            out["backbone." + key] = value
    return out


# How each layout / wrapper is written to disk, as the public files do it.
WRITERS = {
    "original plain": lambda sd: sd,
    "original state_dict wrapper": lambda sd: {"epoch": 140, "state_dict": sd, "perf": 0.7},
    "original DataParallel": lambda sd: {"model": {"module." + k: v for k, v in sd.items()}},
    "original without num_batches_tracked": lambda sd: {
        k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")},
    "mmpose": lambda sd: {"meta": {"epoch": 210, "mmpose_version": "0.8.0"},
                          "state_dict": _as_mmpose(sd)},
    "mmpose DataParallel": lambda sd: {"state_dict": {"module." + k: v
                                                      for k, v in _as_mmpose(sd).items()}},
    "mmpose 1.x": lambda sd: {"state_dict": {k.replace("keypoint_head.", "head."): v
                                             for k, v in _as_mmpose(sd).items()}},
}


def test_forward_shape_and_config():
    model = _model()
    out = model(torch.zeros(2, 3, *SMALL))
    assert out.shape == (2, 17, 32, 24)
    assert model.config.heatmap_size_hw == (32, 24)
    # the head is the paper's: 3 x (deconv 4x4 s2 p1 no bias, BN, ReLU) + 1x1 conv
    deconvs = [m for m in model.deconv_layers if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(deconvs) == 3
    assert all(d.out_channels == 256 and d.kernel_size == (4, 4) and d.stride == (2, 2)
               and d.padding == (1, 1) and d.output_padding == (0, 0) and d.bias is None
               for d in deconvs)
    assert model.final_layer.kernel_size == (1, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 20}, "depth must be one of"),
    ({"input_size_hw": (250, 192)}, "multiples of 32"),
    ({"input_size_hw": (256,)}, "multiples of 32"),
    ({"num_joints": 16}, "has 17 joints"),           # coco17 layout, 16 heatmaps
    ({"joint_layout": "mpii"}, "unknown joint layout"),
])
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(PosetrackError, match=message):
        PoseNetConfig(**kwargs)


@pytest.fixture(scope="module")
def source_model():
    return _model(seed=1)


@pytest.mark.parametrize("writer", list(WRITERS))
def test_strict_loading_of_each_layout(tmp_path, writer, source_model):
    source = source_model
    path = tmp_path / "res18_coco_128x96.pth"
    torch.save(WRITERS[writer](source.state_dict()), path)
    loaded = load_posenet(path, input_size_hw=SMALL)
    assert loaded.config == source.config  # depth 18 and 17 joints inferred from the weights
    for key, value in source.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randn(1, 3, 64, 64)  # fully convolutional: a small input is enough here
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x))


def test_layout_detection_and_unwrapping(tmp_path):
    sd = _model().state_dict()
    assert checkpoint_layout(sd) == "original"
    assert checkpoint_layout(_as_mmpose(sd)) == "mmpose"
    assert checkpoint_layout({"foo.weight": torch.zeros(1)}) is None
    path = tmp_path / "x.pth"
    torch.save({"model": {"state_dict": {"module.conv1.weight": torch.zeros(1)}}}, path)
    assert list(read_checkpoint(path)) == ["conv1.weight"]


def test_names_in_the_file_name_set_input_size_and_joints(tmp_path):
    path = tmp_path / "res18_posetrack18_384x288-0123abcd_20201028.pth"
    torch.save(_model(layout="posetrack17").state_dict(), path)
    config = load_posenet(path).config
    assert config.input_size_hw == (384, 288) and config.joint_layout == "posetrack17"
    config = load_posenet(path, input_size_hw=(256, 192), joint_layout="coco17").config
    assert config.input_size_hw == (256, 192) and config.joint_layout == "coco17"


def test_infer_depth_of_every_resnet():
    with torch.device("meta"):
        for depth in (18, 34, 50, 101, 152):
            resnet = getattr(torchvision.models, f"resnet{depth}")()
            assert infer_depth(resnet.state_dict()) == depth
    assert infer_depth({"conv1.weight": None}) is None


def test_wrong_depth_lists_missing_keys(tmp_path):
    path = tmp_path / "res18.pth"
    torch.save(_model().state_dict(), path)
    with pytest.raises(PosetrackError) as err:
        load_posenet(path, depth=34)
    text = str(err.value)
    assert str(path) in text and "ResNet-34" in text
    assert "missing key(s): layer1.2.conv1.weight" in text
    assert "80 missing key(s)" in text  # 1 + 2 + 4 + 1 extra basic blocks, 10..15 keys each
    with pytest.raises(PosetrackError, match="shape mismatch"):  # bottlenecks are wider
        load_posenet(path, depth=50)


def test_wrong_joint_count_and_extra_keys_are_listed(tmp_path):
    sd = _as_mmpose(_model().state_dict())
    sd["keypoint_head.final_layer.weight"] = sd["keypoint_head.final_layer.weight"][:16]
    sd["keypoint_head.final_layer.bias"] = sd["keypoint_head.final_layer.bias"][:16]
    sd["keypoint_head.extra_conv.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(PosetrackError) as err:
        load_posenet(path, num_joints=17)
    text = str(err.value)
    assert "mmpose layout" in text and str(path) in text
    assert "1 unexpected key(s): keypoint_head.extra_conv.weight" in text
    assert "2 shape mismatch(es): final_layer.weight file (16, 256, 1, 1) vs model (17, 256, 1, 1)" in text
    assert "missing" not in text
    # inferred from the file, 16 joints fit no known joint layout
    with pytest.raises(PosetrackError, match="coco17 has 17 joints, the network 16"):
        load_posenet(path)


@pytest.mark.parametrize("content, message", [
    ({"foo.weight": torch.zeros(2)}, "not a SimpleBaseline checkpoint"),
    ({"epoch": 3, "optimizer": {}}, "not a state dict"),
    ({}, "holds no state dict"),
    ([1, 2, 3], "holds no state dict"),
])
def test_not_a_checkpoint(tmp_path, content, message):
    path = tmp_path / "junk.pth"
    torch.save(content, path)
    with pytest.raises(PosetrackError, match=message):
        load_posenet(path)


def test_unreadable_and_missing_files(tmp_path):
    path = tmp_path / "text.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(PosetrackError, match="not a readable torch checkpoint") as err:
        load_posenet(path)
    assert "weights_only" not in str(err.value)  # torch's hint to run arbitrary code: not given
    truncated = tmp_path / "truncated.pth"
    torch.save(_model().state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(PosetrackError, match="truncated.pth: not a readable torch checkpoint"):
        load_posenet(truncated)
    with pytest.raises(PosetrackError, match="not found"):
        load_posenet(tmp_path / "absent.pth")


# ---------------------------------------------------------------------------------------------
# ONNX


@pytest.mark.parametrize("batch_size", [None, 2])
def test_onnx_export_matches_torch(tmp_path, batch_size):
    ort = pytest.importorskip("onnxruntime")
    model = _model(seed=3)
    path = export_onnx(model, tmp_path / "m.onnx", batch_size=batch_size)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    assert shape[1:] == [3, *SMALL]
    assert shape[0] == 2 if batch_size else isinstance(shape[0], str)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["posetrack.joint_layout"] == "coco17" and meta["posetrack.input_size_hw"] == "128x96"
    x = torch.randn(2, 3, *SMALL)
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == (2, 17, 32, 24)
    assert np.abs(expected).max() > 1e-2  # the comparison is not between two near-zero maps
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def test_export_onnx_command(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    checkpoint = tmp_path / "res18_posetrack18.pth"
    torch.save({"state_dict": _as_mmpose(_model(layout="posetrack17").state_dict())}, checkpoint)
    out = tmp_path / "out" / "model.onnx"
    result = CliRunner().invoke(main, ["export-onnx", str(checkpoint), "--out", str(out),
                                       "--input-size", "128x96", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "ResNet-18" in result.output and "posetrack17" in result.output
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 128, 96]
    assert session.get_modelmeta().custom_metadata_map["posetrack.joint_layout"] == "posetrack17"


@pytest.mark.parametrize("args, message", [
    (["--input-size", "256"], "expected HxW"),
    (["--batch", "zero"], "expected 'dynamic' or a positive integer"),
])
def test_export_onnx_command_rejects_bad_options(tmp_path, args, message):
    checkpoint = tmp_path / "m.pth"
    torch.save(_model().state_dict(), checkpoint)
    result = CliRunner().invoke(main, ["export-onnx", str(checkpoint), "--out",
                                       str(tmp_path / "m.onnx"), *args])
    assert result.exit_code != 0 and message in result.output


def test_export_onnx_command_bad_checkpoint_is_one_line(tmp_path):
    checkpoint = tmp_path / "m.pth"
    torch.save({"foo.weight": torch.zeros(1)}, checkpoint)
    result = CliRunner().invoke(main, ["export-onnx", str(checkpoint), "--out",
                                       str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert "not a SimpleBaseline checkpoint" in result.output and "Traceback" not in result.output


MMPOSE_CONFIG = """
dataset_type = '{dataset}'
data = dict(train=dict(type=dataset_type, ann_file='annotations/train.json'))
"""


@pytest.mark.parametrize("name, dataset, expected", [
    # a renamed PoseTrack model is still a PoseTrack model: the checkpoint says so
    ("renamed.pth", "TopDownPoseTrack18Dataset", "posetrack17"),
    ("my_posetrack_finetune.pth", "TopDownCocoDataset", "coco17"),  # the file, not the name
    ("res50_posetrack18.pth", None, "posetrack17"),  # no meta: the name decides
    ("renamed.pth", None, "coco17"),
])
def test_joint_layout_comes_from_the_checkpoint(tmp_path, name, dataset, expected):
    layout = "posetrack17" if expected == "posetrack17" else "coco17"
    content = {"state_dict": _as_mmpose(_model(layout=layout).state_dict())}
    if dataset is not None:
        content["meta"] = {"config": MMPOSE_CONFIG.format(dataset=dataset), "mmpose_version": "0.8.0"}
    torch.save(content, tmp_path / name)
    assert load_posenet(tmp_path / name).config.joint_layout == expected
    assert load_posenet(tmp_path / name, joint_layout="coco17").config.joint_layout == "coco17"

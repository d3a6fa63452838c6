import cv2
import numpy as np
import pytest

from posetrack import flow as flow_module
from posetrack import weights
from posetrack.errors import PosetrackError
from posetrack.flow import DisConfig, DisFlow, NoFlow, RaftConfig, make_flow

# Joint-like points well inside a 240x320 frame (x, y): where the tracker samples the flow.
POINTS = np.array([[160, 60], [140, 90], [180, 90], [120, 130], [200, 130], [150, 170],
                   [170, 170], [145, 200], [175, 200], [60, 60], [260, 180]])


def _texture(height, width, seed=0, sigma=2.0):
    """Smoothed colour noise: texture at every point, no aliasing when downscaled."""
    noise = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32) * 255
    return np.clip(cv2.GaussianBlur(noise, (0, 0), sigma), 0, 255).astype(np.uint8)


def _shifted_pair(dx, dy, height=240, width=320, margin=20):
    """Two frames where every pixel of the first moves by (dx, dy) in the second."""
    big = _texture(height + 2 * margin, width + 2 * margin)
    prev = big[margin:margin + height, margin:margin + width]
    next_ = big[margin - dy:margin - dy + height, margin - dx:margin - dx + width]
    return np.ascontiguousarray(prev), np.ascontiguousarray(next_)


# ---------------------------------------------------------------------------------------------
# DIS


DIS_CASES = [(preset, scale) for preset in ("medium", "fast") for scale in (1.0, 0.5, 0.25)] + [
    # ultrafast is within 0.5 px only at full resolution: at scale 0.5 its error reaches ~1 px
    ("ultrafast", 1.0),
]


@pytest.mark.parametrize("preset, scale", DIS_CASES)
@pytest.mark.parametrize("dx, dy", [(5, -3), (-2, 4), (0, 0)])
def test_dis_recovers_a_translation_at_joint_points(preset, scale, dx, dy):
    prev, next_ = _shifted_pair(dx, dy)
    field = DisFlow(DisConfig(preset, scale))(prev, next_)
    assert field.shape == (240, 320, 2) and field.dtype == np.float32
    at_points = field[POINTS[:, 1], POINTS[:, 0]]
    error = np.abs(at_points - [dx, dy])
    assert error.max() < 0.5, (preset, scale, error.max())


def test_dis_flow_is_scaled_back_for_odd_sizes():
    # 237x311 at scale 0.5 works on 118x156: vectors must be multiplied by 311/156 and 237/118.
    prev, next_ = _shifted_pair(6, 4, height=237, width=311)
    field = DisFlow(DisConfig("medium", 0.5))(prev, next_)
    assert field.shape == (237, 311, 2)
    interior = field[40:-40, 40:-40].reshape(-1, 2)
    assert np.allclose(np.median(interior, axis=0), [6, 4], atol=0.2)


def test_dis_direction_is_prev_to_next():
    prev, next_ = _shifted_pair(5, -3)
    backward = DisFlow()(next_, prev)
    assert np.allclose(np.median(backward[40:-40, 40:-40].reshape(-1, 2), axis=0), [-5, 3], atol=0.3)


@pytest.mark.parametrize("kwargs, message", [
    ({"preset": "slow"}, "preset must be one of"),
    ({"scale": 0.0}, r"scale must be a number in \(0, 1\]"),
    ({"scale": 1.5}, r"scale must be a number in \(0, 1\]"),
])
def test_dis_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DisConfig(**kwargs)


def test_frames_of_different_size_are_rejected():
    with pytest.raises(ValueError, match="differ in size"):
        DisFlow()(_texture(40, 50), _texture(40, 60))
    with pytest.raises(ValueError, match="uint8"):
        NoFlow()(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.float32))


def test_no_flow_is_zero():
    field = NoFlow()(_texture(30, 40), _texture(30, 40, seed=1))
    assert field.shape == (30, 40, 2) and field.dtype == np.float32 and not field.any()


# ---------------------------------------------------------------------------------------------
# RAFT (random weights: shapes, scaling and padding only)

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def raft_small():
    torch.manual_seed(0)
    return flow_module.RaftFlow("small", None, RaftConfig(scale=1.0, num_flow_updates=2))


@pytest.mark.parametrize("height, width", [(64, 96), (67, 101), (130, 75)])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_raft_output_shape_for_odd_sizes(height, width, scale):
    torch.manual_seed(0)
    estimator = flow_module.RaftFlow("small", None, RaftConfig(scale=scale, num_flow_updates=2))
    field = estimator(_texture(height, width), _texture(height, width, seed=1))
    assert field.shape == (height, width, 2) and field.dtype == np.float32
    assert np.isfinite(field).all()


def test_raft_final_flow_equals_torchvisions_last_iteration(raft_small):
    torch.manual_seed(1)
    a, b = (torch.rand(1, 3, 128, 136) * 2 - 1 for _ in range(2))
    with torch.inference_mode():
        expected = raft_small.model(a, b, num_flow_updates=3)[-1]
        got = flow_module.final_raft_flow(raft_small.model, a, b, 3)
    assert torch.allclose(got, expected, atol=1e-5)


def _fake_raft(monkeypatch, value=(1.0, 2.0)):
    """Replace the network by a constant flow inside the real image and a huge one in the padding;
    record the padded input size."""
    seen = {}

    def fake(model, image1, image2, num_flow_updates):
        seen["shape"] = tuple(image1.shape)
        seen["updates"] = num_flow_updates
        return torch.full((1, 2) + tuple(image1.shape[-2:]), 1e6)

    def fake_with_content(model, image1, image2, num_flow_updates):
        out = fake(model, image1, image2, num_flow_updates)
        h, w = seen["size"]
        out[:, 0, :h, :w], out[:, 1, :h, :w] = value
        return out

    monkeypatch.setattr(flow_module, "final_raft_flow", fake_with_content)
    return seen


@pytest.mark.parametrize("height, width, scale, small, padded", [
    (67, 101, 1.0, (67, 101), (128, 128)),      # tiny: padded up to RAFT's 128 minimum
    (250, 333, 1.0, (250, 333), (256, 336)),    # padded to multiples of 8
    (250, 333, 0.5, (125, 166), (128, 168)),    # processing scale, then padding
])
def test_raft_padding_and_scaling(monkeypatch, raft_small, height, width, scale, small, padded):
    seen = _fake_raft(monkeypatch, value=(1.0, 2.0))
    seen["size"] = small
    estimator = flow_module.RaftFlow.__new__(flow_module.RaftFlow)
    estimator.__dict__.update(raft_small.__dict__, config=RaftConfig(scale=scale, num_flow_updates=5))
    field = estimator(_texture(height, width), _texture(height, width, seed=1))
    assert seen["shape"] == (1, 3) + padded and seen["updates"] == 5
    assert field.shape == (height, width, 2)
    # the padding's values never leak in; vectors grow by the size ratio
    assert np.allclose(field[..., 0], width / small[1], atol=1e-4)
    assert np.allclose(field[..., 1], 2.0 * height / small[0], atol=1e-4)


def test_raft_loads_a_state_dict_strictly(tmp_path, raft_small):
    state = {f"module.{k}": v for k, v in raft_small.model.state_dict().items()}  # DataParallel names
    path = tmp_path / "raft.pth"
    torch.save(state, path)
    loaded = flow_module.RaftFlow("small", str(path), RaftConfig(num_flow_updates=2))
    for key, value in raft_small.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


def test_raft_wrong_checkpoint_lists_the_problems(tmp_path, raft_small):
    state = dict(raft_small.model.state_dict())
    missing = next(iter(state))
    del state[missing]
    state["bogus.weight"] = torch.zeros(1)
    reshaped = next(k for k, v in state.items() if v.ndim == 4)
    state[reshaped] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "raft.pth"
    torch.save(state, path)
    with pytest.raises(PosetrackError) as err:
        flow_module.RaftFlow("small", str(path))
    text = str(err.value)
    assert f"missing keys 1: {missing}" in text and "unexpected keys 1: bogus.weight" in text
    assert f"{reshaped} (1, 1, 1, 1) vs" in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_raft_half_on_gpu_matches_float():
    torch.manual_seed(0)
    prev, next_ = _shifted_pair(5, -3, height=256, width=320)
    full = flow_module.RaftFlow("small", None, RaftConfig(half=False), device="cuda")
    half = flow_module.RaftFlow("small", None, RaftConfig(half=True), device="cuda")
    half.model.load_state_dict(full.model.state_dict())
    a, b = full(prev, next_), half(prev, next_)
    assert a.shape == b.shape == (256, 320, 2)
    assert np.abs(a - b).mean() < 0.1 * max(1.0, np.abs(a).mean())


# ---------------------------------------------------------------------------------------------
# Factory


def test_make_flow_builds_each_method(monkeypatch, tmp_path):
    assert isinstance(make_flow("dis"), DisFlow)
    assert make_flow("dis", scale=0.25).config.scale == 0.25
    assert isinstance(make_flow("none"), NoFlow)
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    with pytest.raises(PosetrackError, match="raft_small_C_T_V2-01064c6d.pth"):
        make_flow("raft-small", weights_dir=tmp_path)  # the published weights, not cached here


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "raft"}, "unknown flow method 'raft'; did you mean"),
    ({"name": "dis", "weights": "x.pt"}, "takes no weights"),
    ({"name": "dis", "scale": 2.0}, "bad flow setting: scale must be a number in"),
])
def test_make_flow_errors(kwargs, message):
    with pytest.raises(PosetrackError, match=message):
        make_flow(**kwargs)


def test_raft_takes_device_tensors_and_prepares_each_frame_once(monkeypatch, raft_small):
    """A video's frame k is next in one call and prev in the following one: with tensor frames its
    network input is made once; the flow equals the numpy path's."""
    torch = pytest.importorskip("torch")
    estimator = flow_module.RaftFlow.__new__(flow_module.RaftFlow)
    estimator.__dict__.update(raft_small.__dict__, config=RaftConfig(scale=0.5, num_flow_updates=2))
    estimator._prepared = (None, None)
    frames = [_texture(96, 128, seed=s) for s in range(3)]
    tensors = [torch.from_numpy(f) for f in frames]
    prepared = []
    original = flow_module.RaftFlow._network_input

    def counting(self, image, small_hw):
        out = original(self, image, small_hw)
        prepared.append(out)
        return out
    monkeypatch.setattr(flow_module.RaftFlow, "_network_input", counting)
    first = estimator(tensors[0], tensors[1])
    second = estimator(tensors[1], tensors[2])
    assert prepared[2] is prepared[1]  # frame 1's input reused, not rebuilt
    np.testing.assert_allclose(first, estimator(frames[0], frames[1]), atol=1e-5)
    np.testing.assert_allclose(second, estimator(frames[1], frames[2]), atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        estimator(tensors[0].float(), tensors[1])


# ---------------------------------------------------------------------------------------------
# Flow fields: kept as computed, read at the joints


def _smooth_field(height, width, seed=0, sigma=2.0):
    """A smooth random (h, w, 2) field (a few pixels of motion varying over a few field pixels)."""
    noise = np.random.default_rng(seed).normal(0, 4, (height, width, 2)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), sigma)


def test_sampling_a_small_field_equals_sampling_its_full_size_copy_at_pixels():
    small = _smooth_field(30, 40)
    field = flow_module.HostFlowField(small, (240, 320))
    full = field.dense()
    assert full.shape == (240, 320, 2)
    rng = np.random.default_rng(1)
    # whole pixels, including the border and beyond it (clamped)
    points = np.stack([rng.integers(-5, 325, 200), rng.integers(-5, 245, 200)], axis=1)
    inside = np.clip(points, 0, [319, 239])
    np.testing.assert_allclose(field.displacements(points.astype(np.float32)),
                               full[inside[:, 1], inside[:, 0]], atol=1e-3)


def test_sampled_field_moves_points_like_the_full_size_field_and_keeps_nan():
    from posetrack.geometry import propagate_points

    field = flow_module.HostFlowField(_smooth_field(60, 80, sigma=4.0), (240, 320))
    rng = np.random.default_rng(2)
    points = rng.uniform([0, 0], [319, 239], (5, 17, 2)).astype(np.float32)
    points[1, 3] = np.nan
    moved_small = propagate_points(points, field)
    moved_full = propagate_points(points, field.dense())
    assert moved_small.shape == (5, 17, 2) and np.isnan(moved_small[1, 3]).all()
    # between pixel centres, bilinear of a bilinear upsampling differs from bilinear of the
    # small field only by the field's curvature: a small fraction of a pixel here
    assert np.nanmax(np.abs(moved_small - moved_full)) < 0.05


def test_dis_field_stays_at_its_processing_scale_and_recovers_the_motion():
    prev, next_ = _shifted_pair(5, -3)
    field = DisFlow(DisConfig("medium", 0.5)).field(prev, next_)
    assert field.flow.shape == (120, 160, 2)  # never resized to the frame
    motion = field.displacements(POINTS.astype(np.float32))
    assert np.abs(motion - [5, -3]).max() < 0.5


def test_device_field_samples_like_the_host_rule_and_copies_only_the_points():
    torch = pytest.importorskip("torch")
    small = _smooth_field(30, 40, seed=3)
    host = flow_module.HostFlowField(small, (240, 320))
    device = flow_module.DeviceFlowField(torch.from_numpy(small).permute(2, 0, 1), (240, 320))
    rng = np.random.default_rng(4)
    points = rng.uniform([-10, -10], [330, 250], (7, 17, 2)).astype(np.float32)
    points[2, 5] = np.nan
    got = device.displacements(points)
    assert got.shape == (7, 17, 2) and np.isnan(got[2, 5]).all()
    np.testing.assert_allclose(got, host.displacements(points), atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(device.dense(), host.dense(), atol=1e-3)
    assert device.displacements(np.zeros((0, 17, 2), np.float32)).shape == (0, 17, 2)


def test_raft_fields_of_a_chunk_equal_pair_by_pair_flows(raft_small):
    """K + 1 frames in one batch give the K flows of the pairs computed one by one."""
    frames = [_texture(96, 128, seed=s) for s in range(4)]
    chunk = raft_small.fields(frames)
    assert len(chunk) == 3
    for k, flow in enumerate(chunk):
        single = raft_small.field(frames[k], frames[k + 1])
        assert tuple(flow.shape) == tuple(single.flow.shape) == (2, 96, 128)
        np.testing.assert_allclose(flow.numpy(), single.flow.numpy(), atol=1e-3)
    assert raft_small.fields(frames[:1]) == []

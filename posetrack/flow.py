"""Optical flow between consecutive frames, one interface for every method::

    field = estimator.field(prev_bgr, next_bgr)   # kept as computed: small, on its device
    motion = field.displacements(points_xy)       # (..., 2) float32, frame pixels, on the host
    flow = estimator(prev_bgr, next_bgr)          # (H, W, 2) float32 full-size copy (display)

``flow[y, x] = (dx, dy)``: the pixel at (x, y) in ``prev`` moves to (x + dx, y + dy) in ``next``,
in pixels of the full frame. The tracker only needs the motion at about 17 joints per person, so
the pipeline asks for ``field``: the flow stays at the resolution it was computed at, on the device
it was computed on, and only the sampled displacements reach the host (a full-size 1080p field is
16.6 MB per frame; 20 people's joints are 2.7 kB).

Methods (``make_flow`` builds one by name):

* ``dis``: OpenCV's DIS (dense inverse search) on grayscale. Milliseconds on a CPU: the CPU
  default.
* ``raft-small`` / ``raft-large``: RAFT from torchvision. Far more accurate on large and
  non-rigid motion, but seconds per frame on a CPU: meant for a GPU.
* ``none``: zero flow (identity motion): tracking by pose position alone.

Every method computes at a processing *scale* (0.5: half width and height); the full-size copy
resizes the field back, multiplying the vectors by the size ratio, and sampling a field reads it
at the same positions without that copy (``geometry.sample_flow``). The pipeline samples the flow at joint positions
only, so fine detail matters little: half resolution costs a fraction of a pixel of accuracy at
joints and saves about 3/4 of the time; very small people (a few tens of pixels tall) are where a
lower scale starts to lose them.

OpenCV is imported when a flow is computed, torch only when a RAFT estimator is built (the
settings alone import neither, so the command line starts quickly).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .checks import same_setting, setting, validate
from .errors import PosetrackError
from .geometry import sample_flow

FLOW_METHODS = ("dis", "raft-small", "raft-large", "none")
DIS_PRESETS = ("ultrafast", "fast", "medium")  # cv2.DISOPTICAL_FLOW_PRESET_<NAME>
RAFT_ARCHS = ("small", "large")
# torchvision's RAFT refuses feature maps (1/8 of the input) smaller than 16 on a side: its
# correlation pyramid halves them three times. Smaller inputs are padded up to this.
_RAFT_MIN_SIDE = 128


class FlowEstimator(Protocol):
    """What the pipeline calls; see the module docstring."""

    def __call__(self, prev_bgr: np.ndarray, next_bgr: np.ndarray) -> np.ndarray: ...

    def field(self, prev_bgr, next_bgr): ...


class HostFlowField:
    """A flow field on the host at the resolution it was computed at.

    Args:
        flow: (h, w, 2) float32 displacement in the field's own pixels.
        frame_size_hw: (H, W) of the frames it describes.
    """

    def __init__(self, flow: np.ndarray, frame_size_hw: tuple[int, int]):
        self.flow = flow
        self.frame_size_hw = tuple(frame_size_hw)

    def displacements(self, points_xy: np.ndarray) -> np.ndarray:
        """(..., 2) frame pixels -> (..., 2) float32 motion in frame pixels (bilinear)."""
        return sample_flow(self.flow, points_xy, self.frame_size_hw)

    def dense(self) -> np.ndarray:
        """The (H, W, 2) full-size field (for display or export; the tracker never needs it)."""
        return _to_full_size(self.flow, *self.frame_size_hw)


class DeviceFlowField:
    """A flow field kept where it was computed (a torch tensor, e.g. on the GPU).

    ``displacements`` samples it there (``grid_sample``: bilinear, border values outside, the
    same rule as ``geometry.sample_flow``) and copies only the sampled vectors to the host.

    Args:
        flow: (2, h, w) float tensor in the field's own pixels (a view into a padded field is
            fine).
        frame_size_hw: (H, W) of the frames it describes.
    """

    def __init__(self, flow, frame_size_hw: tuple[int, int]):
        self.flow = flow
        self.frame_size_hw = tuple(frame_size_hw)

    def displacements(self, points_xy: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        points = np.asarray(points_xy, dtype=np.float32)
        flat = points.reshape(-1, 2)
        if len(flat) == 0:
            return np.zeros(points.shape, np.float32)
        (frame_h, frame_w), (h, w) = self.frame_size_hw, self.flow.shape[1:]
        # frame pixel x -> normalised (2x + 1) / W - 1, which align_corners=False puts at field
        # coordinate (x + 0.5) w / W - 0.5: the pixel-centre alignment of sample_flow
        grid = (np.nan_to_num(flat) * 2 + 1) / np.array([frame_w, frame_h], np.float32) - 1
        grid = torch.from_numpy(grid.astype(np.float32)).to(self.flow.device).view(1, 1, -1, 2)
        with torch.inference_mode():
            sampled = F.grid_sample(self.flow[None].float(), grid, mode="bilinear",
                                    padding_mode="border", align_corners=False)[0, :, 0]
            sampled = sampled * torch.tensor([[frame_w / w], [frame_h / h]], device=sampled.device)
            motion = sampled.t().cpu().numpy()  # the frame's one copy of the flow to the host
        motion[np.isnan(flat).any(axis=1)] = np.nan
        return motion.reshape(points.shape)

    def dense(self) -> np.ndarray:
        """The (H, W, 2) full-size field on the host (for display; a large copy)."""
        import torch
        import torch.nn.functional as F

        (frame_h, frame_w), (h, w) = self.frame_size_hw, self.flow.shape[1:]
        with torch.inference_mode():
            flow = self.flow[None].float()
            if (h, w) != (frame_h, frame_w):
                flow = F.interpolate(flow, size=(frame_h, frame_w), mode="bilinear",
                                     align_corners=False)
                flow = flow * torch.tensor([frame_w / w, frame_h / h],
                                           device=flow.device).view(1, 2, 1, 1)
            return flow[0].permute(1, 2, 0).cpu().numpy()


def _check_pair(prev, next_):
    """Both frames (H, W, 3) uint8 and the same size (numpy arrays, or torch tensors for RAFT)."""
    for name, image in (("prev", prev), ("next", next_)):
        if (image.ndim != 3 or image.shape[2] != 3
                or str(image.dtype).removeprefix("torch.") != "uint8"):
            raise ValueError(f"{name} must be an (H, W, 3) uint8 BGR image, got shape "
                             f"{tuple(image.shape)} dtype {image.dtype}")
    if tuple(prev.shape) != tuple(next_.shape):
        raise ValueError(f"the two frames differ in size: {tuple(prev.shape)} vs {tuple(next_.shape)}")


def _scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))


# ---------------------------------------------------------------------------------------------
# No flow


class NoFlow:
    """Zero motion everywhere: a track's joints stay where they were."""

    def __call__(self, prev_bgr: np.ndarray, next_bgr: np.ndarray) -> np.ndarray:
        return self.field(prev_bgr, next_bgr).dense()

    def field(self, prev_bgr, next_bgr) -> HostFlowField:
        _check_pair(prev_bgr, next_bgr)
        return HostFlowField(np.zeros((1, 1, 2), np.float32), prev_bgr.shape[:2])


# ---------------------------------------------------------------------------------------------
# OpenCV DIS


@dataclass(frozen=True)
class DisConfig:
    """Settings of :class:`DisFlow`."""

    preset: str = setting("medium", (
        "DIS preset. medium refines on finer scales with more "
        "iterations and follows limbs and weak texture best; at scale 0.5 on 720p it takes "
        "about 33 ms a frame on 2 CPU cores, fast 9 ms, ultrafast 6 ms (but errs up to "
        "~1 px on a plain translation)."), choices=DIS_PRESETS)
    scale: float = setting(0.5, (
        "Resolution the flow is computed at, as a fraction of the frame size. Lower: faster "
        "(time falls with the pixel count), but motion of small people and thin limbs blurs "
        "into the background."), low=0.0, high=1.0, low_open=True)

    def __post_init__(self):
        validate(self)


class DisFlow:
    """Dense flow with OpenCV's DIS on grayscale frames (CPU)."""

    def __init__(self, config: DisConfig = DisConfig()):
        self.config = config
        import cv2

        preset = getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{config.preset.upper()}")
        self._dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, prev_bgr: np.ndarray, next_bgr: np.ndarray) -> np.ndarray:
        return self.field(prev_bgr, next_bgr).dense()

    def field(self, prev_bgr: np.ndarray, next_bgr: np.ndarray) -> HostFlowField:
        """The flow at the processing scale, (h, w, 2) in its own pixels (no full-size copy)."""
        import cv2

        _check_pair(prev_bgr, next_bgr)
        height, width = prev_bgr.shape[:2]
        small_h, small_w = _scaled_size(height, width, self.config.scale)
        grays = []
        for image in (prev_bgr, next_bgr):
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            if (small_h, small_w) != (height, width):
                gray = cv2.resize(gray, (small_w, small_h), interpolation=cv2.INTER_AREA)
            grays.append(gray)
        return HostFlowField(self._dis.calc(grays[0], grays[1], None), (height, width))


def _to_full_size(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (h, w, 2) flow field to (height, width) and rescale its vectors to match."""
    import cv2

    small_h, small_w = flow.shape[:2]
    if (small_h, small_w) == (height, width):
        return np.ascontiguousarray(flow, dtype=np.float32)
    full = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    full[..., 0] *= width / small_w
    full[..., 1] *= height / small_h
    return full.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------
# RAFT (torchvision)


@dataclass(frozen=True)
class RaftConfig:
    """Settings of :class:`RaftFlow`."""

    scale: float = setting(0.5, (
        "Resolution RAFT runs at, as a fraction of the frame size. Lower: faster and lighter "
        "(cost grows with the pixel count), coarser motion of small people."),
        low=0.0, high=1.0, low_open=True)
    num_flow_updates: int = setting(12, (
        "RAFT's recurrent refinement steps (12 in RAFT's evaluation). Fewer: faster, rougher "
        "flow; past 12 little changes."), low=1)
    half: bool = setting(True, (
        "RAFT in half precision (autocast) on a GPU: about twice as fast, flow within a small "
        "fraction of a pixel. Ignored on a CPU."))

    def __post_init__(self):
        validate(self)


class RaftFlow:
    """RAFT (small or large) from torchvision.

    Frames may be numpy arrays or (H, W, 3) uint8 tensors already on the device (uploaded once
    per frame and shared with the pose stage). For a tensor frame, the input prepared for one
    call's ``next_bgr`` is kept and reused when the same tensor comes back as the next call's
    ``prev_bgr``, so in a video every frame is normalised and resized once, not twice (a tensor
    handed in is taken as unchanging; numpy frames, which callers often refill in place, are
    always prepared afresh).

    Args:
        arch: "small" or "large".
        weights: a known model name ("raft-small", "raft-large") or a path to a torchvision RAFT
            state dict; None builds random weights (tests, timing).
        config: processing scale, refinement steps, half precision.
        device: "cpu", "cuda", "cuda:1" or a torch.device.
        weights_dir: the weights cache folder for a known name.
    """

    def __init__(self, arch: str = "small", weights: str | Path | None = None,
                 config: RaftConfig = RaftConfig(), device="cpu", weights_dir=None):
        if arch not in RAFT_ARCHS:
            raise ValueError(f"arch must be one of {RAFT_ARCHS}, got {arch!r}")
        path = None
        if weights is not None:
            from .weights import resolve

            path = resolve(weights, weights_dir, kind="flow")  # fails at once when offline
        import torch
        from torchvision.models.optical_flow import raft_large, raft_small

        self.config = config
        self.device = torch.device(device)
        self.autocast = bool(config.half and self.device.type == "cuda")
        model = (raft_small if arch == "small" else raft_large)(weights=None, progress=False)
        if path is not None:
            _load_state_dict_strict(model, path)
        self.model = model.eval().to(self.device)

    _prepared = (None, None)  # (frame object, its network input) of the last call's next_bgr

    def __call__(self, prev_bgr, next_bgr) -> np.ndarray:
        return self.field(prev_bgr, next_bgr).dense()

    def field(self, prev_bgr, next_bgr) -> DeviceFlowField:
        """The flow at the processing scale, on the model's device (no copy to the host)."""
        height, width = prev_bgr.shape[:2]
        return DeviceFlowField(self.fields([prev_bgr, next_bgr])[0], (height, width))

    def fields(self, frames) -> list:
        """The flows between consecutive frames of ``frames`` (K + 1 frames -> K flows), as
        (2, h, w) float32 tensors at the processing scale, on the model's device.

        All K pairs go through the network as one batch, and each frame is prepared (uploaded,
        normalised, resized) once although it belongs to two pairs.
        """
        import torch

        frames = list(frames)
        if len(frames) < 2:
            return []
        for prev, next_ in zip(frames, frames[1:]):
            _check_pair(prev, next_)
        height, width = frames[0].shape[:2]
        small_h, small_w = _scaled_size(height, width, self.config.scale)
        with torch.inference_mode():
            prepared = [self._network_input(frame, (small_h, small_w)) for frame in frames]
            last = frames[-1]
            self._prepared = (last, prepared[-1]) if isinstance(last, torch.Tensor) else (None, None)
            first, second = torch.cat(prepared[:-1]), torch.cat(prepared[1:])
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.autocast):
                flow = final_raft_flow(self.model, first, second, self.config.num_flow_updates)
            flow = flow[:, :, :small_h, :small_w].float()
        return list(flow)

    def _network_input(self, image_bgr, small_hw):
        """(H, W, 3) uint8 BGR -> (1, 3, h', w') RGB in [-1, 1] at the processing size, padded."""
        import torch
        import torch.nn.functional as F

        frame, prepared = self._prepared
        if frame is image_bgr and isinstance(frame, torch.Tensor):
            return prepared
        small_h, small_w = small_hw
        pad_h = max(_RAFT_MIN_SIDE, -(-small_h // 8) * 8) - small_h
        pad_w = max(_RAFT_MIN_SIDE, -(-small_w // 8) * 8) - small_w
        tensor = image_bgr if isinstance(image_bgr, torch.Tensor) else torch.from_numpy(
            np.ascontiguousarray(image_bgr))
        tensor = tensor.to(self.device, non_blocking=True)
        # BGR uint8 (H, W, 3) -> RGB float (1, 3, H, W) in [-1, 1], as RAFT was trained.
        tensor = tensor.flip(-1).permute(2, 0, 1).unsqueeze(0).float().div_(127.5).sub_(1.0)
        if (small_h, small_w) != tuple(tensor.shape[2:]):
            tensor = F.interpolate(tensor, size=(small_h, small_w), mode="bilinear",
                                   align_corners=False, antialias=True)
        if pad_h or pad_w:  # pad right and bottom, so the flow of pixel (x, y) stays at (x, y)
            tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode="replicate")
        return tensor


def final_raft_flow(model, image1, image2, num_flow_updates: int = 12):
    """The flow of a torchvision RAFT model after its last refinement step, (N, 2, H, W).

    Does what ``model(image1, image2, num_flow_updates)[-1]`` gives, but upsamples only the final
    estimate instead of every step's (torchvision returns all of them, for training), which saves
    the mask prediction and convex upsampling of the other steps and their full-size copies.
    Inputs: (N, 3, H, W) in [-1, 1], H and W multiples of 8.
    """
    import torch
    import torch.nn.functional as F
    from torchvision.models.optical_flow._utils import make_coords_grid, upsample_flow

    batch, _, height, width = image1.shape
    if height % 8 or width % 8:
        raise ValueError(f"RAFT needs sides that are multiples of 8, got {height}x{width}")
    features = model.feature_encoder(torch.cat([image1, image2], dim=0))
    features1, features2 = torch.chunk(features, chunks=2, dim=0)
    model.corr_block.build_pyramid(features1, features2)
    context = model.context_encoder(image1)
    hidden_size = model.update_block.hidden_state_size
    hidden, context = torch.split(context, [hidden_size, context.shape[1] - hidden_size], dim=1)
    hidden, context = torch.tanh(hidden), F.relu(context)
    coords0 = make_coords_grid(batch, height // 8, width // 8).to(features1.device)
    coords1 = coords0.clone()
    for _ in range(num_flow_updates):
        correlation = model.corr_block.index_pyramid(centroids_coords=coords1)
        hidden, delta = model.update_block(hidden, context, correlation, coords1 - coords0)
        coords1 = coords1 + delta
    up_mask = None if model.mask_predictor is None else model.mask_predictor(hidden)
    return upsample_flow(flow=coords1 - coords0, up_mask=up_mask)


def _load_state_dict_strict(model, path: Path) -> None:
    """Load a RAFT state dict; any missing, unexpected or misshapen key is an error naming them."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad file; name the file
        raise PosetrackError(f"{path}: cannot read it as a torch checkpoint "
                             f"({type(err).__name__}: {err})") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PosetrackError(f"{path}: expected a state dict, got a {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
                  for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        def show(items):
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
        problems = [f"{label} {len(items)}: {show(items)}" for label, items in
                    (("missing keys", missing), ("unexpected keys", unexpected),
                     ("shape mismatches (file vs model)", mismatched)) if items]
        raise PosetrackError(f"{path}: not a checkpoint of this RAFT model; " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


# ---------------------------------------------------------------------------------------------
# Factory


@dataclass(frozen=True)
class FlowConfig:
    """Settings of the flow stage (the command line's and YAML's ``flow`` section): which
    method, at which resolution, and each method's own speed/accuracy setting."""

    method: str = setting("auto", (
        "Optical flow that moves each track's joints into the next frame. raft-small / "
        "raft-large: most accurate on fast motion, need a GPU to be quick; dis: OpenCV on the "
        "CPU, fast; none: joints stay put (tracking by pose alone). auto: raft-small on a GPU, "
        "dis on a CPU."), choices=("auto",) + FLOW_METHODS, option="flow")
    scale: float = setting(0.5, (
        "Resolution the flow is computed at, as a fraction of the frame (only joint positions "
        "need it). Lower: faster (time falls with the pixel count), small people's and thin "
        "limbs' motion blurs into the background; DIS at 0.5 on 720p: 20 ms a frame against 70 "
        "at 1."), low=0.0, high=1.0, low_open=True, option="flow-scale")
    dis_preset: str = same_setting(DisConfig, "preset")
    raft_iterations: int = same_setting(RaftConfig, "num_flow_updates")
    raft_half: bool = same_setting(RaftConfig, "half")

    def __post_init__(self):
        validate(self)


def make_flow(name: str = "dis", device="cpu", scale: float | None = None,
              weights: str | Path | None = None, weights_dir=None, *, dis_preset: str = "medium",
              raft_iterations: int = 12, raft_half: bool = True) -> FlowEstimator:
    """Build a flow estimator by method name.

    Args:
        name: "dis", "raft-small", "raft-large" or "none".
        device: for RAFT: "cpu", "cuda", ... (DIS always runs on the CPU).
        scale: processing scale in (0, 1]; None: the method's default (0.5).
        weights: RAFT weights (a known name or a file); None: the published weights of that
            RAFT ("raft-small" / "raft-large"), downloaded on first use.
        weights_dir: the weights cache folder.
        dis_preset, raft_iterations, raft_half: see :class:`FlowConfig`.
    """
    if name not in FLOW_METHODS:
        close = difflib.get_close_matches(str(name), FLOW_METHODS, n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PosetrackError(f"unknown flow method {name!r}{hint} (choose from {', '.join(FLOW_METHODS)})")
    if weights is not None and not name.startswith("raft-"):
        raise PosetrackError(f"flow method {name!r} takes no weights (got {weights!r})")
    scale_kw = {} if scale is None else {"scale": scale}
    try:
        if name == "dis":
            return DisFlow(DisConfig(preset=dis_preset, **scale_kw))
        if name == "none":
            return NoFlow()
        arch = name.removeprefix("raft-")
        config = RaftConfig(num_flow_updates=raft_iterations, half=raft_half, **scale_kw)
        return RaftFlow(arch, weights if weights is not None else name, config, device, weights_dir)
    except ValueError as err:
        raise PosetrackError(f"bad flow setting: {err}") from None


def flow_from_config(config: FlowConfig, device: str = "cpu",
                     weights_dir=None) -> FlowEstimator | None:
    """The flow estimator ``config`` asks for on ``device`` (a resolved device, not "auto");
    None for method "none" (the pipeline then assumes no motion)."""
    name = config.method if config.method != "auto" else ("dis" if device == "cpu" else "raft-small")
    if name == "none":
        return None
    return make_flow(name, device=device, scale=config.scale, weights_dir=weights_dir,
                     dis_preset=config.dis_preset, raft_iterations=config.raft_iterations,
                     raft_half=config.raft_half)

"""The pose stage: person boxes of one frame -> 17 keypoints per person (top-down).

``PoseEstimator(image, detections) -> Poses`` does, for all boxes of the frame at once:

1. centre/scale and the crop affine per box (:mod:`posetrack.transforms`, numpy);
2. cuts every crop on the backend's device in ONE ``affine_grid``/``grid_sample`` call (bilinear,
   zeros outside the image, as OpenCV's ``warpAffine`` in the original), converts BGR to RGB and
   normalises with the ImageNet mean/std;
3. runs the network once on the batch (the mirrored crops appended when flip test is on);
4. merges the flipped heatmaps, decodes argmax + quarter-pixel shift on the device, and maps the
   joints back to image pixels through the inverse heatmap affine.

Two backends share steps 1, 2 and 4: :class:`TorchBackend` (any torch module, normally
:class:`posetrack.posenet.SimpleBaseline`) and :class:`OnnxBackend` (any exported top-down
heatmap model with input (N, 3, H, W) and output (N, J, H/4, W/4)). :func:`load_pose_estimator`
builds either from a file or a registered weights name.

Output is always in the POSETRACK17 layout: a COCO-17 model's joints go through
:func:`posetrack.joints.coco_to_posetrack`.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import transforms
from .errors import PosetrackError
from .frame import NO_TRACK, Detections, Poses
from .joints import (COCO17, LAYOUTS, POSETRACK17, UNTRAINED_IN_POSETRACK, JointLayout,
                     coco_to_posetrack)

log = logging.getLogger(__name__)

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar")
# Crops per network call on a CPU. Larger batches spill the activations out of the caches: on 2
# cores, ResNet-18/50 at 256x192 cost 1.3-1.6x more per crop at batch 48 than at batch 8-16
# (scripts/benchmark.py). A GPU takes the whole frame's batch in one call.
CPU_NETWORK_BATCH = 16


def default_network_batch(device) -> int | None:
    """Crops per network call: ``CPU_NETWORK_BATCH`` on a CPU, all of them (None) on a GPU."""
    return CPU_NETWORK_BATCH if torch.device(device).type == "cpu" else None


# ---------------------------------------------------------------------------------------------
# Crops and decoding on the device (torch twins of the numpy reference in transforms.py)


def image_to_tensor(image, device) -> torch.Tensor:
    """A frame as a (H, W, 3) uint8 BGR tensor on ``device``.

    Args:
        image: (H, W, 3) uint8 BGR, either a numpy array (as ``cv2.imread`` / ``VideoCapture``
            give it) or a torch tensor (already uploaded, on any device).
    """
    if isinstance(image, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(image))
    elif isinstance(image, torch.Tensor):
        tensor = image
    else:
        raise TypeError(f"image must be a numpy array or a torch tensor, got {type(image).__name__}")
    if tensor.dtype != torch.uint8 or tensor.ndim != 3 or tensor.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 BGR, got {tuple(tensor.shape)} "
                         f"{str(tensor.dtype).replace('torch.', '')}")
    return tensor.to(device, non_blocking=True)


def crop_boxes(image_bgr: torch.Tensor, matrices: np.ndarray, crop_size_hw: tuple[int, int]) -> torch.Tensor:
    """Cut affine crops from one frame, normalised for an ImageNet-trained network.

    Args:
        image_bgr: (H, W, 3) uint8 BGR tensor; the crops are cut on its device.
        matrices: (N, 2, 3) image -> crop pixel affines (``transforms.affine_matrices``).
        crop_size_hw: (h, w) of the crops.

    Returns:
        (N, 3, h, w) float32 RGB, ``(value / 255 - mean) / std``; pixels outside the image count
        as black, as ``cv2.warpAffine`` with a constant border gives them.
    """
    device = image_bgr.device
    n, (h, w) = len(matrices), crop_size_hw
    mean = torch.tensor(IMAGENET_MEAN_RGB, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD_RGB, device=device).view(1, 3, 1, 1)
    # (value / 255 - mean) / std as one multiply-add: value * gain + offset
    gain, offset = 1.0 / (255.0 * std), -mean / std
    if n == 0:
        return torch.zeros((0, 3, h, w), device=device)
    to_image = _invert_affines(np.asarray(matrices, dtype=np.float64))  # crop -> image
    # Only the part of the frame the crops can touch is converted to float.
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]])
    reach = transforms.apply_affine(np.broadcast_to(corners, (n, 4, 2)), to_image).reshape(-1, 2)
    height, width = image_bgr.shape[:2]
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in reach.min(axis=0))
    x1 = min(int(np.ceil(reach[:, 0].max())) + 2, width)
    y1 = min(int(np.ceil(reach[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:  # every crop lies outside the frame
        return torch.addcmul(offset, torch.zeros((n, 3, h, w), device=device), gain)
    region = image_bgr[y0:y1, x0:x1].permute(2, 0, 1).flip(0).unsqueeze(0).float()  # (1,3,Hr,Wr) RGB
    theta = _normalised_theta(to_image, (x0, y0), (y1 - y0, x1 - x0), crop_size_hw)
    grid = sampling_grid(theta, (h, w), device)
    # All crops in one call: stack their grids vertically over the single frame.
    crops = F.grid_sample(region, grid.reshape(1, n * h, w, 2), mode="bilinear",
                          padding_mode="zeros", align_corners=False)
    crops = crops.view(3, n, h, w).permute(1, 0, 2, 3)
    return torch.addcmul(offset, crops, gain)


def sampling_grid(theta: np.ndarray, size_hw: tuple[int, int], device) -> torch.Tensor:
    """``F.affine_grid(theta, [N, C, h, w], align_corners=False)``, built separably when it can be.

    Test-time crops are axis-aligned (scale and shift, no rotation): then x depends on the column
    alone and y on the row alone, and the grid is two broadcasts instead of a (h w x 3) @ (3 x 2)
    product per crop (8x faster on a CPU for a frame's crops). The test is made on the host
    array, so it costs no device sync.

    Args:
        theta: (N, 2, 3) float affines in normalised coordinates (numpy).
        device: where the grid is built.

    Returns:
        (N, h, w, 2) float32 grid of normalised (x, y) sample positions.
    """
    n, (h, w) = len(theta), size_hw
    shear = np.abs(theta[:, [0, 1], [1, 0]]).max(initial=0.0)
    theta = torch.as_tensor(theta, dtype=torch.float32, device=device)
    if shear > 1e-9:  # rotated or sheared (normalised units: a billionth of the crop)
        return F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    u = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1
    v = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    grid = theta.new_empty((n, h, w, 2))
    grid[..., 0] = (theta[:, 0, 0, None] * u + theta[:, 0, 2, None])[:, None, :]
    grid[..., 1] = (theta[:, 1, 1, None] * v + theta[:, 1, 2, None])[:, :, None]
    return grid


def _invert_affines(matrices: np.ndarray) -> np.ndarray:
    """(N, 2, 3) -> (N, 2, 3) inverse affines."""
    full = np.concatenate([matrices, np.broadcast_to([0.0, 0.0, 1.0], (len(matrices), 1, 3))], axis=1)
    return np.linalg.inv(full)[:, :2]


def _normalised_theta(to_image, origin_xy, region_hw, crop_size_hw) -> np.ndarray:
    """Crop->image pixel affines -> ``affine_grid`` thetas (normalised coords, align_corners=False).

    Normalised ``u`` of a grid of size ``s`` is ``(2 x + 1) / s - 1`` for pixel ``x``.
    """
    (h, w), (rh, rw) = crop_size_hw, region_hw
    from_norm_crop = np.array([[w / 2, 0, (w - 1) / 2], [0, h / 2, (h - 1) / 2], [0, 0, 1]])
    to_norm_region = np.array([[2 / rw, 0, 1 / rw - 1], [0, 2 / rh, 1 / rh - 1], [0, 0, 1]])
    shift = np.array([[1, 0, -origin_xy[0]], [0, 1, -origin_xy[1]], [0, 0, 1]], dtype=np.float64)
    full = np.concatenate([to_image, np.broadcast_to([0.0, 0.0, 1.0], (len(to_image), 1, 3))], axis=1)
    return (to_norm_region @ shift @ full @ from_norm_crop)[:, :2]


def with_mirrored(crops: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (2N, C, h, w): the crops, then the same crops mirrored left-right."""
    batch = crops.new_empty((2 * len(crops),) + tuple(crops.shape[1:]))
    batch[:len(crops)] = crops
    batch[len(crops):] = crops.flip(3)
    return batch


def flip_heatmaps_back_torch(flipped: torch.Tensor, flip_permutation, shift: bool = True) -> torch.Tensor:
    """Torch twin of :func:`posetrack.transforms.flip_heatmaps_back`: (N, J, H, W) -> same."""
    perm = torch.as_tensor(np.asarray(flip_permutation), device=flipped.device)
    back = flipped.index_select(1, perm).flip(3)
    if shift:
        back = torch.cat([back[..., :1], back[..., :-1]], dim=3)
    return back


def decode_heatmaps_torch(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch twin of :func:`posetrack.transforms.decode_heatmaps` (same rule, on the device).

    Args:
        heatmaps: (N, J, H, W) float.

    Returns:
        coords_xy: (N, J, 2) float32 heatmap pixels; scores: (N, J) float32.
    """
    n, j, h, w = heatmaps.shape
    flat = heatmaps.float().reshape(n, j, h * w)
    index = flat.argmax(dim=2, keepdim=True)  # first maximum on ties, as numpy
    scores = flat.gather(2, index)[..., 0]
    x, y = index[..., 0] % w, index[..., 0] // w
    inside = (x > 1) & (x < w - 1) & (y > 1) & (y < h - 1)

    def at(yy, xx):
        return flat.gather(2, (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).unsqueeze(2))[..., 0]

    dx = torch.sign(at(y, x + 1) - at(y, x - 1)) * inside
    dy = torch.sign(at(y + 1, x) - at(y - 1, x)) * inside
    coords = torch.stack([x.float() + 0.25 * dx, y.float() + 0.25 * dy], dim=2)
    return coords, scores


def calibration_crops(frames, input_size_hw: tuple[int, int], max_crops: int = 256,
                      box_padding: float = transforms.BOX_PADDING, mirrored: bool = True):
    """Network inputs cut from real frames, for int8 calibration (``posenet.quantize_onnx``).

    Args:
        frames: iterable of ``(image, boxes_xyxy)``: (H, W, 3) uint8 BGR and (N, 4) person boxes.
        input_size_hw: the network's crop size.
        max_crops: stop after this many crops (spread over the frames in order).
        mirrored: also yield each crop mirrored, as the flip test feeds them.

    Yields:
        (1, 3, h, w) float32 normalised RGB crops, exactly as the estimator cuts them.
    """
    h, w = input_size_hw
    count = 0
    for image, boxes in frames:
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            continue
        centers, scales = transforms.box_to_center_scale(boxes, (h, w), box_padding)
        crops = crop_boxes(image_to_tensor(image, "cpu"), transforms.affine_matrices(centers, scales, (w, h)), (h, w))
        if mirrored:
            crops = with_mirrored(crops)
        for crop in crops.numpy():
            yield crop[None]
            count += 1
            if count >= max_crops:
                return


# ---------------------------------------------------------------------------------------------
# Backends: (N, 3, H, W) normalised crops -> (N, J, H/4, W/4) float32 heatmaps


PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Padded batch sizes a captured CUDA graph is made for (crops per replay): a frame's crops go
# through the smallest that holds them, or in chunks of the largest.
GRAPH_BATCH_SIZES = (8, 16, 32, 64, 128)


def graph_batch_plan(n: int, sizes=GRAPH_BATCH_SIZES) -> list[tuple[int, int]]:
    """How ``n`` crops go through graphs captured for the padded batch ``sizes``: a list of
    ``(crops, padded size)`` chunks, each chunk the largest size's worth of crops except the last,
    which takes the smallest size that holds it. ``[]`` for no crops."""
    sizes = sorted(sizes)
    plan = []
    while n > sizes[-1]:
        plan.append((sizes[-1], sizes[-1]))
        n -= sizes[-1]
    if n > 0:
        plan.append((n, next(size for size in sizes if size >= n)))
    return plan


class TorchBackend:
    """Runs a torch heatmap network.

    Args:
        model: maps (N, 3, H, W) normalised RGB crops to (N, J, h, w) heatmaps; a
            ``SimpleBaseline`` or any module with that contract (a test fake).
        input_size_hw: crop size; None takes ``model.config.input_size_hw``.
        device: where the model runs and the crops are cut ("cpu", "cuda", "cuda:1", ...).
        half: the same as ``precision="fp16"``.
        precision: "fp32", "fp16" or "bf16" weights and activations (CUDA only for the
            16-bit ones: about 2x faster on tensor cores; heatmap maxima move well under a
            pixel; bf16 has fp32's range, so no overflow in large activations).
        channels_last: keep weights and crops in NHWC memory order (the order tensor cores and
            oneDNN prefer); the same arithmetic, so the same keypoints up to float rounding.
        max_batch: run the network on at most this many crops at a time (None: all at once);
            the crops are still cut and decoded as one batch.
        graphs: CUDA only: capture the network as CUDA graphs for the padded batch sizes of
            ``GRAPH_BATCH_SIZES`` (each on first use) and replay them, so a frame's crops cost one
            replay instead of one launch per layer; padding costs at most 2x the crops' work.
    """

    def __init__(self, model: torch.nn.Module, input_size_hw: tuple[int, int] | None = None,
                 device="cpu", half: bool = False, channels_last: bool = False,
                 max_batch: int | None = None, precision: str | None = None, graphs: bool = False):
        self.device = torch.device(device)
        precision = precision or ("fp16" if half else "fp32")
        if precision not in PRECISIONS:
            raise PosetrackError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision != "fp32" and self.device.type != "cuda":
            raise PosetrackError(f"{precision} precision needs a CUDA device, got {self.device}")
        if graphs and self.device.type != "cuda":
            raise PosetrackError(f"CUDA graphs need a CUDA device, got {self.device}")
        if input_size_hw is None:
            config = getattr(model, "config", None)
            if config is None:
                raise PosetrackError("input_size_hw is needed for a model without a config")
            input_size_hw = config.input_size_hw
        self.input_size_hw = tuple(int(s) for s in input_size_hw)
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self.half = precision == "fp16"
        self.channels_last = channels_last
        self.max_batch = _check_max_batch(max_batch)
        self.model = model.eval().to(self.device, self.dtype)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.graphs = graphs
        self._graphs: dict = {}  # padded size -> (graph, static input, static output)
        self._pool = None

    @torch.inference_mode()
    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        crops = crops.to(self.device, self.dtype)
        if self.channels_last:
            crops = crops.contiguous(memory_format=torch.channels_last)
        if self.graphs:
            return self._replay(crops)
        if self.max_batch is None or len(crops) <= self.max_batch:
            return self.model(crops).float()
        return torch.cat([self.model(chunk).float() for chunk in crops.split(self.max_batch)])

    def _replay(self, crops: torch.Tensor) -> torch.Tensor:
        outs, start = [], 0
        for count, size in graph_batch_plan(len(crops)):
            graph, static_in, static_out = self._graph(size)
            static_in[:count].copy_(crops[start:start + count])
            graph.replay()
            outs.append(static_out[:count].float())  # a new tensor: the next replay overwrites
            start += count
        if not outs:
            return self.model(crops).float()
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _graph(self, size: int):
        """The graph for a padded batch of ``size`` crops, captured on first use (after warm-up
        runs on a side stream, as CUDA graph capture requires)."""
        if size in self._graphs:
            return self._graphs[size]
        h, w = self.input_size_hw
        static_in = torch.zeros((size, 3, h, w), device=self.device, dtype=self.dtype)
        if self.channels_last:
            static_in = static_in.contiguous(memory_format=torch.channels_last)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()  # all sizes share one memory pool
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.model(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            static_out = self.model(static_in)
        self._graphs[size] = (graph, static_in, static_out)
        return self._graphs[size]


def _check_max_batch(max_batch):
    if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
        raise PosetrackError(f"max_batch must be a positive integer or None, got {max_batch!r}")
    return max_batch


class OnnxBackend:
    """Runs an ONNX top-down heatmap model with ONNX Runtime.

    Input size, joint count and a fixed batch dimension are read from the file. With a fixed
    batch of B the crops go through in chunks of B (the last one padded), so B = 1 means one run
    per crop.

    Args:
        path: the .onnx file: one input (N, 3, H, W) float32 normalised RGB, first output
            (N, J, H/4, W/4) heatmaps.
        device: "cpu" (CPUExecutionProvider) or "cuda[:i]" (CUDAExecutionProvider, which must be
            installed). Crops are cut with torch on this device and handed to ONNX Runtime as host
            arrays.
        threads: ONNX Runtime intra-op threads; None lets it choose (all cores).
        max_batch: for a model with a dynamic batch, run at most this many crops at a time
            (None: all at once).
    """

    def __init__(self, path, device="cpu", threads: int | None = None,
                 max_batch: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.device = torch.device(device)
        self.max_batch = _check_max_batch(max_batch)
        if not self.path.is_file():
            raise PosetrackError(f"{self.path}: ONNX model not found")
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise PosetrackError(f"{self.path}: device {self.device} asked for, but this "
                                     "onnxruntime has no CUDAExecutionProvider "
                                     "(install onnxruntime-gpu, or use device cpu)")
            providers = [("CUDAExecutionProvider", {"device_id": self.device.index or 0}),
                         "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: its graph optimiser's notes are not the user's
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            raise PosetrackError(f"{self.path}: ONNX Runtime cannot load it "
                                 f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if not (len(shape) == 4 and (shape[1] == 3 or not isinstance(shape[1], int))
                and all(isinstance(s, int) and s > 0 for s in shape[2:])):
            raise PosetrackError(f"{self.path}: expected one input of shape (N, 3, H, W) with "
                                 f"fixed H and W, got {[(i.name, i.shape) for i in inputs]}")
        if inputs[0].type != "tensor(float)":
            raise PosetrackError(f"{self.path}: input must be float32, got {inputs[0].type}")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.input_size_hw = (shape[2], shape[3])
        self.fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        out_shape = list(outputs[0].shape)
        if len(out_shape) != 4:
            raise PosetrackError(f"{self.path}: output {self.output_name} must be (N, J, h, w) "
                                 f"heatmaps, got shape {out_shape}")
        if isinstance(out_shape[1], int):
            self.num_joints = out_shape[1]
        else:  # symbolic joint count: run once to find it
            self.num_joints = self(torch.zeros((1, 3, *self.input_size_hw))).shape[1]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.joint_layout = meta.get("posetrack.joint_layout")  # written by export_onnx, else None

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        array = crops.detach().to("cpu", torch.float32).numpy()
        n = len(array)
        step = self.fixed_batch or min(self.max_batch or n, n) or 1
        outs = []
        for start in range(0, n, step):
            chunk = array[start:start + step]
            if self.fixed_batch and len(chunk) < step:
                pad = np.zeros((step - len(chunk),) + chunk.shape[1:], np.float32)
                outs.append(self._run(np.concatenate([chunk, pad]))[:len(chunk)])
            else:
                outs.append(self._run(chunk))
        if not outs:
            return torch.zeros((0, getattr(self, "num_joints", 0), 1, 1))
        return torch.from_numpy(np.concatenate(outs)).to(self.device)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run([self.output_name], {self.input_name: batch})[0],
                          dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# The estimator


@dataclass(frozen=True)
class PoseEstimatorConfig:
    """Settings of the top-down pose stage (defaults are the original's test settings).

    Attributes:
        flip_test: also run the mirrored crops and average the heatmaps. Costs a second forward
            (twice the crops in the batch); gains about 1 AP on COCO with SimpleBaseline.
        shift_flipped_heatmap: move the flipped-back heatmaps one pixel right before averaging,
            as the original does; compensates the half-pixel misalignment of the mirrored grid.
        box_padding: enlargement of the aspect-padded box before cropping (1.25 in the original);
            larger keeps limbs beyond the box in view, smaller gives more pixels per person.
    """

    flip_test: bool = True
    shift_flipped_heatmap: bool = True
    box_padding: float = transforms.BOX_PADDING

    def __post_init__(self):
        if not self.box_padding > 0:
            raise PosetrackError(f"box_padding must be positive, got {self.box_padding}")


class PoseEstimator:
    """``estimator(image, detections) -> Poses``: top-down keypoints for every box of a frame.

    Args:
        backend: a :class:`TorchBackend`, an :class:`OnnxBackend`, or any object with
            ``input_size_hw``, ``device`` and ``__call__(crops) -> heatmaps``.
        joint_layout: the order of the network's heatmaps: ``joints.COCO17`` (converted to
            POSETRACK17 on output) or ``joints.POSETRACK17``.
        config: flip test and crop settings.
    """

    def __init__(self, backend, joint_layout: JointLayout = COCO17,
                 config: PoseEstimatorConfig = PoseEstimatorConfig()):
        if joint_layout not in (COCO17, POSETRACK17):
            raise PosetrackError(f"joint layout must be coco17 or posetrack17, got {joint_layout.name}")
        self.backend = backend
        self.joint_layout = joint_layout
        self.config = config

    @property
    def device(self) -> torch.device:
        """Where crops are cut: upload frames here (``image_to_tensor``) to avoid a copy."""
        return self.backend.device

    def __call__(self, image, detections: Detections) -> Poses:
        """Estimate one pose per detection box.

        Args:
            image: the frame, (H, W, 3) uint8 BGR: a numpy array, or a torch tensor (on
                ``self.device`` to save the upload).
            detections: the person boxes; all go through the network in one batch.

        Returns:
            Poses in the POSETRACK17 layout: keypoints in image pixels, keypoint scores the
            heatmap maxima (a PoseTrack-trained network's ears, never trained, are absent:
            ``joints.UNTRAINED_IN_POSETRACK``), boxes and box scores copied from ``detections``, track ids -1.
        """
        n = len(detections)
        if n == 0:
            return Poses.empty()
        keypoints, scores = self.keypoints(image, detections.boxes_xyxy)
        if self.joint_layout == COCO17:
            keypoints, scores = coco_to_posetrack(keypoints, scores)
        else:  # a PoseTrack-trained network: its ear channels were never trained
            untrained = [POSETRACK17.index(name) for name in UNTRAINED_IN_POSETRACK]
            keypoints[:, untrained] = np.nan
            scores[:, untrained] = 0.0
        return Poses(boxes_xyxy=detections.boxes_xyxy, box_scores=detections.scores,
                     keypoints_xy=keypoints, keypoint_scores=scores,
                     track_ids=np.full(n, NO_TRACK, np.int64))

    def keypoints(self, image, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's own joints for each box, in its own layout (no conversion).

        Returns:
            keypoints_xy: (N, J, 2) float32 image pixels; keypoint_scores: (N, J) float32.
        """
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        n, j = len(boxes), self.joint_layout.num_joints
        if n == 0:
            return np.zeros((0, j, 2), np.float32), np.zeros((0, j), np.float32)
        h, w = self.backend.input_size_hw
        centers, scales = transforms.box_to_center_scale(boxes, (h, w), self.config.box_padding)
        matrices = transforms.affine_matrices(centers, scales, (w, h))
        crops = crop_boxes(image_to_tensor(image, self.device), matrices, (h, w))
        batch = with_mirrored(crops) if self.config.flip_test else crops
        heatmaps = self.backend(batch)
        if heatmaps.ndim != 4 or heatmaps.shape[:2] != (len(batch), j):
            raise PosetrackError(f"the pose network gave heatmaps of shape {tuple(heatmaps.shape)} "
                                 f"for {len(batch)} crops; expected ({len(batch)}, {j}, h, w) for "
                                 f"the {self.joint_layout.name} layout")
        if self.config.flip_test:
            heatmaps = (heatmaps[:n] + flip_heatmaps_back_torch(
                heatmaps[n:], self.joint_layout.flip_permutation,
                self.config.shift_flipped_heatmap)) * 0.5
        coords, scores = decode_heatmaps_torch(heatmaps)
        # the one device->host copy (and sync) of the frame: coordinates and scores together
        decoded = torch.cat([coords, scores.unsqueeze(2)], dim=2).cpu().numpy()
        coords, scores = decoded[..., :2], decoded[..., 2]
        heatmap_wh = (heatmaps.shape[3], heatmaps.shape[2])
        keypoints = transforms.heatmap_to_image(coords, centers, scales, heatmap_wh)
        return keypoints.astype(np.float32), scores.astype(np.float32)


def load_pose_estimator(spec: str | Path, device="cpu", *, flip_test: bool = True,
                        half: bool = False, box_padding: float = transforms.BOX_PADDING,
                        joint_layout: str | None = None,
                        input_size_hw: tuple[int, int] | None = None, depth: int | None = None,
                        weights_dir=None, onnx_threads: int | None = None,
                        channels_last: bool = True, network_batch="auto",
                        precision: str | None = None, cuda_graphs: bool = False) -> PoseEstimator:
    """Build a pose estimator from a registered weights name or a local file.

    Args:
        spec: a name known to ``posetrack.weights`` (downloaded/cached there) or a path to a
            ``.pth``/``.pt`` SimpleBaseline checkpoint (original or mmpose layout) or an ``.onnx``
            heatmap model.
        device: "cpu", "cuda", "cuda:1", ...; crops are cut and the network runs there.
        flip_test: see :class:`PoseEstimatorConfig`.
        half: float16 network on CUDA (torch backend only); the same as ``precision="fp16"``.
        box_padding: see :class:`PoseEstimatorConfig`.
        precision: torch backend: "fp32", "fp16" or "bf16" (16-bit: CUDA only); None: from
            ``half``.
        cuda_graphs: torch backend on CUDA: replay captured graphs (see ``TorchBackend``).
        joint_layout: "coco17" or "posetrack17". None: for a checkpoint, the dataset its mmpose
            meta names, else "posetrack17" when its file name contains "posetrack", else
            "coco17"; for ONNX, the layout our exporter wrote
            into the file, else "coco17".
        input_size_hw: checkpoint only: crop size; None reads it from the file name ("256x192"),
            else (256, 192). An ONNX file states its own.
        depth: checkpoint only: ResNet depth; None infers it from the weights.
        weights_dir: cache folder for registered names (None: the weights module's default).
        onnx_threads: ONNX Runtime intra-op threads (None: all cores).
        channels_last: torch backend: NHWC weights and crops (faster with oneDNN on a CPU and
            with cuDNN's half-precision kernels; same keypoints up to float rounding).
        network_batch: crops per network call; "auto": ``default_network_batch(device)``.
    """
    if network_batch == "auto":
        network_batch = default_network_batch(device)
    path = resolve_weights(spec, weights_dir)
    known = _known_pose_model(spec)
    if known is not None:  # a registered name: the manifest states joints and input size
        joint_layout = joint_layout or known.joints
        input_size_hw = input_size_hw or (tuple(known.input_hw) if known.input_hw else None)
    config = PoseEstimatorConfig(flip_test=flip_test, box_padding=box_padding)
    if path.suffix.lower() == ".onnx":
        if half or precision not in (None, "fp32"):
            raise PosetrackError(f"{path}: 16-bit precision is for the torch backend; export a "
                                 "16-bit ONNX model instead")
        backend = OnnxBackend(path, device=device, threads=onnx_threads, max_batch=network_batch)
        layout = _layout(joint_layout or backend.joint_layout or "coco17", path)
        if backend.num_joints != layout.num_joints:
            raise PosetrackError(f"{path}: the model gives {backend.num_joints} heatmaps, the "
                                 f"{layout.name} layout has {layout.num_joints} joints")
        return PoseEstimator(backend, layout, config)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        from .posenet import load_posenet

        model = load_posenet(path, depth=depth, input_size_hw=input_size_hw,
                             joint_layout=joint_layout, device=device)
        backend = TorchBackend(model, device=device, half=half, channels_last=channels_last,
                               max_batch=network_batch, precision=precision, graphs=cuda_graphs)
        return PoseEstimator(backend, model.config.layout, config)
    raise PosetrackError(f"{path}: unknown pose model type {path.suffix!r}; expected a "
                         f"checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) or .onnx")


def _layout(name: str, path) -> JointLayout:
    if name not in LAYOUTS:
        raise PosetrackError(f"{path}: unknown joint layout {name!r}; known: {', '.join(sorted(LAYOUTS))}")
    return LAYOUTS[name]


def _has_weights_registry() -> bool:
    return importlib.util.find_spec("posetrack.weights") is not None


def _known_pose_model(spec):
    """The manifest entry of a registered pose model name, else None (a path)."""
    if not _has_weights_registry():
        return None
    from .weights import known_models

    info = known_models().get(str(spec))
    return info if info is not None and info.kind == "pose" else None


def resolve_weights(spec: str | Path, weights_dir=None) -> Path:
    """A weights name or path -> an existing local file.

    Goes through ``posetrack.weights.resolve`` (registered names, the cache, the offline
    message) when that module is installed; without it, ``spec`` must be a path to a file.
    """
    if _has_weights_registry():
        from .weights import resolve

        return Path(resolve(str(spec), weights_dir=weights_dir, kind="pose"))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise PosetrackError(f"{spec}: pose model file not found (and no weights registry to "
                             "look the name up in)")
    return path

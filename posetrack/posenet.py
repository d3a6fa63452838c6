"""The SimpleBaseline pose network and its strict checkpoint loading.

``SimpleBaseline``: a torchvision ResNet (18/34/50/101/152) without its pooling and classifier,
three transposed convolutions (256 filters, 4x4, stride 2, padding 1, no bias; each followed by
BN and ReLU) that bring the stride from 32 back to 4, and a 1x1 convolution to one heatmap per
joint. Input (N, 3, H, W) RGB normalised with the ImageNet mean/std; output (N, J, H/4, W/4).

The module's own parameter names are the original release's (``conv1.*``, ``bn1.*``,
``layer1..4.*``, ``deconv_layers.*``, ``final_layer.*``), so a checkpoint of that layout loads as
is; mmpose checkpoints (``backbone.*``, ``keypoint_head.deconv_layers.*``,
``keypoint_head.final_layer.*``; mmpose 1.x: ``head.*`` for ``keypoint_head.*``) are renamed by an explicit table
first. Loading is strict: every key and every shape must match, otherwise a
:class:`~posetrack.errors.PosetrackError` names the file and lists what did not fit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

from .errors import PosetrackError
from .joints import LAYOUTS, JointLayout

log = logging.getLogger(__name__)

# depth -> torchvision constructor
_RESNETS = {
    18: torchvision.models.resnet18,
    34: torchvision.models.resnet34,
    50: torchvision.models.resnet50,
    101: torchvision.models.resnet101,
    152: torchvision.models.resnet152,
}
# (blocks in layer2, blocks in layer3, bottleneck blocks) -> depth; enough to tell the five apart
_DEPTH_OF_BLOCKS = {(2, 2, False): 18, (4, 6, False): 34, (4, 6, True): 50,
                    (4, 23, True): 101, (8, 36, True): 152}
DECONV_FILTERS = 256  # the paper's head: 3 x (deconv 4x4 stride 2, 256 filters, BN, ReLU)
DECONV_LAYERS = 3


@dataclass(frozen=True)
class PoseNetConfig:
    """What a SimpleBaseline network is built from.

    Attributes:
        depth: ResNet depth: 18, 34, 50, 101 or 152 (50 is the paper's main ablation model).
        num_joints: number of heatmaps (17 for COCO and PoseTrack checkpoints).
        input_size_hw: (height, width) of the input crops; (256, 192) or (384, 288) for the public
            checkpoints, any multiple of 32 works.
        joint_layout: name of the joint order the heatmaps follow, a key of ``joints.LAYOUTS``
            ("coco17" or "posetrack17").
    """

    depth: int = 50
    num_joints: int = 17
    input_size_hw: tuple[int, int] = (256, 192)
    joint_layout: str = "coco17"

    def __post_init__(self):
        if self.depth not in _RESNETS:
            raise PosetrackError(f"ResNet depth must be one of {sorted(_RESNETS)}, got {self.depth}")
        if self.num_joints < 1:
            raise PosetrackError(f"num_joints must be positive, got {self.num_joints}")
        size = tuple(int(s) for s in self.input_size_hw)
        if len(size) != 2 or any(s <= 0 or s % 32 for s in size):
            raise PosetrackError(f"input size must be (height, width), both positive multiples of "
                                 f"32 (e.g. 256x192 or 384x288), got {self.input_size_hw}")
        object.__setattr__(self, "input_size_hw", size)
        if self.joint_layout not in LAYOUTS:
            raise PosetrackError(f"unknown joint layout {self.joint_layout!r}; known: "
                                 f"{', '.join(sorted(LAYOUTS))}")
        if LAYOUTS[self.joint_layout].num_joints != self.num_joints:
            raise PosetrackError(f"joint layout {self.joint_layout} has "
                                 f"{LAYOUTS[self.joint_layout].num_joints} joints, the network "
                                 f"{self.num_joints}")

    @property
    def heatmap_size_hw(self) -> tuple[int, int]:
        return self.input_size_hw[0] // 4, self.input_size_hw[1] // 4

    @property
    def layout(self) -> JointLayout:
        return LAYOUTS[self.joint_layout]


class SimpleBaseline(nn.Module):
    """ResNet backbone + deconvolution head (see the module docstring)."""

    def __init__(self, config: PoseNetConfig):
        super().__init__()
        self.config = config
        resnet = _RESNETS[config.depth](weights=None)
        # Children under the original release's names, so its keys need no renaming.
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        channels = resnet.fc.in_features  # 512 (18/34) or 2048 (50+)
        layers = []
        for _ in range(DECONV_LAYERS):
            layers += [
                nn.ConvTranspose2d(channels, DECONV_FILTERS, kernel_size=4, stride=2, padding=1,
                                   output_padding=0, bias=False),
                nn.BatchNorm2d(DECONV_FILTERS),
                nn.ReLU(inplace=True),
            ]
            channels = DECONV_FILTERS
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(DECONV_FILTERS, config.num_joints, kernel_size=1)
        self._init_head()

    def _init_head(self):
        # The original's head initialisation: small normal weights, BN at identity.
        for m in self.deconv_layers.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB -> (N, J, H/4, W/4) heatmaps."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final_layer(self.deconv_layers(x))


# ---------------------------------------------------------------------------------------------
# Checkpoints

# (prefix in the file, prefix in SimpleBaseline) per layout; a key is renamed by the first row
# whose prefix it starts with, keys matching no row keep their name (and then show up as
# unexpected).
_KEY_MAPS = {
    "original": (),
    "mmpose": (("backbone.", ""), ("keypoint_head.deconv_layers.", "deconv_layers."),
               ("keypoint_head.final_layer.", "final_layer."),
               # mmpose 1.x names the head "head"
               ("head.deconv_layers.", "deconv_layers."), ("head.final_layer.", "final_layer.")),
}
_ORIGINAL_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.",
                      "deconv_layers.", "final_layer.")
_WRAPPERS = ("state_dict", "model")  # dict keys under which training code stores the weights
_SHOW = 5  # how many keys of each kind an error message lists


def read_checkpoint(path) -> dict[str, torch.Tensor]:
    """Load a ``.pth``/``.pt`` file and return its plain state dict (tensors only, CPU).

    Unwraps ``{"state_dict": ...}`` and ``{"model": ...}`` (nested too) and strips the
    ``module.`` prefix DataParallel adds. Loads with ``weights_only=True``: a file that needs
    arbitrary code to unpickle is refused.
    """
    return _state_dict(path, _load_file(path))


def _load_file(path):
    """The unpickled contents of a checkpoint file (tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise PosetrackError(f"{path}: checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or non-checkpoint files
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        if "weights_only" in str(err):  # torch's hint to unpickle arbitrary code: not for us
            first = "it holds Python objects other than tensors and plain data, or is corrupt"
        raise PosetrackError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: "
                             f"{first}); it may be truncated or not a weights file") from None


# mmpose dataset types in a checkpoint's meta['config'] -> the joint layout of its heatmaps
_DATASET_LAYOUTS = (("PoseTrack18", "posetrack17"), ("Coco", "coco17"))


def joint_layout_from_meta(obj) -> str | None:
    """The joint layout a checkpoint names itself: mmpose files carry their training config as
    text in ``meta['config']``, whose ``dataset_type`` (e.g. ``TopDownPoseTrack18Dataset``,
    ``TopDownCocoDataset``) says which joints the heatmaps are. None when the file does not say."""
    meta = obj.get("meta") if isinstance(obj, dict) else None
    config = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(config, str):
        return None
    types = re.findall(r"dataset_type\s*=\s*['\"](\w+)['\"]", config) or re.findall(r"\b(\w+Dataset)\b", config)
    for name, layout in _DATASET_LAYOUTS:
        if any(name.lower() in t.lower() for t in types):
            return layout
    return None


def _state_dict(path, obj) -> dict[str, torch.Tensor]:
    while isinstance(obj, dict) and not _all_tensors(obj):
        wrapper = next((k for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
        if wrapper is None:
            bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)][:_SHOW]
            raise PosetrackError(f"{path}: not a state dict: entries {bad} are not tensors and "
                                 f"there is no {' or '.join(repr(w) for w in _WRAPPERS)} entry")
        obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj:
        raise PosetrackError(f"{path}: holds no state dict (got {type(obj).__name__})")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def _all_tensors(d: dict) -> bool:
    return all(isinstance(v, torch.Tensor) for v in d.values())


def checkpoint_layout(state_dict: dict[str, torch.Tensor]) -> str | None:
    """"original", "mmpose" (0.x or 1.x), or None when no key looks like either."""
    keys = list(state_dict)
    if any(k.startswith(("backbone.", "keypoint_head.", "head.")) for k in keys):
        return "mmpose"
    if any(k.startswith(_ORIGINAL_PREFIXES) for k in keys):
        return "original"
    return None


def remap_keys(state_dict: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Rename a state dict of ``layout`` to SimpleBaseline's parameter names."""
    table = _KEY_MAPS[layout]
    out = {}
    for key, value in state_dict.items():
        for old, new in table:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def infer_depth(state_dict: dict[str, torch.Tensor]) -> int | None:
    """ResNet depth from the block counts of a state dict with SimpleBaseline names, or None."""
    def blocks(layer):
        found = {int(m.group(1)) for k in state_dict if (m := re.match(rf"{layer}\.(\d+)\.", k))}
        return max(found) + 1 if found else 0
    bottleneck = "layer1.0.conv3.weight" in state_dict
    return _DEPTH_OF_BLOCKS.get((blocks("layer2"), blocks("layer3"), bottleneck))


def infer_input_size(path) -> tuple[int, int] | None:
    """(height, width) from a file name such as ``res50_coco_256x192-ec54d7f3.pth`` (any pair of
    multiples of 32, e.g. ``mine_96x64.pth``), or None."""
    for h, w in re.findall(r"(\d+)x(\d+)", Path(path).name):
        size = (int(h), int(w))
        if min(size) > 0 and size[0] % 32 == 0 and size[1] % 32 == 0:
            return size
    return None


def infer_joint_layout(path) -> str:
    """From the file name alone: "posetrack17" when it says posetrack, else "coco17" (the
    public checkpoints). Used only when the checkpoint does not name its dataset."""
    return "posetrack17" if "posetrack" in Path(path).name.lower() else "coco17"


def load_posenet(path, *, depth: int | None = None, num_joints: int | None = None,
                 input_size_hw: tuple[int, int] | None = None, joint_layout: str | None = None,
                 device="cpu") -> SimpleBaseline:
    """Build a SimpleBaseline from a checkpoint file, strictly, in eval mode on ``device``.

    Args:
        path: a ``.pth``/``.pt`` file in the original or the mmpose layout (see the module
            docstring), possibly wrapped and ``module.``-prefixed.
        depth: ResNet depth; None infers it from the block counts in the file.
        num_joints: None takes it from ``final_layer.weight``.
        input_size_hw: None reads "256x192"/"384x288" from the file name, else (256, 192). The
            network is fully convolutional, so the file cannot tell.
        joint_layout: "coco17" or "posetrack17"; None: the dataset the checkpoint names
            (``joint_layout_from_meta``), else "posetrack17" when the file name contains
            "posetrack", else "coco17". A renamed mmpose file keeps its layout.
        device: where the model goes.

    Raises:
        PosetrackError: unreadable file; keys of neither layout; or keys/shapes that do not fit
            the network, with the missing keys, unexpected keys and shape mismatches listed.
    """
    contents = _load_file(path)
    state = _state_dict(path, contents)
    joint_layout = joint_layout or joint_layout_from_meta(contents) or infer_joint_layout(path)
    layout = checkpoint_layout(state)
    if layout is None:
        raise PosetrackError(f"{path}: not a SimpleBaseline checkpoint: no key starts with "
                             f"{', '.join(_ORIGINAL_PREFIXES[:4])}... (original layout) or "
                             f"backbone./keypoint_head. (mmpose layout); first keys: "
                             f"{', '.join(list(state)[:_SHOW])}")
    state = remap_keys(state, layout)
    if depth is None:
        depth = infer_depth(state)
        if depth is None:
            raise PosetrackError(f"{path}: cannot tell the ResNet depth from the checkpoint's "
                                 f"blocks; pass the depth explicitly")
    if num_joints is None:
        final = state.get("final_layer.weight")
        if final is None or final.ndim != 4:
            raise PosetrackError(f"{path}: no final_layer weight of shape (J, 256, 1, 1) after "
                                 f"remapping the {layout} layout; cannot tell the joint count")
        num_joints = int(final.shape[0])
    config = PoseNetConfig(
        depth=depth, num_joints=num_joints,
        input_size_hw=input_size_hw or infer_input_size(path) or (256, 192),
        joint_layout=joint_layout)
    model = SimpleBaseline(config)
    load_state_dict_strict(model, state, source=f"{path} ({layout} layout)")
    log.info("loaded %s: SimpleBaseline ResNet-%d, %d joints (%s), input %dx%d", path, depth,
             num_joints, config.joint_layout, *config.input_size_hw)
    return model.eval().to(device)


def load_state_dict_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model`` only if every key and shape matches.

    BatchNorm's ``num_batches_tracked`` counters may be missing (files saved before torch 0.4.1
    have none; they do not affect inference); every other difference raises PosetrackError
    listing up to five missing keys, unexpected keys and shape mismatches with their counts.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [k for k in expected if k in state_dict
                  and tuple(state_dict[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        what = getattr(model, "config", None)
        target = (f"SimpleBaseline ResNet-{what.depth} with {what.num_joints} joints"
                  if isinstance(what, PoseNetConfig) else type(model).__name__)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_some(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_some(unexpected)}")
        if mismatched:
            shown = [f"{k} file {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
                     for k in mismatched[:_SHOW]]
            parts.append(f"{len(mismatched)} shape mismatch(es): {'; '.join(shown)}"
                         + (" ..." if len(mismatched) > _SHOW else ""))
        raise PosetrackError(f"{source} does not fit {target}: " + "; ".join(parts))
    full = dict(state_dict)
    for k in expected:
        full.setdefault(k, expected[k])  # only num_batches_tracked can be absent here
    model.load_state_dict(full, strict=True)


def _some(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOW]) + (" ..." if len(keys) > _SHOW else "")


# ---------------------------------------------------------------------------------------------
# ONNX export

ONNX_INPUT = "input"
ONNX_OUTPUT = "heatmaps"


def export_onnx(model: SimpleBaseline, path, *, batch_size: int | None = None,
                opset: int = 17) -> Path:
    """Write ``model`` to an ONNX file that :class:`posetrack.pose.OnnxBackend` reads.

    Args:
        model: the network (its config gives the input size and joint layout).
        path: the .onnx file to write.
        batch_size: None for a dynamic batch dimension (all boxes of a frame in one run), or a
            fixed batch (1 is what some runtimes need).
        opset: ONNX opset.

    The joint layout and input size are written into the file's metadata
    (``posetrack.joint_layout``, ``posetrack.input_size_hw``). Needs the ``onnx`` package, as
    torch's exporter does.
    """
    try:
        import onnx
    except ImportError:
        raise PosetrackError("writing ONNX needs the onnx package: pip install onnx") from None
    import warnings

    config = model.config
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    dummy = torch.zeros((batch_size or 1, 3, *config.input_size_hw), device=device)
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter warns that it is the legacy one
        torch.onnx.export(
            model, (dummy,), str(path), dynamo=False, opset_version=opset,
            input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
            dynamic_axes=None if batch_size else {ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
        )
    model.train(was_training)
    proto = onnx.load(str(path))
    for key, value in (("posetrack.joint_layout", config.joint_layout),
                       ("posetrack.input_size_hw", "x".join(map(str, config.input_size_hw))),
                       ("posetrack.network", f"SimpleBaseline ResNet-{config.depth}")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


def quantize_onnx(path, out_path, calibration_batches, *, per_channel: bool = True) -> Path:
    """Write an int8 copy of an ONNX heatmap model (ONNX Runtime static quantisation).

    Weights become int8 (one scale per output channel with ``per_channel``) and activations
    uint8, with scales calibrated on real crops: the activation ranges of a pose network depend
    on what it sees, so ``calibration_batches`` should be crops cut from footage like the target
    (``pose.calibration_crops``). The result is QDQ format (quantise/dequantise pairs around each
    quantised operator), which ONNX Runtime's CPU provider fuses into int8 kernels. A model below
    opset 13 is converted to 13 first (per-channel QDQ needs it). Metadata (joint layout, input
    size) is carried over and ``posetrack.quantization`` added.

    Args:
        path: the float .onnx model.
        out_path: where to write the int8 model (never the input itself); written atomically.
        calibration_batches: iterable of (N, 3, H, W) float32 arrays the model accepts (a model
            with a fixed batch of 1 needs N = 1).
        per_channel: per-output-channel weight scales (more accurate for depthwise and small
            convolutions, which a single tensor-wide scale crushes).
    """
    try:
        import onnx
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                              quantize_static)
    except ImportError as err:
        raise PosetrackError(f"int8 quantisation needs onnx and onnxruntime ({err})") from None
    import tempfile

    from .fileio import publish

    path, out_path = Path(path), Path(out_path)
    if not path.is_file():
        raise PosetrackError(f"{path}: ONNX model not found")
    if out_path.resolve() == path.resolve():
        raise PosetrackError(f"{out_path}: the int8 model would overwrite its float input; "
                             "choose another output file")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError and others for a bad file
        raise PosetrackError(f"{path}: cannot read it as an ONNX model ({err})") from None
    input_name = proto.graph.input[0].name
    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in calibration_batches]
    if not batches:
        raise PosetrackError("int8 calibration needs at least one batch of crops")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter(batches)

        def get_next(self):
            batch = next(self._items, None)
            return None if batch is None else {input_name: batch}

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".quantize-") as work:
        source = _prepared_for_quantization(path, Path(work))
        target = Path(work) / "int8.onnx"
        hush = _DropMessage("pre-processing before quantization")  # done above, in our way
        logging.getLogger().addFilter(hush)
        try:
            quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8)
        finally:
            logging.getLogger().removeFilter(hush)
        quantized = onnx.load(str(target))
        used = {name for node in quantized.graph.node for name in node.input}
        kept = [t for t in quantized.graph.initializer if t.name in used]
        del quantized.graph.initializer[:]
        quantized.graph.initializer.extend(kept)  # the opset conversion's leftovers
        del quantized.metadata_props[:]
        for prop in proto.metadata_props:
            quantized.metadata_props.add().CopyFrom(prop)
        entry = quantized.metadata_props.add()
        entry.key = "posetrack.quantization"
        entry.value = (f"int8 static QDQ ({'per-channel' if per_channel else 'per-tensor'} "
                       f"weights), calibrated on {sum(len(b) for b in batches)} crops")
        onnx.save(quantized, str(target))
        publish(target, out_path)
    return out_path


def _prepared_for_quantization(path: Path, work: Path) -> Path:
    """The float model with batch norms folded into the convolutions (ONNX Runtime's basic graph
    optimisation, so each convolution is quantised with its final weights) at opset 13 or above
    (older files, e.g. opset 8, are converted), written into ``work``."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, version_converter

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(work / "folded.onnx")
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types for a bad model
        raise PosetrackError(f"{path}: ONNX Runtime cannot load it ({str(err).splitlines()[0]})") from None
    proto = onnx.load(str(work / "folded.onnx"))
    del proto.opset_import[:]
    original = onnx.load(str(path), load_external_data=False)
    proto.opset_import.extend(original.opset_import)  # the optimiser lists every domain it knows
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        # The converter resolves every tensor through the graph inputs, as IR version 3 demanded
        # of initialisers; list them there for the conversion, then take them out again so the
        # quantiser sees constant weights.
        listed = {i.name for i in proto.graph.input}
        extra = [helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                 for t in proto.graph.initializer if t.name not in listed]
        proto.graph.input.extend(extra)
        try:
            proto = version_converter.convert_version(proto, 13)
        except Exception as err:  # the converter raises RuntimeError / ConvertError
            raise PosetrackError(f"{path}: cannot convert opset {opset} to 13 for quantisation "
                                 f"({str(err).splitlines()[0]})") from None
        weights = {t.name for t in proto.graph.initializer}
        inputs = [i for i in proto.graph.input if i.name not in weights]
        del proto.graph.input[:]
        proto.graph.input.extend(inputs)
        proto.ir_version = max(proto.ir_version, 7)
    source = work / "float.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(proto), str(source))  # tensor shapes for the quantiser
    return source


class _DropMessage(logging.Filter):
    """Drops log records containing a given text (a library's advice that does not apply)."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record) -> bool:
        return self.text not in record.getMessage()

"""Person detectors: one frame in, the person boxes of that frame out.

Every detector has the same two calls, so the pipeline (and a test's fake) need nothing else::

    detector(image_bgr, frame_id=None) -> Detections          # image_bgr: (H, W, 3) uint8, BGR
    detector.detect_batch(images_bgr, frame_ids=None) -> list[Detections]

``frame_id`` is the 0-based frame index in the video (precomputed detections look their boxes up
by it; a network ignores it). Boxes are ``xyxy`` pixels of the full frame, sorted by score,
highest first.

Two implementations:

* :class:`YoloDetector`: an ultralytics YOLO model (person class only). Its weights come from
  :func:`posetrack.weights.resolve`, so ultralytics itself never downloads anything.
* :class:`PrecomputedDetections`: boxes read from a COCO detection-results JSON, so any detector
  can be used (run it beforehand, write its boxes in that format).

ultralytics (and torch) are imported only when a :class:`YoloDetector` is built.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np

from .checks import setting, validate
from .errors import PosetrackError
from .frame import Detections


class Detector(Protocol):
    """What the pipeline calls; see the module docstring."""

    def __call__(self, image_bgr: np.ndarray, frame_id: int | None = None) -> Detections: ...

    def detect_batch(self, images_bgr: Sequence[np.ndarray],
                     frame_ids: Sequence[int] | None = None) -> list[Detections]: ...


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of the detection stage: :class:`YoloDetector`, or boxes read from a file.
    Defaults are ultralytics' own for YOLO11."""

    detections: str | None = setting(None, (
        "Precomputed person boxes (COCO detection results JSON) instead of the detector; for "
        "batch, a folder with one <clip>.json per clip. Any detector's boxes, at no network cost."),
        kind="existing-path")
    min_score: float = setting(0.25, (
        "Lowest score a person box needs to be estimated and tracked (the detector's and a "
        "detections file's boxes alike). Lower: more small, blurred and occluded people are "
        "found, and more false boxes cost pose-network time and false poses; higher: fewer, "
        "surer people. The paper's 0.5 suits a strong detector; small fast ones score people "
        "lower: PoseTrack sample, yolov5n boxes, AP 43.4 at 0.25, 37.4 at 0.35, 18.7 at 0.5."),
        low=0.0, high=1.0, option="detection-min-score")
    weak_min_score: float = setting(0.1, (
        "Boxes scoring at least this but below min_score are estimated too, but their poses may "
        "only continue an existing track, never start one, and are matched after the others "
        "(as ByteTrack matches low-score boxes second): a person whose score flickers around "
        "min_score, or who is partly hidden, keeps their id and is still written. At or above "
        "min_score: off. Lower: more hidden people followed, more pose-network time."),
        low=0.0, high=1.0,
        option="weak-detection-min-score")
    nms_iou: float = setting(0.7, (
        "IoU above which the detector's NMS merges two person boxes. Higher: two people who "
        "overlap strongly both survive, and so do more duplicates of one person; lower: the "
        "reverse."), low=0.0, high=1.0)
    image_size: int = setting(640, (
        "Longer side, in pixels, the frame is resized to for the detector. Higher: small "
        "people are found, slower; lower: faster, misses small people."), low=32, multiple_of=32)
    max_detections: int = setting(100, (
        "Most person boxes kept per frame (the highest-scoring ones), from the detector or from "
        "--detections. Lower: bounds the pose work in crowds (a frame of thousands of boxes "
        "costs no more than this many), drops the least sure people."), low=1)
    half: bool = setting(True, (
        "Run the detector in half precision on a GPU (about twice as fast, boxes within a "
        "pixel). Ignored on a CPU."), option="detector-half")
    person_class: str = setting("person", (
        "Name of the person class in the model's class names ('person' for COCO models)."))

    def __post_init__(self):
        validate(self)

    @property
    def floor(self) -> float:
        """The lowest score a box is kept with: weak_min_score, or min_score if that is lower."""
        return min(self.weak_min_score, self.min_score)


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR image, got shape {image.shape} "
                         f"dtype {image.dtype}")
    return image


def _sorted_by_score(detections: Detections) -> Detections:
    order = np.argsort(-detections.scores, kind="stable")
    return detections[order]


def _top(detections: Detections, count: int | None) -> Detections:
    """The ``count`` highest-scoring boxes, highest first (ties: file order); all if None."""
    order = np.argsort(-detections.scores, kind="stable")
    return detections[order if count is None else order[:count]]


# ---------------------------------------------------------------------------------------------
# ultralytics YOLO


@contextlib.contextmanager
def keep_thread_settings():
    """Undo ultralytics' process-wide thread settings on leaving the block.

    Importing ultralytics calls ``cv2.setNumThreads(0)``, and picking a CPU device calls
    ``torch.set_num_threads(cpu_count - 1)``: on 2 cores that left the pose network and DIS flow
    one thread each for the rest of the run (frames 1.4x slower, scripts/benchmark.py).
    """
    import cv2
    import torch

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        yield
    finally:
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
        if cv2.getNumThreads() != cv2_threads:
            cv2.setNumThreads(cv2_threads)


def _import_yolo():
    """Import ultralytics' YOLO class without its side effects on the rest of the process.

    * Network features off: posetrack fetches the weights itself, and the import must not wait
      on a DNS check, report errors online or pip-install anything (a value the user set for
      these variables wins).
    * Importing ultralytics replaces ``PIL.Image.open`` process-wide (a file PIL cannot identify
      then tries to install and import pi-heif, raising ModuleNotFoundError instead of PIL's
      UnidentifiedImageError, which breaks posetrack's own frame reading) and ``torch.save``
      (a retrying wrapper). Both are put back; ultralytics needs neither to predict on arrays.
    * Its thread settings are undone (see ``keep_thread_settings``).
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    import torch
    from PIL import Image

    with keep_thread_settings():
        from ultralytics import YOLO
        from ultralytics.utils import patches

    for module, name, patched, original in ((Image, "open", "image_open", "_image_open"),
                                            (torch, "save", "torch_save", "_torch_save")):
        if getattr(module, name) is getattr(patches, patched, None) and hasattr(patches, original):
            setattr(module, name, getattr(patches, original))
    return YOLO


class YoloDetector:
    """Person boxes from an ultralytics YOLO model (YOLOv8/11/... detection checkpoints).

    Args:
        model: a known detector name (``posetrack weights list``, e.g. "yolo11n") or the path of
            an ultralytics ``.pt`` checkpoint.
        config: thresholds and input size.
        device: "cpu", "cuda", "cuda:1", or a torch.device.
        weights_dir: the weights cache folder for a known name (default: see ``weights``).
    """

    def __init__(self, model: str | Path = "yolo11n", config: DetectorConfig = DetectorConfig(),
                 device="cpu", weights_dir=None):
        from .weights import resolve

        self.config = config
        self.path = resolve(model, weights_dir, kind="detector")  # fails at once when offline
        import torch

        self.device = torch.device(device)
        self.half = bool(config.half and self.device.type == "cuda")
        YOLO = _import_yolo()
        try:
            self._yolo = YOLO(str(self.path), task="detect")
        except Exception as err:  # ultralytics raises many types for a bad file; name the file
            raise PosetrackError(f"{self.path}: cannot load it as an ultralytics YOLO checkpoint "
                                 f"({type(err).__name__}: {err})") from err
        if self._yolo.task not in ("detect", "segment", "pose"):
            raise PosetrackError(f"{self.path}: a YOLO {self._yolo.task} model, expected a detection model")
        names = dict(self._yolo.names)
        matches = [index for index, name in names.items() if name == config.person_class]
        if not matches:
            shown = ", ".join(f"{i}: {n}" for i, n in list(names.items())[:10])
            raise PosetrackError(f"{self.path}: the model has no class named "
                                 f"{config.person_class!r} (its classes: {shown}"
                                 f"{', ...' if len(names) > 10 else ''}); set person_class")
        self.person_index = int(matches[0])

    def __call__(self, image_bgr: np.ndarray, frame_id: int | None = None) -> Detections:
        return self.detect_batch([image_bgr])[0]

    def detect_batch(self, images_bgr: Sequence[np.ndarray],
                     frame_ids: Sequence[int] | None = None) -> list[Detections]:
        """Detect people in several frames in one network call (faster on a GPU)."""
        images = [_check_image(image) for image in images_bgr]
        if not images:
            return []
        c = self.config
        with keep_thread_settings():  # its first predict sets torch's thread count
            results = self._yolo.predict(
                images, conf=c.floor, iou=c.nms_iou, imgsz=c.image_size,
                max_det=c.max_detections, classes=[self.person_index], device=str(self.device),
                half=self.half, verbose=False)
        return [self._detections(result) for result in results]

    @staticmethod
    def _detections(result) -> Detections:
        boxes = result.boxes
        detections = Detections(boxes.xyxy.float().cpu().numpy(), boxes.conf.float().cpu().numpy())
        return _sorted_by_score(detections)


# ---------------------------------------------------------------------------------------------
# Precomputed detections


class PrecomputedDetections:
    """Person boxes read from a file instead of computed.

    Args:
        by_image_id: image id -> Detections (what ``formats.read_detections`` returns).
        min_score: boxes scoring below this are dropped (files often hold boxes down to 0.05).
        image_ids: image id of each frame, by frame index; None when the file's image ids are the
            0-based frame indices (videos). For a PoseTrack frame folder whose file uses the GT
            image ids, pass them in frame order.
        max_detections: most boxes kept per frame, the highest-scoring ones (as the detector's
            own ``max_detections``): a file with thousands of boxes in a frame costs no more than
            this many. None: no limit.
        source: the file the boxes came from, for messages.

    A frame without entries in the file has no people (an empty ``Detections``).
    """

    def __init__(self, by_image_id: Mapping[int, Detections], min_score: float = 0.0,
                 image_ids: Sequence[int] | None = None, max_detections: int | None = None,
                 source: str = "the detections"):
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must lie in [0, 1], got {min_score!r}")
        if max_detections is not None and max_detections < 1:
            raise ValueError(f"max_detections must be >= 1 or None, got {max_detections!r}")
        self.min_score = float(min_score)
        self.source = str(source)
        self._by_image_id = {int(k): _top(v[v.scores >= self.min_score], max_detections)
                             for k, v in by_image_id.items()}
        self._frame_to_image = None if image_ids is None else [int(i) for i in image_ids]

    @classmethod
    def from_file(cls, path, min_score: float = 0.0, image_ids: Sequence[int] | None = None,
                  max_detections: int | None = None) -> "PrecomputedDetections":
        """Read a COCO detection-results JSON ({image_id, category_id, bbox, score} list)."""
        from .formats import read_detections

        return cls(read_detections(path), min_score, image_ids, max_detections, source=str(path))

    def check_frames(self, num_frames: int, clip="the clip") -> None:
        """Raise PosetrackError unless the file's image ids are frames of a clip of
        ``num_frames`` frames (the 0-based indices, or the ``image_ids`` given): ids beyond the
        clip are named (the first few), and a file none of whose ids is a frame is almost surely
        the wrong file. A file without any entry passes (no people anywhere)."""
        valid = set(range(num_frames)) if self._frame_to_image is None \
            else set(self._frame_to_image[:num_frames])
        ids = self.image_ids
        if not ids:
            return
        outside = [i for i in ids if i not in valid]
        if not outside:
            return
        what = (f"the frame indices 0-{num_frames - 1} of {clip}" if self._frame_to_image is None
                else f"the {len(valid)} image ids of {clip}'s annotations")
        shown = ", ".join(map(str, outside[:5])) + (f" (and {len(outside) - 5} more)" if len(outside) > 5 else "")
        if len(outside) == len(ids):
            raise PosetrackError(f"{self.source}: none of its image ids is a frame of {clip} (its ids "
                                 f"{shown}; expected {what}): detections of another clip?")
        raise PosetrackError(f"{self.source}: image ids {shown} are not among {what}")

    @property
    def image_ids(self) -> list[int]:
        """The image ids that have at least one entry in the file (sorted)."""
        return sorted(self._by_image_id)

    def get(self, image_id: int) -> Detections:
        """The boxes of one image id (empty if the file has none)."""
        found = self._by_image_id.get(int(image_id))
        return Detections.empty() if found is None else found

    def image_id_of(self, frame_id: int) -> int:
        """The image id the file uses for frame ``frame_id``."""
        if self._frame_to_image is None:
            return int(frame_id)
        if not 0 <= frame_id < len(self._frame_to_image):
            raise PosetrackError(f"frame {frame_id} has no image id: {len(self._frame_to_image)} "
                                 "image ids were given")
        return self._frame_to_image[frame_id]

    def __call__(self, image_bgr: np.ndarray | None = None, frame_id: int | None = None) -> Detections:
        if frame_id is None:
            raise TypeError("precomputed detections need the frame_id of the image")
        return self.get(self.image_id_of(frame_id))

    def detect_batch(self, images_bgr: Sequence[np.ndarray] | None = None,
                     frame_ids: Sequence[int] | None = None) -> list[Detections]:
        if frame_ids is None:
            raise TypeError("precomputed detections need the frame_ids of the images")
        return [self(None, frame_id) for frame_id in frame_ids]

"""Running the pipeline on clips: load the models once, track a clip, write its outputs.

``run_clip`` handles one video or frame folder (``posetrack run``); ``run_batch`` a folder of
clips (``posetrack batch``), resumable: a clip whose output exists is skipped, so a killed batch
picks up where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .checks import setting, validate
from .config import section
from .detection import DetectorConfig
from .errors import PosetrackError
from .fileio import check_outputs
from .flow import FlowConfig
from .formats import PoseTrackVideo, read_posetrack, video_from_frames, write_tracks
from .pipeline import FrameInputs, PipelineConfig, StageTimes, filter_output, iter_tracked
from .smoothing import SmoothingConfig
from .tracker import Tracker, TrackerConfig
from .transforms import BOX_PADDING

log = logging.getLogger(__name__)

DEFAULT_POSE_MODEL = "res50-posetrack18-256x192"
DEFAULT_DETECTOR = "yolo11n"
# Frames per detection/flow chunk when pipeline.frame_batch is 0. CPU: scripts/benchmark.py
# measured no gain from larger chunks with DIS and precomputed boxes (see README "Speed"), and a
# chunk holds K decoded frames; GPU: batching the detector and RAFT over 8 frames is the setting
# scripts/gpu_check.sh measures against 1 (not yet run on a GPU).
CPU_FRAME_BATCH = 1
GPU_FRAME_BATCH = 8


def default_frame_batch(device: str) -> int:
    """Frames per detection/flow chunk when the setting is 0 (by device)."""
    return CPU_FRAME_BATCH if str(device) == "cpu" else GPU_FRAME_BATCH


@dataclass(frozen=True)
class ModelSpec:
    """Which models to use and where to run them (names, paths and devices, nothing loaded)."""

    pose_model: str = setting(DEFAULT_POSE_MODEL, (
        "Pose network: a registered name (posetrack weights list), a .pth/.pt SimpleBaseline "
        "checkpoint or an .onnx heatmap model. ResNet-50 is the paper's; smaller or ONNX models "
        "are faster on a CPU, less accurate."))
    detector: str = setting(DEFAULT_DETECTOR, (
        "Person detector: a registered YOLO name or an ultralytics .pt file. Larger models find "
        "more small and occluded people, slower. Not used with --detections."))
    device: str = setting("auto", (
        "Where the networks run: auto (the first GPU if there is one, else the CPU), cpu, cuda "
        "or cuda:N."), kind="device")
    weights_dir: str | None = setting(None, (
        "Weights cache folder; none: $POSETRACK_WEIGHTS_DIR, else ~/.cache/posetrack/weights."),
        kind="dir")
    weights_mirror: str | None = setting(None, (
        "Base URL of a mirror holding the weights files under their published names, tried "
        "before the publisher's host (for when it is down); none: $POSETRACK_WEIGHTS_MIRROR."))

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True)
class PoseConfig:
    """Settings of the pose stage: accuracy against time and memory."""

    flip_test: bool = setting(True, (
        "Average the heatmaps of each crop and its mirror image: about 1 AP more accurate (COCO, "
        "SimpleBaseline), twice the pose-network work."))
    half: bool = setting(False, (
        "Half precision for the pose network on a GPU (torch checkpoints): faster, keypoints "
        "within a fraction of a pixel. Ignored on a CPU."), option="pose-half")
    precision: str = setting("fp32", (
        "Number format of the pose network on a GPU (torch checkpoints): fp32; fp16 (the same as "
        "--pose-half); bf16 (fp16's speed on tensor cores with fp32's range). 16-bit: about "
        "twice as fast, keypoints within a fraction of a pixel. Ignored on a CPU."),
        choices=("fp32", "fp16", "bf16"), option="pose-precision")
    cuda_graphs: bool = setting(False, (
        "Replay the pose network as captured CUDA graphs (padded batch sizes 8-128), so a "
        "frame's crops cost one launch instead of one per layer: less launch overhead with many "
        "small batches, memory for each captured size. Off until measured on a GPU "
        "(scripts/gpu_check.sh). Ignored on a CPU."))
    max_batch: int = setting(64, (
        "Most crops per pose-network call. Lower: bounds GPU memory in crowds; higher: fewer "
        "calls (a little faster on a GPU)."), low=1, option="max-pose-batch")
    box_padding: float = setting(BOX_PADDING, (
        "How much each person box is enlarged (after padding to the network's aspect ratio) "
        "before the crop is cut; the original's 1.25. Higher: limbs outside the box stay in "
        "view, fewer pixels per person; lower: the reverse."), low=0.0, low_open=True)

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True)
class RunSettings:
    """Every setting of ``posetrack run`` / ``batch``, one section per stage: the YAML file's
    sections and the groups of ``--help``."""

    models: ModelSpec = section(ModelSpec, "Models")
    detection: DetectorConfig = section(DetectorConfig, "Detection")
    flow: FlowConfig = section(FlowConfig, "Flow")
    pose: PoseConfig = section(PoseConfig, "Pose")
    pipeline: PipelineConfig = section(PipelineConfig, "Pipeline")
    tracker: TrackerConfig = section(TrackerConfig, "Tracker")
    smoothing: SmoothingConfig = section(SmoothingConfig, "Smoothing")


# YAML keys of earlier versions -> their place now (read with a warning)
RENAMED_KEYS = {
    **{f"run.{key}": f"models.{key}" for key in ("pose_model", "detector", "device", "weights_dir")},
    "run.detections": "detection.detections", "run.flow": "flow.method",
    "run.flow_scale": "flow.scale", "run.flip_test": "pose.flip_test", "run.pose_half": "pose.half",
    "run.max_pose_batch": "pose.max_batch", "run.smooth": "smoothing.enabled",
    **{f"detector.{f.name}": f"detection.{f.name}" for f in fields(DetectorConfig)},
    "detector.score_threshold": "detection.min_score",
    "pipeline.detection_min_score": "detection.min_score",
    "pipeline.output_box_threshold": "detection.min_score",
}
# command-line names of earlier versions -> the setting now (read with a warning)
RENAMED_OPTIONS = {"score-threshold": "detection.min_score",
                   "output-box-threshold": "detection.min_score", "half": "detection.half"}


@dataclass
class Models:
    """The loaded stages, shared by every clip of a batch."""

    estimator: object
    flow: object | None
    detector: object | None  # None when detections are precomputed
    device: str
    sync: object | None = None


def pick_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is usable, else 'cpu'; other values are checked and kept."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PosetrackError(f"--device {device}: no CUDA GPU is available here; use cpu or auto")
    if not (device == "cpu" or device.startswith("cuda")):
        raise PosetrackError(f"--device must be auto, cpu or cuda[:N], got {device!r}")
    return device


def load_models(settings: RunSettings = RunSettings()) -> Models:
    """Load the pose model, the flow method and (unless detections are precomputed) the detector."""
    from .flow import flow_from_config
    from .pose import load_pose_estimator

    spec, pose = settings.models, settings.pose
    if spec.weights_mirror:
        from .weights import use_mirror

        use_mirror(spec.weights_mirror)
    device = pick_device(spec.device)
    gpu = device != "cpu"
    estimator = load_pose_estimator(spec.pose_model, device, flip_test=pose.flip_test,
                                    half=pose.half and gpu, box_padding=pose.box_padding,
                                    weights_dir=spec.weights_dir,
                                    precision=pose.precision if gpu and not pose.half else None,
                                    cuda_graphs=pose.cuda_graphs and gpu)
    flow = flow_from_config(settings.flow, device, spec.weights_dir)
    detector = None
    if settings.detection.detections is None:
        from .detection import YoloDetector

        detector = YoloDetector(spec.detector, settings.detection, device=device,
                                weights_dir=spec.weights_dir)
    sync = None
    if device.startswith("cuda"):
        import torch

        def sync():  # the calling thread's stream only: a worker's chunk may run beside it
            torch.cuda.current_stream().synchronize()
    return Models(estimator, flow, detector, device, sync)


@dataclass
class RunSummary:
    """What a run did, for the closing report."""

    clip: str
    frames: int
    people: int
    tracks: int
    seconds: float
    stage_ms: dict = field(default_factory=dict)
    output: str = ""
    stopped: str = ""  # why a live run ended before its input did ("Ctrl-C", "the window closed")

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def lines(self) -> list[str]:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        output = "standard output" if self.output == "-" else self.output
        lines = [f"{self.clip}: {self.frames} frames, {self.people} people, {self.tracks} tracks "
                 f"-> {output}",
                 f"time per frame (ms): {stages}; overall {self.fps:.2f} frames/s"]
        if self.stopped:
            lines.insert(0, f"stopped by {self.stopped}; kept the {self.frames} frames tracked")
        return lines


@dataclass(frozen=True)
class FrameRange:
    """Which frames of the input to track: ``start <= frame < end``, at most ``max_frames``."""

    start: int = 0
    end: int | None = None
    max_frames: int | None = None


def _open_clip(input_path, annotations, frames: FrameRange = FrameRange()):
    """-> (frame source, PoseTrack annotations or None)."""
    from .video import frames_for_posetrack, open_frames

    if annotations is None:
        return open_frames(input_path).select(frames.start, frames.end, frames.max_frames), None
    if frames != FrameRange():
        raise PosetrackError("--start, --end and --max-frames cannot be combined with --annotations "
                             "(the output must list every frame of the annotation file)")
    gt = read_posetrack(annotations)
    if not Path(input_path).is_dir():
        raise PosetrackError(f"{input_path}: --annotations pairs a frame folder with a PoseTrack "
                             "file; this is not a folder")
    return frames_for_posetrack(input_path, gt), gt


def _detect_fn(models: Models, detections_file, gt: PoseTrackVideo | None, min_score: float,
               max_detections: int, num_frames: int | None, clip: str):
    """``detect_batch(indices, images) -> list[Detections]``: the detector's boxes (one network
    call for the chunk), or the file's boxes for those frames (by the annotation file's image id
    when there is one, else by frame index) scoring ``min_score`` or more (the detector applies
    its ``floor`` itself), at most ``max_detections`` of them. A file's image ids are checked
    against the clip."""
    if detections_file is None:
        return lambda indices, images: models.detector.detect_batch(images, indices)
    from .detection import PrecomputedDetections

    image_ids = None if gt is None else [image.image_id for image in gt.images]
    detections = PrecomputedDetections.from_file(detections_file, min_score, image_ids=image_ids,
                                                 max_detections=max_detections)
    if image_ids is not None or num_frames is not None:
        detections.check_frames(len(image_ids) if image_ids is not None else num_frames, clip)
    return lambda indices, images: detections.detect_batch(images, indices)


def batched_estimate(estimator, max_batch: int):
    """``estimate(image, boxes) -> Poses`` over chunks of at most ``max_batch`` boxes.

    The frame is uploaded to the estimator's device once (``pose.image_to_tensor``) and every
    chunk cuts its crops from that copy; on a CPU the "upload" is a view of the same array.
    """
    from .frame import Poses
    from .pose import image_to_tensor

    def estimate(image, boxes):
        if len(boxes) <= max_batch:
            return estimator(image, boxes)
        device = getattr(estimator, "device", None)
        if device is not None:
            image = image_to_tensor(image, device)
        return Poses.concatenate([estimator(image, boxes[i:i + max_batch])
                                  for i in range(0, len(boxes), max_batch)])
    return estimate


class DeviceFrames:
    """``upload(image) -> tensor``: each frame's device copy, made once.

    Remembers the last ``keep`` frames (the flow stage sees a chunk of frames and the one
    before it, the pose stage each frame of the chunk, and a worker may be uploading the next
    chunk meanwhile), so on a GPU the flow and the pose crops share one upload per frame. Frames
    are recognised by identity: meant for a decoder that hands out a new array per frame, as
    ``open_frames`` does. Safe to call from two threads.
    """

    def __init__(self, device, keep: int = 2):
        import threading

        self.device = device
        self.keep = max(int(keep), 1)
        self._copies: list = []  # [(array, tensor)], oldest first
        self._lock = threading.Lock()

    def __call__(self, image):
        with self._lock:
            for array, tensor in self._copies:
                if array is image:
                    return tensor
        from .pose import image_to_tensor

        tensor = image_to_tensor(image, self.device)
        with self._lock:
            self._copies = self._copies[len(self._copies) + 1 - self.keep:] + [(image, tensor)]
        return tensor


def stage_functions(models: Models, max_pose_batch: int, detect_batch=None, frame_batch: int = 1,
                    overlap: bool = False, times: StageTimes | None = None):
    """``(inputs, estimate)`` for ``iter_tracked``: the chunked detection and flow
    (:class:`pipeline.FrameInputs`, whose flows are flow-field objects kept at the resolution
    and on the device they were computed at; the tracker samples them at the joints, so no
    full-size field reaches the host) and the pose stage.

    On a GPU with RAFT, flow and pose crops share each frame's one device copy, RAFT takes the
    chunk's K pairs as one batch, and with ``overlap`` the next chunk is prepared on a second
    CUDA stream.
    """
    estimate = batched_estimate(models.estimator, max_pose_batch)
    flow, stream = models.flow, None
    flow_batch = None
    if flow is not None:
        def flow_batch(images):
            return [flow.field(a, b) for a, b in zip(images, images[1:])]
    if flow is not None and str(models.device).startswith("cuda") and hasattr(flow, "fields"):
        import torch

        from .flow import DeviceFlowField

        upload = DeviceFrames(models.device, keep=2 * frame_batch + 2)
        pose_estimate = estimate

        def flow_batch(images):  # noqa: F811  (the GPU version of the above)
            size = images[0].shape[:2]
            return [DeviceFlowField(f, size) for f in flow.fields([upload(i) for i in images])]

        def estimate(image, boxes):
            return pose_estimate(upload(image), boxes)
        stream = torch.cuda.Stream(models.device) if overlap else None
    if detect_batch is None:
        detect_batch = _detect_fn(models, None, None, 0.0, 0, None, "")
    return FrameInputs(detect_batch, flow_batch, frame_batch, overlap, times, stream), estimate


def clip_outputs(out_path, render_path=None, out_format: str | None = None) -> list[tuple]:
    """The ``(path, role)`` outputs of one clip, for ``fileio.check_outputs``."""
    named = out_format is not None and str(out_path) != "-"  # --format: any extension
    return [(out_path, "file" if named else "tracks"), (render_path, "overlay")]


def run_clip(input_path, out_path, models: Models, settings: RunSettings = RunSettings(), *,
             annotations=None, detections_file=None, out_format: str | None = None,
             render_path=None, progress: bool = True, frames: FrameRange = FrameRange(),
             show: bool = False, lines_in_place: bool = True, on_frame=None) -> RunSummary:
    """Track the people of one clip and write the tracks (and optionally an overlay video).

    Args:
        input_path: a video file, a folder of frames, a camera index ("0") or a stream URL.
        out_path: the tracks file: .json (PoseTrack 2018) and .csv written atomically at the
            end; .jsonl (or "-", standard output) one line per frame, flushed as it is tracked.
        annotations: a PoseTrack file for a frame folder: the output then repeats its images
            (file names, ids, frame count), so ``posetrack eval`` pairs it with the ground truth,
            and precomputed detections are looked up by its image ids.
        detections_file: COCO detection results to use instead of the detector.
        render_path: also write an overlay video there (.mp4 H.264, .webm VP9).
        settings: the stages' settings; ``settings.smoothing.enabled`` smooths the written
            (and drawn) keypoints over time with the One-Euro filter. A PoseTrack output records
            them in its ``info``.
        frames: the frame range to track.
        show: show the overlay in a window as it is tracked (where there is a display; else one
            warning and no window). q or Esc in the window stops the run as Ctrl-C does.
        lines_in_place: write a JSON Lines output under its name as it grows (so it can be
            followed); False: to a temporary file renamed when complete, like the other formats
            (``batch``, whose resume takes an existing output as complete).
        on_frame: called (no arguments) after each frame, e.g. to count frames across workers.

    A live source (camera, URL) stopped by Ctrl-C (or the window) keeps what was tracked: the
    outputs are written as if the stream had ended there. Any other source stopped by Ctrl-C
    raises KeyboardInterrupt and writes nothing.
    """
    from tqdm import tqdm

    from .formats import JsonLinesWriter, tracks_format

    check_outputs(clip_outputs(out_path, render_path, out_format),
                  inputs=[input_path, annotations, detections_file])
    out_format = tracks_format(out_path, out_format)
    source, gt = _open_clip(input_path, annotations, frames)
    # a live source has no known length: its detections cannot be checked against it
    num_frames = None if source.live else len(source.file_names)
    detect_batch = _detect_fn(models, detections_file, gt, settings.detection.floor,
                              settings.detection.max_detections, num_frames, str(input_path))
    times = StageTimes(models.sync)
    # a live source is tracked frame by frame, in the loop, unless asked otherwise: a chunk, or
    # a frame read ahead by the worker, would delay it
    frame_batch = settings.pipeline.frame_batch or (1 if source.live else default_frame_batch(models.device))
    inputs, estimate = stage_functions(
        models, settings.pose.max_batch,
        detect_batch, frame_batch,
        overlap=not source.live, times=times)
    smoother = None
    if settings.smoothing.enabled:
        from .smoothing import TrackSmoother

        smoother = TrackSmoother(settings.smoothing, source.fps)
    start = time.perf_counter()
    indices, output, stopped = [], [], ""
    people, track_ids = 0, set()
    # On any error the overlay's temporary file is discarded and no tracks file is written.
    with contextlib.ExitStack() as stack:
        stack.enter_context(source)
        lines = stack.enter_context(JsonLinesWriter(out_path, in_place=lines_in_place)) \
            if out_format == "jsonl" else None
        writer = window = None
        if render_path is not None or show:
            from .render import draw_poses
        if render_path is not None:
            from .video import VideoWriter

            writer = stack.enter_context(VideoWriter(render_path, source.fps, source.size))
        if show:
            window = _open_window(source)
            if window is not None:
                stack.callback(window.close)
        bar = stack.enter_context(tqdm(total=source.total, unit="frame", desc=source.name,
                                       disable=not progress, leave=False))
        stop = StopRequest()
        if source.live:
            stack.enter_context(stop.on_ctrl_c())
        # a stop ends the decoding and also the frames the worker prepared ahead of the loop
        tracked = iter_tracked(stop.frames(source), None, estimate, None, Tracker(settings.tracker),
                               settings.pipeline, times, min_score=settings.detection.min_score,
                               inputs=lambda frames: stop.frames(inputs(frames)))
        try:
            for index, image, poses in tracked:
                poses = filter_output(poses, settings.pipeline)
                if smoother is not None:
                    poses = smoother(poses, index)
                indices.append(index)
                people += len(poses)
                track_ids.update(int(i) for i in poses.track_ids)
                if lines is not None:
                    lines.write(index, index / source.fps, poses,
                                source.capture_time(index) if source.live else None)
                else:
                    output.append(poses)
                if writer is not None or window is not None:
                    drawn = draw_poses(image, poses)
                    if writer is not None:
                        writer.write(drawn)
                    if window is not None and not window.show(drawn):
                        stop("the window closed")
                bar.update(1)
                if on_frame is not None:
                    on_frame()
        except KeyboardInterrupt:  # a second Ctrl-C on a stream: keep the frames already final
            if not source.live:
                raise
            stop("Ctrl-C")
        finally:
            tracked.close()
        stopped = stop.reason
        total = source.total
        if not stopped and total is not None and source.frames_read < total:
            log.warning("%s: only %d of %d frames could be decoded; the tracks cover those",
                        input_path, source.frames_read, total)
        if gt is not None and len(indices) != len(gt.images):
            raise PosetrackError(f"{input_path}: decoded {len(indices)} frames but {annotations} "
                                 f"has {len(gt.images)}; the output would not pair with it")
    seconds = time.perf_counter() - start

    summary = RunSummary(
        clip=source.name, frames=len(indices), people=people, tracks=len(track_ids),
        seconds=seconds, stage_ms=times.ms_per_frame(len(indices)), output=str(out_path),
        stopped=stopped)
    if out_format != "jsonl":
        if gt is not None:
            heads = [np.full((len(p), 4), np.nan, np.float32) for p in output]
            video = PoseTrackVideo(gt.images, output, heads)
        else:
            video = video_from_frames([source.file_name(i) for i in indices], output, indices)
        video.info = run_info(source, summary, asdict(settings), models.device)
        write_tracks(out_path, video, out_format)
    return summary


class StopRequest:
    """Ends a run at a frame boundary, so the frames the pipeline still holds are finished and
    written: asked by the ``--show`` window, or by Ctrl-C on a live source (:meth:`on_ctrl_c`; a
    second Ctrl-C interrupts at once). :meth:`frames` passes frames on until a stop is asked."""

    def __init__(self):
        self.reason = ""

    def __call__(self, reason: str) -> None:
        self.reason = self.reason or reason

    def frames(self, source):
        for item in source:
            yield item
            if self.reason:
                return

    @contextlib.contextmanager
    def on_ctrl_c(self):
        """While inside, the first Ctrl-C (SIGINT) asks to stop instead of interrupting."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread can take signals
            return

        def ask(signum, frame):
            if self.reason:
                raise KeyboardInterrupt
            self("Ctrl-C")
            log.warning("Ctrl-C: finishing the frames in the pipeline and writing what was tracked "
                        "(Ctrl-C again to stop at once)")

        previous = signal.signal(signal.SIGINT, ask)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def run_info(source, summary: RunSummary, settings: dict, device: str) -> dict:
    """The ``info`` a PoseTrack output of ``posetrack run`` carries (read by ``posetrack report``):
    what was tracked, with which settings, and where the time went."""
    from datetime import datetime, timezone
    from importlib.metadata import PackageNotFoundError, version

    try:
        package_version = version("posetrack")
    except PackageNotFoundError:
        package_version = None
    return {
        "description": "tracks written by posetrack run",
        "version": package_version,
        "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": str(source.path), "fps": source.fps, "width": source.size[0],
        "height": source.size[1], "live": source.live,
        "frame_range": [source.start, source.stop], "frames": summary.frames,
        "stopped": summary.stopped or None, "device": device,
        "seconds": round(summary.seconds, 3),
        "stage_ms_per_frame": {k: round(v, 3) for k, v in summary.stage_ms.items()},
        "settings": settings,
    }


def _open_window(source):
    """A window for ``--show``, or None (with one warning) where no window can be shown."""
    from .video import FrameWindow, display_problem

    problem = display_problem()
    if problem is not None:
        log.warning("--show: %s; tracking without a window", problem)
        return None
    return FrameWindow(f"posetrack: {source.name} (q: stop)", source.size)


# ---------------------------------------------------------------------------------------------
# Batch: the plan (which clips, which outputs) and the per-clip job are shared by both engines,
# the built-in loop below and the Ray workers of ``posetrack.cluster``.


@dataclass(frozen=True)
class ClipJob:
    """One clip of a batch: where it is, where its tracks go, and what the batch looks up and
    writes for every clip (plain data: the Ray engine sends it to a worker)."""

    clip: Path
    out_path: Path
    annotations_dir: str | None = None  # PoseTrack files, one per frame-folder clip
    out_format: str | None = None
    render_path: Path | None = None  # its overlay video
    frames: FrameRange = FrameRange()  # the frame range tracked of every clip

    @property
    def name(self) -> str:
        return clip_name(self.clip)


@dataclass
class JobResult:
    """What became of one clip: a summary (done), skipped (its output exists), or a failure reason."""

    name: str
    summary: RunSummary | None = None
    skipped: bool = False
    failure: str | None = None


@dataclass
class BatchReport:
    done: list = field(default_factory=list)  # RunSummary per clip processed now
    skipped: list = field(default_factory=list)  # clip names whose output already existed
    failed: list = field(default_factory=list)  # (clip name, reason)
    placed: dict = field(default_factory=dict)  # clip name -> the Ray node that tracked it

    def add(self, result: JobResult, on_clip=None) -> None:
        """Record a clip's result; ``on_clip(summary)`` is called for a clip tracked now."""
        if result.failure is not None:
            self.failed.append((result.name, result.failure))
        elif result.skipped:
            self.skipped.append(result.name)
        else:
            self.done.append(result.summary)
            if on_clip is not None:
                on_clip(result.summary)


def find_clips(folder) -> list[Path]:
    """The clips of a folder: its video files and its subfolders that hold frame images,
    in name order."""
    from .video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    folder = Path(folder)
    if not folder.is_dir():
        raise PosetrackError(f"{folder}: no such folder")
    clips = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            clips.append(path)
        elif path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir()):
            clips.append(path)
    if not clips:
        raise PosetrackError(f"{folder}: no videos and no folders of frames in it")
    return clips


def clip_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def file_for_clip(folder, name: str, what: str) -> Path:
    """``folder/<name>.json``, or the one file in ``folder`` named ``*_<name>.json``."""
    folder = Path(folder)
    exact = folder / f"{name}.json"
    if exact.is_file():
        return exact
    candidates = sorted(folder.glob(f"*_{name}.json"))
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise PosetrackError(f"{folder}: several {what} files could be for clip {name}: "
                             f"{', '.join(c.name for c in candidates)}")
    raise PosetrackError(f"{folder}: no {what} file for clip {name} (expected {name}.json)")


def batch_output(out_dir, clip: Path, out_format: str | None = None) -> Path:
    """Where ``posetrack batch`` writes the tracks of ``clip``."""
    suffix = {"csv": ".csv", "csv-joints": ".csv", "jsonl": ".jsonl"}.get(out_format, ".json")
    return Path(out_dir) / f"{clip_name(clip)}{suffix}"


def batch_overlay(render_dir, clip: Path) -> Path | None:
    """Where ``posetrack batch --render DIR`` writes the overlay of ``clip`` (None without DIR)."""
    return None if render_dir is None else Path(render_dir) / f"{clip_name(clip)}.mp4"


def check_batch_outputs(clips_dir, out_dir, detections_dir=None, annotations_dir=None,
                        out_format: str | None = None, render_dir=None) -> list[Path]:
    """Check a batch's outputs before any clip runs (``fileio.check_outputs``): the output folder
    exists and is writable, it is not the detections or annotations folder (whose
    ``<clip>.json`` files the outputs would replace), and no two clips write the same file
    (``a.mp4`` and a frame folder ``a``; an overlay over a clip). Returns the clips."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise PosetrackError(f"{out_dir}: the output folder does not exist")
    for folder, what in ((detections_dir, "--detections"), (annotations_dir, "--annotations")):
        if folder is not None and Path(folder).resolve() == out_dir.resolve():
            raise PosetrackError(f"{out_dir}: the output folder is also the {what} folder; the "
                                 "outputs would replace its files")
    clips = find_clips(clips_dir)
    check_outputs([(batch_output(out_dir, clip, out_format), "tracks") for clip in clips]
                  + [(batch_overlay(render_dir, clip), "overlay") for clip in clips], inputs=clips)
    return clips


def plan_batch(clips_dir, out_dir, settings: RunSettings = RunSettings(), *, annotations_dir=None,
               out_format: str | None = None, render_dir=None,
               frames: FrameRange = FrameRange()) -> tuple[list[ClipJob], BatchReport]:
    """The clips of ``clips_dir`` still to track, in name order, and a report that lists as
    skipped those whose output already exists (outputs are written atomically, so an existing
    file is complete: a rerun resumes a killed batch). The outputs are checked first
    (``check_batch_outputs``), which also removes temporary files that a killed run left."""
    clips = check_batch_outputs(clips_dir, out_dir, settings.detection.detections,
                                annotations_dir, out_format, render_dir)
    jobs, report = [], BatchReport()
    for clip in clips:
        job = ClipJob(clip, batch_output(out_dir, clip, out_format), annotations_dir, out_format,
                      batch_overlay(render_dir, clip), frames)
        if job.out_path.exists():
            report.skipped.append(job.name)
            log.info("%s: output %s exists, skipped", job.name, job.out_path)
        else:
            jobs.append(job)
    return jobs, report


def failure_reason(err: BaseException) -> str:
    """One line for the batch summary: a PosetrackError's own message, else the type and text."""
    return str(err) if isinstance(err, PosetrackError) else f"{type(err).__name__}: {err}"


def run_job(job: ClipJob, models: Models, settings: RunSettings = RunSettings(), *,
            progress: bool = True, on_frame=None) -> JobResult:
    """Track one clip of a batch: look up its detections and annotations, track it, write its
    output; a failure of the clip (a corrupt video, a missing detections file) becomes the
    result's reason instead of an exception. The one per-clip function of both engines.

    A clip whose output exists by now is skipped (never tracked twice), e.g. on a Ray worker
    retrying a clip whose first worker died after writing it.
    """
    if job.out_path.exists():
        return JobResult(job.name, skipped=True)
    try:
        folder = settings.detection.detections
        detections = None if folder is None else file_for_clip(folder, job.name, "detection")
        annotations = (None if job.annotations_dir is None
                       else file_for_clip(job.annotations_dir, job.name, "annotation"))
        summary = run_clip(job.clip, job.out_path, models, settings, annotations=annotations,
                           detections_file=detections, out_format=job.out_format,
                           render_path=job.render_path, frames=job.frames, lines_in_place=False,
                           progress=progress, on_frame=on_frame)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # one bad clip must not end a batch of hundreds
        reason = failure_reason(err)
        log.error("%s failed: %s", job.name, reason, exc_info=not isinstance(err, PosetrackError))
        return JobResult(job.name, failure=reason)
    return JobResult(job.name, summary=summary)


def run_batch(clips_dir, out_dir, models: Models, settings: RunSettings = RunSettings(), *,
              annotations_dir=None, out_format: str | None = None, progress: bool = True,
              on_clip=None, render_dir=None, frames: FrameRange = FrameRange()) -> BatchReport:
    """Track every clip of ``clips_dir`` into ``out_dir/<clip>.json`` (or .csv, .jsonl), one
    after the other in this process (the built-in engine; ``cluster.run_batch_ray`` is the Ray
    one).

    A clip whose output file already exists is skipped; a clip that fails is reported and the
    batch goes on. ``settings.detection.detections``, when set, is a folder with one detection
    file per clip. With ``render_dir``, each clip's overlay video goes to
    ``render_dir/<clip>.mp4``; ``frames`` selects the same frame range of every clip.
    ``on_clip(summary)`` is called after each clip tracked.
    """
    jobs, report = plan_batch(clips_dir, out_dir, settings, annotations_dir=annotations_dir,
                              out_format=out_format, render_dir=render_dir, frames=frames)
    for job in jobs:
        report.add(run_job(job, models, settings, progress=progress), on_clip)
    return report

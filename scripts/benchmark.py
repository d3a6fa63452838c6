"""Speed of the whole pipeline on a real clip, against two baselines measured in the same run.

Runs posetrack (decode ahead, precomputed detections, flow, one batched pose forward per frame,
tracking, output writing) on the first ``--frames`` frames of a video after ``--warmup`` frames
of warm-up, and prints the milliseconds per frame of each stage, end-to-end frames per second
and peak memory. On the same frames, in the same process, it then runs:

* ``naive``: the same method written the obvious way: frames decoded in the loop, one person at
  a time (a ``cv2.warpAffine`` crop, a batch-1 forward, flip test as a second batch-1 forward,
  numpy decoding), the flow at full resolution;
* ``yolo_pose_bytetrack``: ultralytics YOLO-pose with its ByteTrack tracker
  (``model.track(frame, persist=True, tracker="bytetrack.yaml")``), the tool a user would
  otherwise pick. It is built from its YAML with random weights (nothing to download), which
  find nobody; so the tracker still does a crowd's work, each frame's real detections are put
  into its results just before ByteTrack runs (box count real, network cost real).

Speed does not depend on weight values, so the pose networks have random weights too; the
detections file keeps the person count real. Our speed is printed as a ratio to each baseline.

    python scripts/benchmark.py [--frames 30] [--warmup 5] [--pose-model resnet18|resnet50|M.onnx]
        [--pose-runtime torch|onnxruntime] [--flow dis|raft-small|none] [--flow-scale 0.5]
        [--device cpu|cuda] [--threads N] [--repeats 3] [--micro] [--json OUT.json]

``--micro`` also times the pose stage alone (crops + network + decode, flip test on and off)
against the bare network forward on the same batch of crops, and prints the overhead ratio.
Needs the ``lap`` package for ultralytics' ByteTrack (``pip install -e '.[bench]'``); without it
that baseline is reported as skipped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from posetrack import transforms
from posetrack.detection import DetectorConfig, PrecomputedDetections, keep_thread_settings
from posetrack.flow import make_flow
from posetrack.formats import video_from_frames, write_tracks
from posetrack.frame import NO_TRACK, Poses
from posetrack.joints import COCO17, POSETRACK17, coco_to_posetrack
from posetrack.pipeline import FrameInputs, PipelineConfig, StageTimes, filter_output, track_frames
from posetrack.pose import (IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, OnnxBackend, PoseEstimator,
                            PoseEstimatorConfig, TorchBackend, calibration_crops, crop_boxes,
                            decode_heatmaps_torch, default_network_batch, image_to_tensor)
from posetrack.posenet import PoseNetConfig, SimpleBaseline, export_onnx, quantize_onnx
from posetrack.run import Models, default_frame_batch, stage_functions
from posetrack.tracker import Tracker
from posetrack.video import open_frames

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"
DEFAULT_VIDEO = ASSETS / "videos" / "openpose_video.avi"
RESNETS = {f"resnet{d}": d for d in (18, 34, 50, 101, 152)}
# Variants of our pipeline (--variants), each timed in the same rounds as the main run:
VARIANTS = {
    "k1": "--frame-batch 1 (detection and flow frame by frame)",
    "serial": "no worker thread (chunks prepared in the loop)",
    "dense-flow": "the flow resized to full size on the host and sampled there (as before)",
    "int8": "the ONNX pose model quantised to int8 (calibrated on the clip)",
}


# ---------------------------------------------------------------------------------------------
# Models


def build_backend(name: str, runtime: str, device: str, precision: str, channels_last: bool,
                  threads: int | None, network_batch: int | None, folder: Path,
                  graphs: bool = False):
    """A pose backend with random weights (a ResNet name) or an ONNX file; returns (backend, layout)."""
    if name.endswith(".onnx"):
        backend = OnnxBackend(name, device=device, threads=threads, max_batch=network_batch)
        layout = POSETRACK17 if backend.joint_layout == "posetrack17" else COCO17
        return backend, layout
    if name not in RESNETS:
        raise SystemExit(f"--pose-model must be one of {sorted(RESNETS)} or an .onnx file, got {name!r}")
    torch.manual_seed(0)
    model = SimpleBaseline(PoseNetConfig(depth=RESNETS[name], input_size_hw=(256, 192)))
    if runtime == "onnxruntime":
        path = export_onnx(model, folder / f"{name}.onnx")
        return OnnxBackend(path, device=device, threads=threads, max_batch=network_batch), COCO17
    return TorchBackend(model, device=device, precision=precision, channels_last=channels_last,
                        max_batch=network_batch, graphs=graphs), COCO17


def int8_copy(backend, video: Path, detections, folder: Path, crops: int, threads, network_batch):
    """The ONNX backend's model quantised to int8, calibrated on ``crops`` crops of the clip."""
    def frames():
        for index, image in decode_in_loop(video, 10 ** 6):
            if index % 10 == 0:
                yield image, detections(image, index).boxes_xyxy
    path = quantize_onnx(backend.path, folder / "int8.onnx",
                         calibration_crops(frames(), backend.input_size_hw, crops))
    return OnnxBackend(path, device="cpu", threads=threads, max_batch=network_batch)


def random_yolo_detector(name: str, folder: Path, device: str):
    """An ultralytics detector built from its YAML (random weights, nothing downloaded), saved as
    a checkpoint and loaded through posetrack's ``YoloDetector``. Random weights cost the same
    time as trained ones (its NMS sees few boxes, a small part of the time)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-config-"))
    from posetrack.detection import YoloDetector

    with keep_thread_settings():
        from ultralytics import YOLO

        model = YOLO(f"{name}.yaml")
    path = folder / f"{name}_random.pt"
    model.save(str(path))
    return YoloDetector(path, DetectorConfig(person_class=str(model.names[0])), device=device)


def naive_estimator(backend, layout, flip_test: bool):
    """The pose stage written person by person: cv2 crop, batch-1 forward(s), numpy decode."""
    h, w = backend.input_size_hw
    mean = np.asarray(IMAGENET_MEAN_RGB, np.float32)
    std = np.asarray(IMAGENET_STD_RGB, np.float32)

    def forward(crop_rgb):
        tensor = torch.from_numpy(np.ascontiguousarray(crop_rgb.transpose(2, 0, 1)))[None]
        return backend(tensor).cpu().numpy()

    def estimate(image, detections):
        keypoints, scores = [], []
        for box in detections.boxes_xyxy:
            center, scale = transforms.box_to_center_scale(box[None], (h, w))
            matrix = transforms.affine_matrices(center, scale, (w, h))[0]
            crop = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            rgb = (crop[:, :, ::-1].astype(np.float32) / 255.0 - mean) / std
            heatmaps = forward(rgb)
            if flip_test:
                heatmaps = transforms.merge_flip_heatmaps(heatmaps, forward(rgb[:, ::-1]),
                                                          layout.flip_permutation)
            coords, score = transforms.decode_heatmaps(heatmaps)
            size_wh = (heatmaps.shape[3], heatmaps.shape[2])
            keypoints.append(transforms.heatmap_to_image(coords, center, scale, size_wh)[0])
            scores.append(score[0])
        n = len(keypoints)
        if n == 0:
            return Poses.empty()
        kp, sc = np.asarray(keypoints, np.float32), np.asarray(scores, np.float32)
        if layout == COCO17:
            kp, sc = coco_to_posetrack(kp, sc)
        return Poses(detections.boxes_xyxy, detections.scores, kp, sc, np.full(n, NO_TRACK, np.int64))
    return estimate


class Counting:
    """Wraps ``estimate`` and counts the boxes it was given."""

    def __init__(self, estimate):
        self.estimate, self.boxes, self.calls = estimate, 0, 0

    def __call__(self, image, boxes):
        self.boxes += len(boxes)
        self.calls += 1
        return self.estimate(image, boxes)


# ---------------------------------------------------------------------------------------------
# Runs


def decode_in_loop(video: Path, frames: int):
    """(index, image) pairs read with OpenCV inside the loop (no decoding ahead); the clip starts
    again from its first frame when it ends, the index counting on."""
    capture = cv2.VideoCapture(str(video))
    try:
        index = 0
        while index < frames:
            ok, image = capture.read()
            if not ok:
                if index == 0:
                    return
                capture.release()
                capture = cv2.VideoCapture(str(video))
                continue
            yield index, image
            index += 1
    finally:
        capture.release()


def looped(video: Path, frames: int, clip_frames: int):
    """``(index, image)`` for ``frames`` frames, decoded ahead in a thread (``open_frames``), the
    clip started again from its first frame when it ends; the index counts on."""
    index = 0
    while index < frames:
        with open_frames(video) as source:
            for _, image in itertools.islice(source, min(clip_frames, frames - index)):
                yield index, image
                index += 1


def run_pipeline(frames_iter, file_names, detect, estimate, flow, sync, config, out_path,
                 inputs=None):
    """Track, filter and write; returns (seconds, stage ms per frame, frames)."""
    times = StageTimes(sync)
    if inputs is not None:
        inputs = inputs(times)
    start = time.perf_counter()
    results = track_frames(frames_iter, detect, estimate, flow, Tracker(), config, times, inputs)
    write_start = time.perf_counter()
    output = [filter_output(poses, config) for poses in results]
    names = [file_names[i % len(file_names)] for i in range(len(output))]
    write_tracks(out_path, video_from_frames(names, output))
    end = time.perf_counter()
    stages = times.ms_per_frame(len(results))
    stages["write"] = 1000 * (end - write_start) / max(len(results), 1)
    return end - start, stages, len(results)


def ours(args, video, inputs, estimate, sync, config, out_path, frames):
    """Our pipeline as ``posetrack run`` wires it; frames decoded ahead in a thread (the clip
    looped when ``frames`` exceeds it); ``inputs(times) -> FrameInputs``."""
    with open_frames(video) as source:
        names, clip_frames = source.file_names, len(source)
    return run_pipeline(looped(video, frames, clip_frames), names, None, estimate, None, sync,
                        config, out_path, inputs)


def naive(args, video, detect, estimate, flow, sync, config, out_path, frames):
    """The naive baseline: the same loop, frames decoded in it."""
    names = [f"{i:06d}.jpg" for i in range(frames)]
    return run_pipeline(decode_in_loop(video, frames), names, detect, estimate, flow, sync,
                        config, out_path)


def interleaved(methods: dict, repeats: int, frames: int, after_first=None) -> dict:
    """Run every method ``repeats`` times, round-robin (ours, naive, yolo, ours, ...), so a change
    in the machine's load hits all of them alike; per method: the median-fps run's numbers.

    ``methods``: name -> ``run(frames) -> (seconds, stage ms per frame or None, frames, extra)``.
    ``after_first(name)`` is called after each method's first run (memory readings).
    """
    runs = {name: [] for name in methods}
    for round_ in range(repeats):
        for name, run in methods.items():
            load = os.getloadavg()[0]
            seconds, stages, count, extra = run(frames)
            runs[name].append({"fps": count / seconds, "stages_ms": stages, "frames": count,
                               "load_avg_1min": load, **extra})
            if round_ == 0 and after_first is not None:
                after_first(name)
    summary = {}
    for name, results in runs.items():
        ordered = sorted(results, key=lambda r: r["fps"])
        middle = dict(ordered[len(ordered) // 2])
        middle["fps_runs"] = [r["fps"] for r in results]
        middle["load_avg_1min"] = [r["load_avg_1min"] for r in results]
        if middle["stages_ms"] is None:
            del middle["stages_ms"]
        summary[name] = middle
    return summary


def yolo_pose_bytetrack(video: Path, warmup: int, detections, min_score: float, device: str):
    """ultralytics YOLO-pose + ByteTrack (see the module docstring), warmed up; returns
    ``run(frames)`` for :func:`interleaved`, or the reason it cannot run (a string)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-config-"))
    try:
        import lap  # noqa: F401  (ByteTrack's assignment; ultralytics would try to pip-install it)
        with keep_thread_settings():  # else its import and device pick slow the other methods
            from ultralytics import YOLO
    except ImportError as err:
        return f"{err} (pip install -e '.[bench]')"

    current = {"boxes": torch.zeros((0, 6))}

    def real_people(predictor):
        # Random weights find nobody: give ByteTrack this frame's real detections instead.
        for result in predictor.results:
            boxes = current["boxes"]
            result.update(boxes=boxes, keypoints=torch.zeros((len(boxes), 17, 3)))

    def boxes_of(index):
        found = detections(None, index)
        found = found[found.scores >= min_score]
        return torch.from_numpy(np.concatenate([
            found.boxes_xyxy, found.scores[:, None], np.zeros((len(found), 1))], axis=1).astype(np.float32))

    model = YOLO("yolo11n-pose.yaml")  # random weights, built offline
    model.add_callback("on_predict_postprocess_end", real_people)  # runs before ByteTrack's
    with keep_thread_settings():  # the same threads as ours in the timed runs
        for index, image in decode_in_loop(video, max(warmup, 1)):
            current["boxes"] = boxes_of(index)
            model.track(image, persist=True, tracker="bytetrack.yaml", verbose=False, device=device)

    def run(frames):
        model.predictor.trackers[0].reset()
        tracked = 0
        start = time.perf_counter()
        count = 0
        for index, image in decode_in_loop(video, frames):  # decoded in the loop, as a user's script
            current["boxes"] = boxes_of(index)
            result = model.track(image, persist=True, tracker="bytetrack.yaml", verbose=False,
                                 device=device)[0]
            tracked += len(result.boxes)
            count += 1
        seconds = time.perf_counter() - start
        return seconds, None, count, {"tracked_people_per_frame": tracked / max(count, 1)}
    return run


# ---------------------------------------------------------------------------------------------
# Micro-benchmark: the pose stage against the bare network forward


def timed(call, repeats: int) -> float:
    """Median milliseconds of ``call()`` over ``repeats`` runs, after one warm-up run."""
    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples)


def micro(estimator: PoseEstimator, image: np.ndarray, boxes: np.ndarray, repeats: int) -> dict:
    """Pose stage (crops + network + decode) vs the network alone on the same crops."""
    backend = estimator.backend
    h, w = backend.input_size_hw
    centers, scales = transforms.box_to_center_scale(boxes, (h, w))
    matrices = transforms.affine_matrices(centers, scales, (w, h))
    frame = image_to_tensor(image, estimator.device)
    crops = crop_boxes(frame, matrices, (h, w))
    out = {"boxes": len(boxes)}
    for flip in (False, True):
        estimator.config = PoseEstimatorConfig(flip_test=flip)
        batch = torch.cat([crops, crops.flip(3)]) if flip else crops
        stage = timed(lambda: estimator.keypoints(image, boxes), repeats)
        bare = timed(lambda: backend(batch), repeats)
        crop = timed(lambda: crop_boxes(image_to_tensor(image, estimator.device), matrices, (h, w)), repeats)
        heatmaps = backend(batch)
        decode = timed(lambda: [t.cpu() for t in decode_heatmaps_torch(heatmaps)], repeats)
        out["flip" if flip else "no_flip"] = {
            "crops_in_batch": len(batch), "stage_ms": stage, "network_ms": bare, "crop_ms": crop,
            "decode_ms": decode, "overhead_ratio": stage / bare}
    return out


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--detections", type=Path, default=None,
                        help="COCO detection results (default: the assets file named like the video)")
    parser.add_argument("--frames", type=int, default=30, help="timed frames (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up frames before timing")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each method (median)")
    parser.add_argument("--pose-model", default="resnet18",
                        help=f"{', '.join(RESNETS)} (random weights) or an .onnx file")
    parser.add_argument("--pose-runtime", choices=("torch", "onnxruntime"), default="torch",
                        help="for a ResNet: torch, or exported to ONNX and run on ONNX Runtime")
    parser.add_argument("--flow", choices=("dis", "raft-small", "raft-large", "none"), default="dis")
    parser.add_argument("--flow-scale", type=float, default=0.5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-flip-test", dest="flip_test", action="store_false")
    parser.add_argument("--half", action="store_true", help="float16 pose network (CUDA); "
                        "the same as --precision fp16")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32",
                        help="torch pose network precision (fp16/bf16: CUDA)")
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="torch pose network as captured CUDA graphs (padded batch sizes)")
    parser.add_argument("--frame-batch", type=int, default=None,
                        help="frames per detection/flow chunk (default: posetrack's for the device)")
    parser.add_argument("--no-overlap", action="store_true",
                        help="prepare chunks in the loop, not in a worker thread")
    parser.add_argument("--detector", default=None,
                        help="also run this ultralytics detector (from its YAML, random weights: "
                             "e.g. yolo11n) on every frame, timed; the pose stage still gets the "
                             "file's boxes")
    parser.add_argument("--variants", default="",
                        help=f"comma-separated variants of our pipeline run in the same rounds "
                             f"and reported as ratios: {', '.join(VARIANTS)}")
    parser.add_argument("--int8-crops", type=int, default=128,
                        help="calibration crops for --variants int8")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="torch pose network in NCHW order (default: channels last, as posetrack run)")
    parser.add_argument("--network-batch", type=int, default=None,
                        help="crops per network call (default: posetrack's choice for the device; 0: all)")
    parser.add_argument("--max-pose-batch", type=int, default=64, help="boxes per pose-stage call")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch / ONNX Runtime threads (default: physical cores)")
    parser.add_argument("--cv2-threads", type=int, default=None,
                        help="cv2.setNumThreads (default: OpenCV's own)")
    parser.add_argument("--baselines", default="naive,yolo",
                        help="comma-separated: naive, yolo; 'none' for our pipeline only")
    parser.add_argument("--micro", action="store_true", help="also run the pose-stage micro-benchmark")
    parser.add_argument("--micro-repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    return parser.parse_args(argv)


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def main(argv=None) -> dict:
    args = parse_args(argv)
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    detections_path = args.detections or ASSETS / "detections" / f"{args.video.stem}.json"
    min_score = DetectorConfig().min_score  # as posetrack run filters the boxes
    capture = cv2.VideoCapture(str(args.video))
    clip_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 10 ** 9
    capture.release()
    file_detections = PrecomputedDetections.from_file(detections_path, min_score)

    def detections(image, index):  # a looped clip's frame k has frame k % clip_frames's boxes
        return file_detections(image, index % clip_frames)
    detect = lambda index, image: detections(image, index)  # noqa: E731
    config = PipelineConfig()
    device = args.device
    cuda = device.startswith("cuda")
    sync = (lambda: torch.cuda.current_stream().synchronize()) if cuda else None  # noqa: E731
    baselines = {b for b in args.baselines.split(",") if b and b != "none"}
    variants = [v for v in args.variants.split(",") if v and v != "none"]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"--variants: unknown {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    folder = Path(tempfile.mkdtemp(prefix="posetrack-bench-"))
    network_batch = (default_network_batch(device) if args.network_batch is None
                     else args.network_batch or None)
    precision = "fp16" if args.half else args.precision
    backend, layout = build_backend(args.pose_model, args.pose_runtime, device, precision,
                                    args.channels_last, args.threads, network_batch, folder,
                                    graphs=args.cuda_graphs)
    estimator = PoseEstimator(backend, layout, PoseEstimatorConfig(flip_test=args.flip_test))
    flow_model = None if args.flow == "none" else make_flow(args.flow, device=device, scale=args.flow_scale)
    frame_batch = args.frame_batch or default_frame_batch(device)
    detect_batch = lambda indices, images: [detections(None, k) for k in indices]  # noqa: E731
    detector_note = None
    if args.detector:  # the detector runs (and is timed) on every frame; the file's boxes are used
        detector_note = f"{args.detector} (random weights, timed; pose on the file's boxes)"
        yolo = random_yolo_detector(args.detector, folder, device)

        def detect_batch(indices, images):  # noqa: F811
            yolo.detect_batch(images, indices)
            return [detections(None, k) for k in indices]
    models = Models(estimator, flow_model, None, device, sync)

    def pipeline_inputs(k, overlap, dense_flow=False, model=models):
        """``times -> (FrameInputs, estimate)`` as ``posetrack run`` wires them."""
        def make(times):
            inputs, estimate = stage_functions(model, args.max_pose_batch, detect_batch, k,
                                               overlap, times)
            if dense_flow and flow_model is not None:  # the full-size field, as before
                inputs.flow_batch = lambda images: [flow_model(a, b) for a, b in zip(images, images[1:])]
            make.estimate = counting_wrap(estimate)
            return inputs
        return make

    counting = Counting(None)

    def counting_wrap(estimate):
        counting.estimate = estimate
        return counting

    def pipeline_run(make_inputs, out_name):
        def run(frames):
            def estimate(image, boxes):
                return make_inputs.estimate(image, boxes)
            return ours(args, args.video, make_inputs, estimate, sync, config, folder / out_name,
                        frames) + ({},)
        return run

    report = {
        "network_batch": network_batch,
        "frame_batch": frame_batch,
        "precision": precision if not args.pose_model.endswith(".onnx") and args.pose_runtime == "torch" else "fp32",
        "detector": detector_note,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "physical_cores": physical_cores(),
                    "torch_threads": torch.get_num_threads(), "cv2_threads": cv2.getNumThreads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "gpu": torch.cuda.get_device_name(device) if cuda else None},
    }
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    print(f"warm-up: {args.warmup} frames per method; timing {args.frames} frames of "
          f"{args.video.name}, {args.repeats} round(s); load average {os.getloadavg()[0]:.2f}",
          file=sys.stderr)

    run_ours = pipeline_run(pipeline_inputs(frame_batch, not args.no_overlap), "ours.json")
    run_ours(args.warmup)
    methods = {"posetrack": run_ours}
    for variant in variants:
        if variant == "k1":
            run = pipeline_run(pipeline_inputs(1, not args.no_overlap), "k1.json")
        elif variant == "serial":
            run = pipeline_run(pipeline_inputs(frame_batch, False), "serial.json")
        elif variant == "dense-flow":
            run = pipeline_run(pipeline_inputs(frame_batch, not args.no_overlap, dense_flow=True),
                               "dense.json")
        else:  # int8
            if not isinstance(backend, OnnxBackend):
                raise SystemExit("--variants int8 needs an ONNX pose model (an .onnx file or "
                                 "--pose-runtime onnxruntime)")
            print(f"quantising to int8 ({args.int8_crops} calibration crops)", file=sys.stderr)
            int8 = PoseEstimator(int8_copy(backend, args.video, detections, folder,
                                           args.int8_crops, args.threads, network_batch),
                                 layout, PoseEstimatorConfig(flip_test=args.flip_test))
            run = pipeline_run(pipeline_inputs(frame_batch, not args.no_overlap,
                                               model=Models(int8, flow_model, None, device, sync)),
                               "int8.json")
        run(args.warmup)
        methods[variant] = run
    skipped = {}
    if "naive" in baselines:
        naive_flow = None if args.flow == "none" else make_flow(args.flow, device=device, scale=1.0)
        slow = naive_estimator(backend, layout, args.flip_test)

        def run_naive(frames):
            return naive(args, args.video, detect, slow, naive_flow, sync, config,
                         folder / "naive.json", frames) + ({},)
        run_naive(args.warmup)
        methods["naive"] = run_naive
    if "yolo" in baselines:
        run_yolo = yolo_pose_bytetrack(args.video, args.warmup, detections,
                                       min_score, device)
        if isinstance(run_yolo, str):
            skipped["yolo_pose_bytetrack"] = {"skipped": run_yolo}
        else:
            methods["yolo_pose_bytetrack"] = run_yolo
    memory = {}

    def read_memory(name):
        if name == "posetrack":  # ours runs first: the peak so far is ours (and model loading)
            memory["host_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            memory["gpu_peak_allocated_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20
                                               if cuda else None)

    counting.boxes = counting.calls = 0
    results = interleaved(methods, args.repeats, args.frames, read_memory)
    report.update(results.pop("posetrack"))
    report["pose_boxes_per_frame"] = counting.boxes / max(counting.calls, 1)
    report["memory"] = memory
    report["variants"] = {name: results.pop(name) for name in variants}
    for row in report["variants"].values():
        row["ours_over_variant"] = report["fps"] / row["fps"]
    report["baselines"] = {**results, **skipped}
    if args.micro:
        print("micro-benchmark: pose stage vs network forward", file=sys.stderr)
        image = next(iter(decode_in_loop(args.video, 1)))[1]
        boxes = detections(image, 0)
        boxes = boxes[boxes.scores >= min_score].boxes_xyxy
        report["micro"] = micro(estimator, image, boxes, args.micro_repeats)
        estimator.config = PoseEstimatorConfig(flip_test=args.flip_test)
    for name, variant in report["variants"].items():
        print(f"variant {name}: {VARIANTS[name]}", file=sys.stderr)
    for base in report["baselines"].values():
        if "fps" in base:
            base["ours_over_baseline"] = report["fps"] / base["fps"]
    report["load_avg_1min_end"] = os.getloadavg()[0]
    report["machine"]["threads_end"] = {"torch": torch.get_num_threads(), "cv2": cv2.getNumThreads()}
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return report


def print_report(report: dict) -> None:
    config = report["config"]
    pose = config["pose_model"] + ("" if config["pose_model"].endswith(".onnx") else f" ({config['pose_runtime']})")
    print(f"posetrack: {pose}, flip test {'on' if config['flip_test'] else 'off'}, "
          f"channels last {config['channels_last']}, network batch {report['network_batch']}, flow "
          f"{config['flow']} at scale {config['flow_scale']}, device {config['device']}, "
          f"precision {report['precision']}, frame batch {report['frame_batch']}"
          f"{'' if config['no_overlap'] else ' (prepared in a worker thread)'}, "
          f"torch threads {report['machine']['torch_threads']}"
          + (f", detector {report['detector']}" if report["detector"] else ""))
    print(f"frames {report['frames']}, pose boxes per frame {report['pose_boxes_per_frame']:.1f}, "
          f"load average {', '.join(f'{x:.2f}' for x in report['load_avg_1min'])} -> "
          f"{report['load_avg_1min_end']:.2f}")
    rows = ([("posetrack", report)] + [(f"variant {name}", v) for name, v in report["variants"].items()]
            + [(name, b) for name, b in report["baselines"].items()])
    stages = list(report["stages_ms"])
    print(f"{'method':<22}" + "".join(f"{s:>9}" for s in stages) + f"{'fps':>9}{'ours/it':>9}")
    for name, row in rows:
        if "skipped" in row:
            print(f"{name:<22}skipped: {row['skipped']}")
            continue
        cells = "".join(f"{row['stages_ms'][s]:9.1f}" if s in row.get("stages_ms", {}) else f"{'':>9}"
                        for s in stages)
        ratio = row.get("ours_over_baseline", row.get("ours_over_variant"))
        ratio = f"{ratio:9.2f}" if ratio is not None else f"{'':>9}"
        print(f"{name:<22}{cells}{row['fps']:9.2f}{ratio}")
    print("(stage columns: ms per frame; fps runs: "
          + "; ".join(f"{n} {', '.join(f'{x:.2f}' for x in r['fps_runs'])}" for n, r in rows if "fps_runs" in r) + ")")
    memory = report["memory"]
    gpu = memory["gpu_peak_allocated_mb"]
    print(f"peak memory: host RSS {memory['host_peak_rss_mb']:.0f} MB"
          + (f", GPU allocated {gpu:.0f} MB" if gpu is not None else " (no GPU)"))
    if "micro" in report:
        m = report["micro"]
        print(f"pose stage vs bare network forward, {m['boxes']} boxes of frame 0:")
        for key in ("no_flip", "flip"):
            r = m[key]
            print(f"  {key:<8} {r['crops_in_batch']:3d} crops: stage {r['stage_ms']:.1f} ms, network "
                  f"{r['network_ms']:.1f} ms, crops {r['crop_ms']:.1f} ms, decode {r['decode_ms']:.1f} ms"
                  f" -> overhead ratio {r['overhead_ratio']:.3f}")


if __name__ == "__main__":
    main()

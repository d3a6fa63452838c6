"""Throughput of `posetrack batch`: the built-in engine against the Ray engine with 1 and 2 workers.

Runs the same batch (by default three real sample videos of ../shared/assets with their
precomputed detections and the small MobileNetV2 ONNX pose model) with each engine setting, in
turns, each into a fresh output folder, and prints wall time, frames per second and clips per
hour, each as a ratio to the built-in engine measured in the same run. One local Ray instance
serves every Ray run; its start is timed separately. Outputs of every run are compared with the
built-in engine's (every field but ``info``, which records timings).

    .venv/bin/python scripts/bench_batch.py [--rounds 1] [--settings builtin ray:1x2 ray:1x1 ray:2x1]
        [--clips DIR --detections DIR --pose-model PATH] [--json out.json]

A Ray setting ``ray:NxC`` is N workers of C cores each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
# 67, 45 and 5 frames: two workers can at best finish in the time of the longest (1.75x)
DEFAULT_CLIPS = ["intel_preview_classroom.mp4", "intel_preview_store-aisle-detection.mp4",
                 "mmpose_demo.mp4"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", help="folder of clips (default: three sample videos of ../shared/assets)")
    parser.add_argument("--detections", help="folder of <clip>.json detections (default: the samples')")
    parser.add_argument("--pose-model", default=str(SHARED / "models/mobilenetv2_simplepose_coco17_256x192.onnx"))
    parser.add_argument("--settings", nargs="+", default=["builtin", "ray:1x2", "ray:1x1", "ray:2x1"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    from posetrack.cluster import RayConfig, run_batch_ray
    from posetrack.detection import DetectorConfig
    from posetrack.flow import FlowConfig
    from posetrack.run import ModelSpec, RunSettings, load_models, run_batch
    from posetrack.video import count_frames

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    clips = Path(args.clips) if args.clips else work / "clips"
    if not args.clips:
        clips.mkdir()
        for name in DEFAULT_CLIPS:
            (clips / name).symlink_to(SHARED / "videos" / name)
    detections = args.detections or str(SHARED / "detections")
    settings = RunSettings(models=ModelSpec(pose_model=args.pose_model, device="cpu"),
                           detection=DetectorConfig(detections=detections),
                           flow=FlowConfig(method="dis"))
    frames = sum(count_frames(p) for p in clips.iterdir())
    print(f"{len(list(clips.iterdir()))} clips, {frames} frames; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")

    start = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False,
             log_to_driver=False)
    ray_start = time.perf_counter() - start
    print(f"Ray instance started in {ray_start:.1f} s (not counted below)")

    times: dict[str, list[float]] = {s: [] for s in args.settings}
    reference = None
    for round_index in range(args.rounds):
        for setting in args.settings:
            out = work / f"out-{round_index}-{setting.replace(':', '-')}"
            out.mkdir()
            load = os.getloadavg()[0]
            start = time.perf_counter()
            if setting == "builtin":
                report = run_batch(clips, out, load_models(settings), settings, progress=False)
            else:
                workers, cpus = (int(v) for v in setting.split(":")[1].split("x"))
                report = run_batch_ray(clips, out, settings,
                                       RayConfig(workers=workers, cpus_per_worker=cpus), progress=False)
            seconds = time.perf_counter() - start
            assert not report.failed, report.failed
            # every field but info (when, where and how fast it was tracked)
            outputs = {p.name: {k: v for k, v in json.loads(p.read_bytes()).items() if k != "info"}
                       for p in out.iterdir()}
            reference = reference or outputs
            same = outputs == reference
            times[setting].append(seconds)
            print(f"round {round_index + 1} {setting:8s} {seconds:7.1f} s  {frames / seconds:6.2f} "
                  f"frames/s  (load {load:.1f}; outputs {'identical' if same else 'DIFFERENT'})")
            if not same:
                sys.exit("outputs differ from the first setting's")

    base = statistics.median(times[args.settings[0]])
    results = {}
    print(f"\nmedian of {args.rounds} round(s); models loaded inside each run; ratios to {args.settings[0]}")
    for setting, values in times.items():
        seconds = statistics.median(values)
        results[setting] = {"seconds": seconds, "fps": frames / seconds,
                            "clips_per_hour": 3600 * len(list(clips.iterdir())) / seconds,
                            "speedup": base / seconds}
        print(f"{setting:8s} {seconds:7.1f} s  {frames / seconds:6.2f} frames/s  "
              f"{results[setting]['clips_per_hour']:7.0f} clips/h  {base / seconds:.2f}x")
    ray.shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps({"frames": frames, "ray_start_s": ray_start,
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()

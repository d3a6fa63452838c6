"""Tracking-quality benchmark: our tracker under several settings and two baselines, on seeded
synthetic scenes (synthetic/, at the repository root), scored by the PoseTrack evaluator (posetrack.evaluation).

    .venv/bin/python scripts/bench_tracking.py                    # 5 scene kinds x 3 scenes
    .venv/bin/python scripts/bench_tracking.py --quick            # 1 scene each, fewer settings
    .venv/bin/python scripts/bench_tracking.py --scenes 6 --seed 1 --json bench.json

Every method sees the same scenes, detections and pose-estimator answers; they differ only in
the tracker (and so in which flow-propagated boxes are offered for pose estimation). Methods:

* ``flow-OKS``: ``Tracker(TrackerConfig())`` with the flow field (the paper's method, our
  defaults); ``<name>=<value>``: the same with one setting changed (a sweep around the defaults);
* ``OKS, no flow``: the same tracker given no flow (poses are matched where they were);
* ``box IoU``: greedy box IoU to the previous frame, no memory, no propagation.

The table gives, per scene kind and over all scenes, MOTA, ID switches (summed over the 15
evaluated joints, as the MOT counts are per joint), precision and recall (MOT) and mAP. A last
section shows the One-Euro smoothing of the default tracker's output: joint jitter (mean
|second difference| of a joint's position over three consecutive frames of a track, pixels; GT
for reference) and its mAP / MOTA.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from posetrack.evaluation import evaluate_sequences
from posetrack.evaluation import metrics
from posetrack.evaluation.load import load_sequences, pair_files
from posetrack.formats import PoseTrackVideo, write_posetrack18
from posetrack.smoothing import SmoothingConfig, smooth_tracks
from posetrack.tracker import Tracker, TrackerConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scene generator: top-level, not installed
import synthetic  # noqa: E402

FPS = 25.0  # the synthetic clips' frame rate (PoseTrack videos are 25-30 fps)

# One-at-a-time sweeps around the defaults: the values each setting is tried with.
SWEEPS = {
    "memory_frames": (1, 4, 8, 16, 24, 32),
    "min_similarity": (0.05, 0.1, 0.2, 0.3, 0.4),
    "joint_threshold": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
    "propagate_min_score": (0.2, 0.3, 0.4, 0.5, 0.6),
    "min_hits": (1, 2, 3),
    "duplicate_oks": (0.5, 0.7, 1.0),
    "refind_frames": (0, 25, 50, 75),
    "refind_min_similarity": (0.2, 0.3, 0.5),
    "refind_gate_growth": (0.0, 0.05, 0.1),
}
QUICK_SWEEPS = {
    "memory_frames": (8, 32),
    "min_similarity": (0.05, 0.4),
    "joint_threshold": (0.1, 0.6),
    "propagate_min_score": (0.2, 0.6),
}


@dataclass(frozen=True)
class Method:
    label: str
    make: Callable[[], object]  # a fresh tracker for one scene
    use_flow: bool
    config: TrackerConfig | None = None


def methods(sweeps) -> list[Method]:
    defaults = TrackerConfig()
    paper = dataclasses.replace(defaults, match_last_seen=False, hidden_velocity=False)
    follow = dataclasses.replace(defaults, hidden_velocity=False)
    out = [
        Method("flow-OKS", lambda: Tracker(defaults), True, defaults),
        Method("OKS, no flow", lambda: Tracker(defaults), False, defaults),
        Method("flow-OKS, warped only (paper)", lambda c=paper: Tracker(c), True, paper),
        Method("flow-OKS, hidden follow flow", lambda c=follow: Tracker(c), True, follow),
        Method("box IoU", synthetic.IouTracker, False),
    ]
    for name, values in sweeps.items():
        for value in values:
            if value == getattr(defaults, name):
                continue
            config = dataclasses.replace(defaults, **{name: value})
            out.append(Method(f"{name}={value}", lambda c=config: Tracker(c), True, config))
    return out


def summarise(result) -> dict:
    """Overall numbers of one evaluation (percent; switches summed over joints)."""
    scores = result.total
    counts = scores.mot
    return {
        "mota": metrics.joint_mean(scores.mota_per_joint),
        "id_switches": int(counts.switches.sum()),
        "precision": metrics.joint_mean(scores.precision_per_joint),
        "recall": metrics.joint_mean(scores.recall_per_joint),
        "map": metrics.joint_mean(scores.ap_per_joint),
    }


def evaluate_folder(gt_dir: Path, pred_dir: Path, kinds) -> dict:
    """{kind: summary, ..., "all": summary} for one method's prediction folder."""
    sequences = load_sequences(pair_files(gt_dir, pred_dir), workers=1)
    out = {kind: summarise(evaluate_sequences([s for s in sequences if s.name.startswith(kind)]))
           for kind in kinds}
    out["all"] = summarise(evaluate_sequences(sequences))
    return out


def jitter(video: PoseTrackVideo) -> float:
    """Mean |x[t+1] - 2 x[t] + x[t-1]| (pixels) over every joint present in three consecutive
    frames of the same track."""
    total, count = 0.0, 0
    rows = [{int(t): i for i, t in enumerate(p.track_ids)} for p in video.poses]
    for k in range(1, len(video.poses) - 1):
        for track, i in rows[k].items():
            if track not in rows[k - 1] or track not in rows[k + 1]:
                continue
            a = video.poses[k - 1].keypoints_xy[rows[k - 1][track]]
            b = video.poses[k].keypoints_xy[i]
            c = video.poses[k + 1].keypoints_xy[rows[k + 1][track]]
            accel = np.hypot(*(c - 2 * b + a).T)
            accel = accel[~np.isnan(accel)]
            total, count = total + float(accel.sum()), count + len(accel)
    return total / count if count else float("nan")


def true_jitter(scene: synthetic.Scene) -> float:
    """The same measure on the true motion of the visible labelled joints (every frame)."""
    xy = np.where(scene.hidden[..., None], np.nan, scene.keypoints_xy)
    accel = np.hypot(*(xy[2:] - 2 * xy[1:-1] + xy[:-2]).transpose(3, 0, 1, 2))
    return float(np.nanmean(accel))


def run(args) -> dict:
    sweeps = {} if args.no_sweeps else QUICK_SWEEPS if args.quick else SWEEPS
    if args.sweep:
        sweeps = {}
        for item in args.sweep:
            name, _, values = item.partition("=")
            kind = type(getattr(TrackerConfig(), name))
            sweeps[name] = tuple(kind(v) for v in values.split(","))
    scenes_per_kind = args.scenes if args.scenes is not None else (1 if args.quick else 3)
    all_methods = methods(sweeps)
    smoothing = SmoothingConfig()
    rng = np.random.default_rng(args.seed)
    kinds = synthetic.SCENE_KINDS
    started = time.perf_counter()
    jitters = {"ground truth": [], "flow-OKS": [], "flow-OKS + One-Euro": []}
    with tempfile.TemporaryDirectory(prefix="bench_tracking_") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        gt_dir = root / "gt"
        pred_dirs = [root / f"pred{m:02d}" for m in range(len(all_methods))]
        smooth_dir = root / "pred_smoothed"
        for folder in [gt_dir, smooth_dir, *pred_dirs]:
            folder.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            for i in range(scenes_per_kind):
                name = f"{kind}_{i:02d}"
                scene = synthetic.make_scene(synthetic.SceneSpec(kind), rng, name)
                truth = synthetic.ground_truth(scene)
                write_posetrack18(gt_dir / f"{name}.json", truth)
                outputs = synthetic.run_trackers(scene, [m.make() for m in all_methods],
                                                 [m.use_flow for m in all_methods])
                for folder, tracked in zip(pred_dirs, outputs):
                    write_posetrack18(folder / f"{name}.json", synthetic.prediction_video(truth, tracked))
                default = synthetic.prediction_video(truth, outputs[0])
                smoothed = smooth_tracks(default, smoothing, FPS)
                write_posetrack18(smooth_dir / f"{name}.json", smoothed)
                jitters["ground truth"].append(true_jitter(scene))
                jitters["flow-OKS"].append(jitter(default))
                jitters["flow-OKS + One-Euro"].append(jitter(smoothed))
                print(f"  {name}: {scene.num_people} people, {scene.num_frames} frames "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        results = {}
        for method, folder in zip(all_methods, pred_dirs):
            results[method.label] = {
                "flow": method.use_flow,
                "config": None if method.config is None else dataclasses.asdict(method.config),
                "scores": evaluate_folder(gt_dir, folder, kinds),
            }
        smoothed_scores = evaluate_folder(gt_dir, smooth_dir, kinds)
    return {
        "seed": args.seed,
        "scenes_per_kind": scenes_per_kind,
        "frames_per_scene": synthetic.SceneSpec("crossing").num_frames,
        "kinds": list(kinds),
        "defaults": dataclasses.asdict(TrackerConfig()),
        "methods": results,
        "smoothing": {
            "config": dataclasses.asdict(smoothing),
            "fps": FPS,
            "jitter_px": {k: float(np.nanmean(v)) for k, v in jitters.items()},
            "scores_without": results["flow-OKS"]["scores"]["all"],
            "scores_with": smoothed_scores["all"],
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def format_report(report: dict) -> str:
    kinds = report["kinds"]
    head = (f"{'method':24s} {'MOTA':>5s} {'IDSW':>5s} {'Prec':>5s} {'Rec':>5s} {'mAP':>5s} | "
            + " ".join(f"{k[:11]:>11s}" for k in kinds))
    lines = [f"seed {report['seed']}, {report['scenes_per_kind']} scene(s) per kind, "
             f"{report['frames_per_scene']} frames each; per kind: MOTA/IDSW", head, "-" * len(head)]
    for label, entry in report["methods"].items():
        s = entry["scores"]
        a = s["all"]
        lines.append(f"{label:24s} {a['mota']:5.1f} {a['id_switches']:5d} {a['precision']:5.1f} "
                     f"{a['recall']:5.1f} {a['map']:5.1f} | "
                     + " ".join(f"{s[k]['mota']:5.1f}/{s[k]['id_switches']:<5d}" for k in kinds))
    lines += ["", "per kind, precision / recall (MOT):"]
    for label, entry in report["methods"].items():
        s = entry["scores"]
        lines.append(f"{label:24s} " + " ".join(f"{s[k]['precision']:5.1f}/{s[k]['recall']:<5.1f}" for k in kinds))
    sm = report["smoothing"]
    lines += ["", f"One-Euro smoothing {sm['config']} at {sm['fps']:g} fps:",
              "  joint jitter (mean |2nd difference|, px): "
              + ", ".join(f"{k} {v:.2f}" for k, v in sm["jitter_px"].items()),
              f"  mAP {sm['scores_without']['map']:.1f} -> {sm['scores_with']['map']:.1f}, "
              f"MOTA {sm['scores_without']['mota']:.1f} -> {sm['scores_with']['mota']:.1f}",
              f"({report['seconds']:.0f} s)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed of the scene set (default 0)")
    parser.add_argument("--scenes", type=int, default=None,
                        help="scenes per kind (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="1 scene per kind, fewer settings")
    parser.add_argument("--sweep", action="append", metavar="NAME=V1,V2",
                        help="try these values of one tracker setting instead of the built-in "
                             "sweeps (repeatable), e.g. --sweep min_hits=1,3")
    parser.add_argument("--no-sweeps", action="store_true",
                        help="only the defaults and the baselines, no one-at-a-time sweeps")
    parser.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    parser.add_argument("--keep", help="write GT and predictions to this folder instead of a temp one")
    args = parser.parse_args(argv)
    if args.scenes is not None and args.scenes < 1:
        parser.error("--scenes must be >= 1")
    report = run(args)
    print(format_report(report))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(_nan_to_none(report), indent=1, allow_nan=False))
    return 0


def _nan_to_none(value):
    """JSON has no NaN: undefined numbers become null."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


if __name__ == "__main__":
    sys.exit(main())

"""Time ``posetrack eval`` (mAP + MOTA, HOTA, both) against the official poseval in the same run.

Generates (seeded) 170 sequences with about 50k annotated GT people in the validation pattern
(a dense block of labelled frames in the middle, every 4th frame elsewhere), predictions for every
frame (noisy joints, scores, misses, false positives, id switches, ignore regions), writes them as
PoseTrack 2018 files into a temporary folder (or takes a case folder with ``--case``), then times
the official poseval (``--poseval DIR``: a checkout of github.com/leonid-pishchulin/poseval; its
``poseval`` package and its dependencies, shapely among them, must import), posetrack's mAP +
MOTA, its HOTA and both together; wall and CPU time (children included), and checks that
poseval's printed tables equal ours.

    .venv/bin/python scripts/bench_eval.py [--sequences 170] [--seed 0] [--keep DIR | --reuse DIR | --case DIR]
        [--poseval DIR] [--workers N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from posetrack.evaluation.evaluate import EvalOptions, EvaluationResult, evaluate_hota, evaluate_sequences
from posetrack.evaluation.load import load_sequences, pair_files
from posetrack.evaluation.report import format_table
from posetrack.formats import ImageInfo, PoseTrackVideo, read_posetrack_table, write_posetrack18
from posetrack.frame import Poses
from posetrack.joints import NUM_JOINTS

EAR_SLOTS = (3, 4)  # PoseTrack never labels the ears
# A standing person, POSETRACK17 slots, in units of head size, relative to the neck.
TEMPLATE = np.array([
    [0, -0.6], [0, 0], [0, -1.4], [0, 0], [0, 0],
    [1.2, 0.3], [-1.2, 0.3], [1.5, 1.8], [-1.5, 1.8], [1.6, 3.2], [-1.6, 3.2],
    [0.8, 3.6], [-0.8, 3.6], [0.9, 5.4], [-0.9, 5.4], [1.0, 7.2], [-1.0, 7.2],
])


def labelled_frames(num_frames: int, dense: int = 30) -> np.ndarray:
    """The validation pattern: a dense block in the middle, every 4th frame elsewhere."""
    start = max(0, (num_frames - dense) // 2)
    mask = np.arange(num_frames) % 4 == 0
    mask[start:start + dense] = True
    return np.flatnonzero(mask)


def synthetic_sequence(rng: np.random.Generator, name: str):
    """-> (gt video, prediction video) of one synthetic sequence."""
    num_frames = int(rng.integers(40, 150))
    num_people = int(rng.integers(2, 13))
    labelled = set(labelled_frames(num_frames).tolist())
    head = rng.uniform(25, 70, num_people)
    start = rng.uniform([100, 100], [1700, 500], (num_people, 2))
    velocity = rng.normal(0, 3, (num_people, 2))
    regions = (np.array([[0, 0], [120, 0], [120, 200], [0, 200]], np.float32),)
    swap_at = int(rng.integers(num_frames)) if num_people > 1 else -1
    gt_images, gt_poses, gt_heads, pr_images, pr_poses = [], [], [], [], []
    for k in range(num_frames):
        name_k = f"images/val/{name}/{k:06d}.jpg"
        neck = start + velocity * k
        xy = neck[:, None, :] + TEMPLATE[None] * head[:, None, None]  # (N, 17, 2)
        xy[:, EAR_SLOTS] = np.nan
        ids = np.arange(num_people)
        is_labelled = k in labelled
        gt_xy = np.where(rng.random(xy.shape[:2])[..., None] < 0.1, np.nan, xy)
        gt_xy[:, EAR_SLOTS] = np.nan
        heads_xyxy = np.stack([neck[:, 0] - head / 2, neck[:, 1] - 1.4 * head,
                               neck[:, 0] + head / 2, neck[:, 1]], axis=1)
        gt_images.append(ImageInfo(k, name_k, is_labelled, regions if is_labelled else ()))
        gt_poses.append(_poses(gt_xy, np.full(gt_xy.shape[:2], np.nan), ids) if is_labelled
                        else Poses.empty())
        gt_heads.append(heads_xyxy if is_labelled else np.zeros((0, 4)))
        # predictions: noise in head sizes, dropped joints, a missed person, a false positive
        error = rng.gamma(1.5, 0.15, xy.shape[:2]) * head[:, None]
        angle = rng.uniform(0, 2 * np.pi, xy.shape[:2])
        pr_xy = xy + np.stack([np.cos(angle), np.sin(angle)], -1) * error[..., None]
        pr_xy[rng.random(xy.shape[:2]) < 0.1] = np.nan
        pr_xy[:, EAR_SLOTS] = np.nan
        scores = np.clip(1 - error / head[:, None] + rng.normal(0, 0.1, error.shape), 0.01, 1)
        pr_ids = ids.copy()
        if 0 <= swap_at <= k:
            pr_ids[[0, 1]] = pr_ids[[1, 0]]
        keep = rng.random(num_people) > 0.05
        pr_xy, scores, pr_ids = pr_xy[keep], scores[keep], pr_ids[keep]
        if rng.random() < 0.3:
            fp = rng.uniform([0, 0], [1920, 1080]) + TEMPLATE * 40
            pr_xy = np.concatenate([pr_xy, fp[None]])
            scores = np.concatenate([scores, rng.uniform(0.01, 0.5, (1, NUM_JOINTS))])
            pr_ids = np.append(pr_ids, 100 + k % 7)
        pr_images.append(ImageInfo(k, name_k, is_labelled))
        pr_poses.append(_poses(pr_xy, scores, pr_ids))
    gt = PoseTrackVideo(gt_images, gt_poses, gt_heads)
    pred = PoseTrackVideo(pr_images, pr_poses, [np.full((len(p), 4), np.nan) for p in pr_poses])
    return gt, pred


def _poses(xy, scores, ids) -> Poses:
    boxes = np.stack([np.nanmin(xy[..., 0], 1), np.nanmin(xy[..., 1], 1),
                      np.nanmax(xy[..., 0], 1), np.nanmax(xy[..., 1], 1)], 1) if len(xy) else np.zeros((0, 4))
    return Poses(boxes, np.ones(len(xy)), xy, np.where(np.isnan(xy[..., 0]), np.nan, scores), ids)


def generate(folder: Path, num_sequences: int, seed: int) -> int:
    """Write GT and prediction folders; return the number of GT annotations."""
    rng = np.random.default_rng(seed)
    (folder / "gt").mkdir(parents=True)
    (folder / "pred").mkdir()
    annotations = 0
    for s in range(num_sequences):
        name = f"{10000 + s:06d}_mpii_test"
        gt, pred = synthetic_sequence(rng, name)
        annotations += sum(len(p) for p in gt.poses)
        write_posetrack18(folder / "gt" / f"{name}.json", gt)
        write_posetrack18(folder / "pred" / f"{name}.json", pred)
    return annotations


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (loading workers, poseval)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(function):
    """-> (result, wall seconds, CPU seconds of this process and its children)."""
    w, c = time.perf_counter(), _cpu_seconds()
    result = function()
    return result, time.perf_counter() - w, _cpu_seconds() - c


def time_ours(folder: Path, metrics, workers):
    """Load and evaluate with posetrack; -> (result, wall, CPU, load wall)."""
    def load():
        return load_sequences(pair_files(folder / "gt", folder / "pred"), workers, metrics)

    def run():
        sequences, load_wall, _ = _timed(load)
        hota = evaluate_hota(sequences) if "hota" in metrics else None
        result = evaluate_sequences(sequences, EvalOptions()) if "poseval" in metrics else None
        return result, hota, load_wall

    (result, hota, load_wall), wall, cpu = _timed(run)
    return result, hota, wall, cpu, load_wall


def time_poseval(folder: Path, checkout: Path | None):
    """Run the official poseval (mAP + MOTA) on the set from a checkout of its repository, in a
    subprocess; -> (printed output, wall, CPU) or None with the reason printed."""
    if checkout is None:
        print("official poseval: not timed (pass --poseval DIR, a checkout of "
              "github.com/leonid-pishchulin/poseval whose poseval/ package runs here)")
        return None
    if not (checkout / "poseval" / "evaluate.py").is_file():
        print(f"official poseval: skipped, {checkout} holds no poseval/evaluate.py")
        return None
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(checkout.resolve())] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    with tempfile.TemporaryDirectory(prefix="poseval-out-") as out:
        command = [sys.executable, "-m", "poseval.evaluate", "--groundTruth", "gt/", "--predictions", "pred/",
                   "--evalPoseEstimation", "--evalPoseTracking", "--outputDir", out + "/"]
        done, wall, cpu = _timed(lambda: subprocess.run(command, cwd=folder, env=env, capture_output=True,
                                                        text=True))
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"official poseval: skipped, it failed (exit {done.returncode}): {tail[0]}")
        return None
    return done.stdout, wall, cpu


def _printed_rows(text: str) -> list:
    """The AP and MOT value rows of a printed poseval table."""
    lines = text.splitlines()
    return [lines[i + 1] for i, line in enumerate(lines) if line.startswith("& Head") or line.startswith("& Head &")
            if i + 1 < len(lines)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=170)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the synthetic set here and keep it")
    parser.add_argument("--reuse", type=Path, help="time on a set kept earlier with --keep")
    parser.add_argument("--case", type=Path, help="time on an existing case folder with gt/ and pred/ "
                                                  "(e.g. ../shared/fixtures/poseval_real/bonn17_perturbed)")
    parser.add_argument("--workers", type=int, default=None, help="file-reading processes (default: cores)")
    parser.add_argument("--poseval", type=Path, help="a checkout of the official poseval, timed in the "
                                                     "same run (mAP + MOTA); skipped with a message if absent")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args()
    folder = args.case or args.reuse or args.keep or Path(tempfile.mkdtemp(prefix="posetrack-bench-eval-"))
    try:
        t0 = time.perf_counter()
        if args.case or args.reuse:
            annotations = sum(len(read_posetrack_table(f).frames) for f in sorted((folder / "gt").glob("*.json")))
        else:
            annotations = generate(folder, args.sequences, args.seed)
        prepared = time.perf_counter() - t0
        official = time_poseval(folder, args.poseval)
        result, _, wall, cpu, load_wall = time_ours(folder, ("poseval",), args.workers)
        _, hota, hota_wall, hota_cpu, hota_load = time_ours(folder, ("hota",), args.workers)
        _, _, all_wall, all_cpu, _ = time_ours(folder, ("poseval", "hota"), args.workers)
        print(f"set: {len(result.per_sequence)} sequences, {annotations} GT annotations, "
              f"{result.num_frames} frames evaluated by poseval, {hota.evaluated_frames} labelled "
              f"(prepared in {prepared:.1f} s)")
        table = format_table(EvaluationResult(result.total, result.per_sequence, result.num_frames,
                                              result.untracked, result.options, hota))
        print(table)
        print(f"posetrack mAP + MOTA: wall {wall:.2f} s (loading {load_wall:.2f} s), CPU {cpu:.2f} s")
        print(f"posetrack HOTA:       wall {hota_wall:.2f} s (loading {hota_load:.2f} s), CPU {hota_cpu:.2f} s")
        print(f"posetrack all:        wall {all_wall:.2f} s, CPU {all_cpu:.2f} s")
        timings = {"sequences": len(result.per_sequence), "gt_annotations": annotations,
                   "posetrack": {"poseval": {"wall_s": wall, "cpu_s": cpu, "load_wall_s": load_wall},
                                 "hota": {"wall_s": hota_wall, "cpu_s": hota_cpu, "load_wall_s": hota_load},
                                 "all": {"wall_s": all_wall, "cpu_s": all_cpu}}}
        if official is not None:
            output, p_wall, p_cpu = official
            same = _printed_rows(output) == _printed_rows(table)[:2]
            print(f"official poseval:     wall {p_wall:.2f} s, CPU {p_cpu:.2f} s; printed tables "
                  f"{'identical to ours' if same else 'DIFFER from ours'}")
            print(f"speed-up, mAP + MOTA: {p_wall / wall:.1f}x wall, {p_cpu / cpu:.1f}x CPU")
            timings["poseval"] = {"wall_s": p_wall, "cpu_s": p_cpu, "same_tables": same,
                                  "speedup_wall": p_wall / wall, "speedup_cpu": p_cpu / cpu}
        print(f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if args.json:
            args.json.write_text(json.dumps(timings, indent=2))
    finally:
        if args.keep is None and args.reuse is None and args.case is None:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()

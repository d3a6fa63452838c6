"""Time ``posetrack eval`` on a synthetic set at PoseTrack 2018 validation scale.

Generates (seeded) 170 sequences with about 50k annotated GT people in the validation pattern
(a dense block of labelled frames in the middle, every 4th frame elsewhere), predictions for every
frame (noisy joints, scores, misses, false positives, id switches, ignore regions), writes them as
PoseTrack 2018 files into a temporary folder, then times loading and evaluation separately.

    .venv/bin/python scripts/bench_eval.py [--sequences 170] [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from posetrack.evaluation.evaluate import EvalOptions, evaluate_sequences
from posetrack.evaluation.load import load_sequences, pair_files
from posetrack.evaluation.report import format_table
from posetrack.formats import ImageInfo, PoseTrackVideo, read_posetrack, write_posetrack18
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
    """User + system CPU time of this process and its finished children (the loading workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=170)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the synthetic set here and keep it")
    parser.add_argument("--reuse", type=Path, help="time on a set kept earlier with --keep")
    parser.add_argument("--workers", type=int, default=None, help="file-reading processes (default: cores)")
    args = parser.parse_args()
    folder = args.reuse or args.keep or Path(tempfile.mkdtemp(prefix="posetrack-bench-eval-"))
    try:
        t0 = time.perf_counter()
        if args.reuse:
            annotations = sum(len(poses) for f in sorted((folder / "gt").glob("*.json"))
                              for poses in read_posetrack(f).poses)
        else:
            annotations = generate(folder, args.sequences, args.seed)
        t1, c1 = time.perf_counter(), _cpu_seconds()
        sequences = load_sequences(pair_files(folder / "gt", folder / "pred"), args.workers)
        t2, c2 = time.perf_counter(), _cpu_seconds()
        result = evaluate_sequences(sequences, EvalOptions())
        t3, c3 = time.perf_counter(), _cpu_seconds()
        print(f"synthetic set: {len(result.per_sequence)} sequences, {annotations} GT annotations, "
              f"{result.num_frames} evaluated frames (prepared in {t1 - t0:.1f} s)")
        print(format_table(result))
        print(f"wall time: load {t2 - t1:.2f} s + evaluate {t3 - t2:.2f} s = {t3 - t1:.2f} s")
        print(f"CPU time (all processes): load {c2 - c1:.2f} s + evaluate {c3 - c2:.2f} s = "
              f"{c3 - c1:.2f} s; machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        if args.keep is None and args.reuse is None:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()

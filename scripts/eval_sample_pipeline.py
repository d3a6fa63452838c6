"""The whole pipeline on the PoseTrack18 sample frames with the GT boxes as detections: is every
GT person estimated, and how well (PCKh@0.5)?

Unlike scripts/eval_onnx_sample_pckh.py (the pose estimator alone, one box per person), this runs
``posetrack run`` itself, so box unification and duplicate-pose suppression decide which people
come out: two GT people whose boxes overlap (the ballroom couple of 009473) must both be written.
Each GT box becomes a detection of score 0.9; the run uses ``--flow none`` and
``--output-joint-threshold 0`` (every joint written) unless other run options are given after
``--``. A GT person counts as estimated when a written pose's box overlaps theirs with IoU >= 0.5
(one to one, best IoU first); PCKh@0.5 is over the 13 joints COCO and PoseTrack share, and a GT
person without a pose misses all their joints.

    python scripts/eval_sample_pipeline.py [--model M.onnx] [--sample DIR] [-- --no-flip-test ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from posetrack.formats import read_posetrack
from posetrack.geometry import box_iou
from posetrack.matching import greedy_match

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_onnx_sample_pckh import DEFAULT_MODEL, DEFAULT_SAMPLE, SHARED_SLOTS, pckh_hits  # noqa: E402


def run_sequence(gt_path: Path, sample: Path, model: Path, out_dir: Path, extra: list[str]) -> Path:
    """Write the GT boxes as detections and track the sequence's frames; -> the tracks file."""
    gt = read_posetrack(gt_path)
    detections = [
        {"image_id": image.image_id, "category_id": 1, "score": 0.9,
         "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}
        for image, poses in zip(gt.images, gt.poses) for x1, y1, x2, y2 in poses.boxes_xyxy]
    det_path = out_dir / f"{gt_path.stem}_detections.json"
    det_path.write_text(json.dumps(detections))
    out = out_dir / f"{gt_path.stem}.json"
    frames = sample / Path(gt.images[0].file_name).parent
    command = [sys.executable, "-m", "posetrack", "run", str(frames), "--annotations", str(gt_path),
               "--detections", str(det_path), "--pose-model", str(model), "--flow", "none",
               "--device", "cpu", "--output-joint-threshold", "0", *extra, "--out", str(out)]
    subprocess.run(command, check=True, env={**os.environ, "YOLO_OFFLINE": "1"})
    return out


def score(gt_path: Path, pred_path: Path) -> dict:
    gt, pred = read_posetrack(gt_path), read_posetrack(pred_path)
    persons = estimated = hits = joints = 0
    for image, truth, heads, guess in zip(gt.images, gt.poses, gt.head_boxes_xyxy, pred.poses):
        if not image.is_labeled or len(truth) == 0:
            continue
        pairs, _, _ = greedy_match(box_iou(truth.boxes_xyxy, guess.boxes_xyxy), 0.5)
        labelled = truth.visible[:, SHARED_SLOTS]
        found = np.zeros(labelled.shape, bool)
        found[pairs[:, 0]] = pckh_hits(guess.keypoints_xy[pairs[:, 1]][:, SHARED_SLOTS],
                                       truth.keypoints_xy[pairs[:, 0]][:, SHARED_SLOTS],
                                       heads[pairs[:, 0]])
        persons += len(truth)
        estimated += len(pairs)
        hits += int((found & labelled).sum())
        joints += int(labelled.sum())
    return {"gt_persons": persons, "estimated": estimated, "hits": hits, "joints": joints}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--keep", type=Path, help="write detections and tracks here")
    parser.add_argument("run_options", nargs="*", help="more `posetrack run` options, after --")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sample_pipeline_") as tmp:
        out_dir = args.keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        total = {"gt_persons": 0, "estimated": 0, "hits": 0, "joints": 0}
        for gt_path in sorted((args.sample / "annotations" / "val").glob("*.json")):
            pred = run_sequence(gt_path, args.sample, args.model, out_dir, args.run_options)
            result = score(gt_path, pred)
            print(f"{gt_path.stem}: {result['estimated']}/{result['gt_persons']} GT persons "
                  f"estimated, PCKh@0.5 {result['hits']}/{result['joints']}")
            total = {k: total[k] + result[k] for k in total}
    print(f"all: {total['estimated']}/{total['gt_persons']} GT persons estimated, PCKh@0.5 "
          f"{total['hits']}/{total['joints']} = {total['hits'] / max(total['joints'], 1):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

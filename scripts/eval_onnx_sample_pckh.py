"""PCKh@0.5 of an ONNX pose model on the PoseTrack18 sample frames, with ground-truth boxes.

Runs posetrack's ONNX Runtime backend (the same crops, flip test and decoding as the torch
backend) on every labelled frame of the sample, one box per annotated person (the GT ``bbox``,
which is the keypoint extent enlarged by about 15% per side), and counts a joint as correct
when its distance to the GT joint is at most 0.5 x the head size, the head size being
0.6 x the diagonal of the GT head box (the official PoseTrack evaluator's rule). Only the 13
joints COCO and PoseTrack share are scored (nose and the 12 limb joints), and only where the GT
labels them; a COCO model's head_bottom / head_top are derived, not predicted, so they are left
out.

It also prints the mean OKS over the same joints (COCO sigmas, area = GT box width x height),
which the assets README reports for this model (0.798, no flip) and so checks that the chain
reproduces it.

    python scripts/eval_onnx_sample_pckh.py \
        --model ../shared/assets/models/mobilenetv2_simplepose_coco17_256x192.onnx \
        --sample ../shared/assets/posetrack18_sample [--no-flip] [--render /tmp/pckh] \
        [--reference float.onnx]

``--reference`` also runs a second model on the same boxes (e.g. the float model an int8 copy
was made from) and prints both scores and how far the two models' joints lie apart.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posetrack.evaluation.assign import PCKH_THRESHOLD
from posetrack.evaluation.assign import head_sizes_from_boxes
from posetrack.formats import read_posetrack
from posetrack.frame import Detections
from posetrack.geometry import box_area
from posetrack.joints import POSETRACK17
from posetrack.oks import oks_matrix
from posetrack.pose import load_pose_estimator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "assets"
DEFAULT_MODEL = SHARED / "models" / "mobilenetv2_simplepose_coco17_256x192.onnx"
DEFAULT_SAMPLE = SHARED / "posetrack18_sample"
SHARED_SLOTS = [0] + list(range(5, 17))  # nose + 12 limb joints, POSETRACK17 slots


@dataclass
class PckhResult:
    hits: int = 0
    joints: int = 0
    per_joint_hits: np.ndarray = field(default_factory=lambda: np.zeros(17, int))
    per_joint_count: np.ndarray = field(default_factory=lambda: np.zeros(17, int))
    per_sequence: dict = field(default_factory=dict)
    oks: list = field(default_factory=list)  # one value per annotated person
    keypoints: list = field(default_factory=list)  # (N, 13, 2) predictions per frame
    head_sizes: list = field(default_factory=list)  # (N,) per frame

    @property
    def pckh(self) -> float:
        return self.hits / self.joints if self.joints else float("nan")

    @property
    def mean_oks(self) -> float:
        return float(np.mean(self.oks)) if self.oks else float("nan")


def pckh_hits(pred_xy: np.ndarray, gt_xy: np.ndarray, head_boxes_xyxy: np.ndarray) -> np.ndarray:
    """(N, J, 2), (N, J, 2), (N, 4) -> (N, J) bool: within 0.5 head size; NaN GT never counts."""
    head = head_sizes_from_boxes(head_boxes_xyxy)
    distance = np.linalg.norm(pred_xy - gt_xy, axis=2)
    with np.errstate(invalid="ignore"):
        return distance <= PCKH_THRESHOLD * head[:, None]


def person_oks(pred_xy: np.ndarray, gt_xy: np.ndarray, boxes_xyxy: np.ndarray,
               sigmas: np.ndarray) -> np.ndarray:
    """(N, J, 2), (N, J, 2), (N, 4), (J,) -> (N,) OKS over each person's labelled joints."""
    labelled = ~np.isnan(gt_xy).any(axis=2)
    predicted = ~np.isnan(pred_xy).any(axis=2)
    return oks_matrix(gt_xy, labelled, pred_xy, predicted, box_area(boxes_xyxy), sigmas,
                      over="both").diagonal()


def evaluate(model, sample_dir, flip_test: bool = True, device: str = "cpu",
             render_dir=None) -> PckhResult:
    import cv2

    sample_dir = Path(sample_dir)
    estimator = load_pose_estimator(str(model), device, flip_test=flip_test)
    result = PckhResult()
    for gt_path in sorted((sample_dir / "annotations" / "val").glob("*.json")):
        video = read_posetrack(gt_path)
        seq_hits = seq_joints = 0
        for image_info, gt, heads in zip(video.images, video.poses, video.head_boxes_xyxy):
            if not image_info.is_labeled or len(gt) == 0:
                continue
            image = cv2.imread(str(sample_dir / image_info.file_name))
            if image is None:
                raise SystemExit(f"cannot read {sample_dir / image_info.file_name}")
            poses = estimator(image, Detections(gt.boxes_xyxy, np.ones(len(gt), np.float32)))
            labelled = gt.visible[:, SHARED_SLOTS]
            hits = pckh_hits(poses.keypoints_xy[:, SHARED_SLOTS], gt.keypoints_xy[:, SHARED_SLOTS],
                             heads) & labelled
            seq_hits += int(hits.sum())
            seq_joints += int(labelled.sum())
            result.per_joint_hits[SHARED_SLOTS] += hits.sum(axis=0)
            result.per_joint_count[SHARED_SLOTS] += labelled.sum(axis=0)
            result.keypoints.append(poses.keypoints_xy[:, SHARED_SLOTS])
            result.head_sizes.append(head_sizes_from_boxes(heads))
            result.oks += list(person_oks(poses.keypoints_xy[:, SHARED_SLOTS],
                                          gt.keypoints_xy[:, SHARED_SLOTS], gt.boxes_xyxy,
                                          np.asarray(POSETRACK17.sigmas)[SHARED_SLOTS]))
            if render_dir is not None:
                _render(image, poses, gt, Path(render_dir) / f"{gt_path.stem}.png")
        result.per_sequence[gt_path.stem] = (seq_hits, seq_joints)
        result.hits += seq_hits
        result.joints += seq_joints
    return result


def _render(image, poses, gt, out_path):
    """Predictions as coloured bones and dots, GT joints as white rings, boxes in grey."""
    import cv2

    canvas = image.copy()
    for box in gt.boxes_xyxy.astype(int):
        cv2.rectangle(canvas, tuple(box[:2]), tuple(box[2:]), (160, 160, 160), 2)
    for person in gt.keypoints_xy:
        for x, y in person[~np.isnan(person).any(axis=1)]:
            cv2.circle(canvas, (int(x), int(y)), 9, (255, 255, 255), 2)
    for person, scores in zip(poses.keypoints_xy, poses.keypoint_scores):
        for a, b in POSETRACK17.skeleton:
            left = "left" in POSETRACK17.joints[a] or "left" in POSETRACK17.joints[b]
            cv2.line(canvas, tuple(person[a].astype(int)), tuple(person[b].astype(int)),
                     (0, 200, 255) if left else (255, 120, 0), 3)
        for (x, y), s in zip(person, scores):
            cv2.circle(canvas, (int(x), int(y)), 5, (0, 255, 0) if s >= 0.4 else (0, 0, 255), -1)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_path), canvas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--no-flip", action="store_true", help="Turn the flip test off.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--render", type=Path, default=None, help="Write overlay PNGs here.")
    parser.add_argument("--reference", type=Path, default=None,
                        help="A second model to compare with on the same boxes (e.g. the float "
                             "model of an int8 copy).")
    args = parser.parse_args()
    result = evaluate(args.model, args.sample, flip_test=not args.no_flip, device=args.device,
                      render_dir=args.render)
    if args.reference is not None:
        reference = evaluate(args.reference, args.sample, flip_test=not args.no_flip,
                             device=args.device)
        print(f"reference {args.reference.name}: PCKh@0.5 {reference.hits}/{reference.joints} = "
              f"{reference.pckh:.3f}, mean OKS {reference.mean_oks:.3f}")
        distance = np.concatenate([np.linalg.norm(a - b, axis=2).ravel() for a, b in
                                   zip(result.keypoints, reference.keypoints)])
        relative = np.concatenate([(np.linalg.norm(a - b, axis=2) / h[:, None]).ravel() for a, b, h
                                   in zip(result.keypoints, reference.keypoints, result.head_sizes)])
        print(f"joints against the reference ({len(distance)}): median {np.median(distance):.2f} px,"
              f" mean {distance.mean():.2f} px, {np.mean(relative <= 0.1):.3f} within 0.1 head "
              f"size, {np.mean(relative <= PCKH_THRESHOLD):.3f} within {PCKH_THRESHOLD} head size")
    for name, (hits, joints) in result.per_sequence.items():
        print(f"{name}: {hits}/{joints} = {hits / max(joints, 1):.3f}")
    for slot in SHARED_SLOTS:
        count = result.per_joint_count[slot]
        if count:
            print(f"  {POSETRACK17.joints[slot]:<15} {result.per_joint_hits[slot]}/{count}")
    print(f"PCKh@0.5 ({'flip test' if not args.no_flip else 'no flip'}, GT boxes, 13 shared "
          f"joints): {result.hits}/{result.joints} = {result.pckh:.3f}")
    print(f"mean OKS over {len(result.oks)} people: {result.mean_oks:.3f}")


if __name__ == "__main__":
    main()

"""Fit the constants that place head_bottom and head_top for COCO models (joints.HEAD_*_T).

A COCO model predicts no head_bottom / head_top. posetrack puts them on the line from the shoulder
midpoint through the nose: head_bottom = nose + t_b (shoulder_mid - nose), head_top =
nose - t_t (shoulder_mid - nose). This fits t_b and t_t by least squares on annotated people
(PoseTrack 2018 ground-truth files) and prints the head-size-normalised error the rule leaves.

    python scripts/fit_head_joints.py ../shared/assets/posetrack18_sample/annotations/val/*.json
"""

import sys

import numpy as np

from posetrack.formats import read_posetrack
from posetrack.joints import HEAD_BOTTOM_T, HEAD_TOP_T


def main(paths):
    rows = []
    for path in paths:
        video = read_posetrack(path)
        for poses, heads in zip(video.poses, video.head_boxes_xyxy):
            for keypoints, head in zip(poses.keypoints_xy, heads):
                if not np.isnan(keypoints[[0, 1, 2, 5, 6]]).any():
                    rows.append((keypoints, 0.6 * np.hypot(*(head[2:] - head[:2]))))
    if not rows:
        sys.exit("no person with nose, head_bottom, head_top and both shoulders annotated")
    nose = np.array([k[0] for k, _ in rows])
    axis = np.array([(k[5] + k[6]) / 2 - k[0] for k, _ in rows])
    bottom = np.array([k[1] for k, _ in rows]) - nose
    top = nose - np.array([k[2] for k, _ in rows])
    t_bottom = float((axis * bottom).sum() / (axis * axis).sum())
    t_top = float((axis * top).sum() / (axis * axis).sum())
    head = np.array([h for _, h in rows])
    for name, t, target, now in (("head_bottom", t_bottom, bottom, HEAD_BOTTOM_T),
                                 ("head_top", t_top, top, HEAD_TOP_T)):
        err_fit = np.linalg.norm(t * axis - target, axis=1) / head
        err_now = np.linalg.norm(now * axis - target, axis=1) / head
        print(f"{name}: fitted t = {t:.3f} (in use: {now}); error / head size: mean "
              f"{err_fit.mean():.3f} fitted, {err_now.mean():.3f} in use; within 0.5 head size: "
              f"{(err_now <= 0.5).mean():.0%} of {len(rows)} people")


if __name__ == "__main__":
    main(sys.argv[1:])

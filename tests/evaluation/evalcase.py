"""Helpers that build small PoseTrack files by hand for the evaluator's tests."""

import numpy as np
from posetrack.formats import ImageInfo, PoseTrackVideo, write_posetrack18
from posetrack.frame import Poses

HEAD_BOX = 10.0  # px; head size = 0.6 x diagonal = 8.485 px, so a hit is within 4.24 px
# A person's 17 POSETRACK17 joints relative to its centre, px (ears absent, as in PoseTrack).
TEMPLATE = np.array([[0, -30], [0, -20], [0, -45], [np.nan, np.nan], [np.nan, np.nan],
                     [15, -15], [-15, -15], [20, 0], [-20, 0], [22, 15], [-22, 15],
                     [10, 20], [-10, 20], [12, 40], [-12, 40], [12, 60], [-12, 60]], np.float32)


def person_xy(x, y):
    """(17, 2) joints of a person centred at (x, y)."""
    return TEMPLATE + np.float32([x, y])


def make_video(frames, scores=1.0, head_boxes=True, labelled=None, regions=None):
    """frames: per frame a list of (track_id, (17, 2) xy) -> PoseTrackVideo (2018)."""
    images, poses, heads = [], [], []
    for k, people in enumerate(frames):
        regs = tuple(np.asarray(r, np.float32) for r in (regions or {}).get(k, ()))
        images.append(ImageInfo(k, f"images/val/seq/{k:06d}.jpg",
                                True if labelled is None else k in labelled, regs))
        xy = np.array([p[1] for p in people], np.float32).reshape(-1, 17, 2)
        ids = np.array([p[0] for p in people], np.int64)
        joint_scores = np.where(np.isnan(xy[..., 0]), np.nan, scores)
        boxes = np.full((len(people), 4), np.nan, np.float32)
        poses.append(Poses(boxes, np.full(len(people), np.nan), xy, joint_scores, ids))
        neck = xy[:, 1] if len(xy) else np.zeros((0, 2))
        h = np.concatenate([neck - [HEAD_BOX / 2, HEAD_BOX], neck + [HEAD_BOX / 2, 0]], axis=1)
        heads.append(h if head_boxes else np.full((len(people), 4), np.nan))
    return PoseTrackVideo(images, poses, heads)

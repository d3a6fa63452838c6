"""Pure box and point geometry: IoU, NMS, boxes around keypoints, flow propagation of points.

Functions of numpy arrays only; boxes are ``xyxy`` float pixels.
"""

from __future__ import annotations

import numpy as np


def box_area(boxes_xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) -> (N,) area; boxes with negative extent have area 0."""
    boxes_xyxy = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes_xyxy[:, 2] - boxes_xyxy[:, 0], 0, None) * \
        np.clip(boxes_xyxy[:, 3] - boxes_xyxy[:, 1], 0, None)


# Most elements of a pairwise intermediate box_iou builds at once (about 8 MB per float64
# array); larger inputs are processed in blocks of rows.
_PAIR_BLOCK = 1 << 20


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every pair: (Na, 4), (Nb, 4) xyxy -> (Na, Nb) float64 in [0, 1].

    A pair whose union is empty (two zero-area boxes) has IoU 0. Computed in blocks of rows, so
    the memory used is the (Na, Nb) result plus a few MB, whatever the sizes.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(a), len(b)), np.float64)
    area_a, area_b = box_area(a), box_area(b)
    rows = max(1, _PAIR_BLOCK // max(len(b), 1))
    for start in range(0, len(a), rows):
        block = slice(start, start + rows)
        out[block] = _iou_block(a[block], area_a[block], b, area_b)
    return out


def _iou_block(a, area_a, b, area_b) -> np.ndarray:
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = width * height
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression of boxes by IoU, with the rules of
    ``suppress_by_similarity`` (visiting order, ties, NaN scores last, strictly greater than the
    threshold suppresses).

    Builds no (N, N) matrix: each kept box is compared with the boxes not yet decided, so memory
    is O(N) and time O(N x kept) however many boxes a frame has.

    Returns:
        (K,) int64 indices of the kept boxes, highest score first.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    areas = box_area(boxes)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iou = _iou_block(boxes[i:i + 1], areas[i:i + 1], boxes[rest], areas[rest])[0]
        order = rest[~(iou > iou_threshold)]
    return np.asarray(keep, dtype=np.int64)


def suppress_by_similarity(similarity: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression for any pairwise similarity (box IoU, pose OKS, ...).

    Items are visited by descending score (equal scores: lower index first; NaN scores last); an
    item is dropped when its similarity to an already kept item, ``similarity[kept, item]``, is
    strictly greater than ``threshold``.

    Args:
        similarity: (N, N) float.
        scores: (N,) float.

    Returns:
        (K,) int64 indices of the kept items, in visiting order (highest score first).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    suppressed = np.zeros(len(scores), dtype=bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= similarity[i] > threshold
    return np.asarray(keep, dtype=np.int64)


def boxes_from_keypoints(keypoints_xy: np.ndarray, enlarge: float = 0.15) -> np.ndarray:
    """The box around each person's present joints, enlarged about its centre (with
    ``enlarge=0``, exactly the joints' extent).

    Args:
        keypoints_xy: (N, J, 2) pixels; NaN for absent joints.
        enlarge: fraction added to the width and to the height (0.15: each grows by 15%, 7.5% on
            each side), as the paper enlarges propagated boxes.

    Returns:
        (N, 4) float32 xyxy; NaN rows for people with no present joint.
    """
    keypoints_xy = np.asarray(keypoints_xy, dtype=np.float32).reshape(-1, *np.shape(keypoints_xy)[-2:])
    present = ~np.isnan(keypoints_xy).any(axis=2)
    has_any = present.any(axis=1)
    boxes = np.full((len(keypoints_xy), 4), np.nan, np.float32)
    if not has_any.any():
        return boxes
    points = keypoints_xy[has_any]
    low = np.nanmin(points, axis=1)
    high = np.nanmax(points, axis=1)
    margin = (high - low) * (enlarge / 2)
    boxes[has_any] = np.concatenate([low - margin, high + margin], axis=1)
    return boxes


def sample_flow(flow: np.ndarray, points_xy: np.ndarray,
                frame_size_hw: tuple[int, int] | None = None) -> np.ndarray:
    """The motion of frame points, read from a flow field at the resolution it was computed at.

    Args:
        flow: (h, w, 2) displacement (dx, dy) in the field's own pixels, sampled at pixel centres
            (``flow[y, x]`` is the motion of field pixel (x, y)), covering the whole frame.
        points_xy: (..., 2) positions in frame pixels; NaN points get NaN motion.
        frame_size_hw: (H, W) of the frame; None: the field's own size (a full-size field).

    Returns:
        (..., 2) float32 displacement in frame pixels. A frame point (x, y) lies at
        ((x + 0.5) w / W - 0.5, (y + 0.5) h / H - 0.5) in the field (pixel centres aligned, as a
        bilinear resize maps them); the field is read there bilinearly and the vector scaled by
        (W / w, H / h). A point outside the field takes the value at the nearest border pixel
        (the image border moves with the scene around it). For a full-size field this is plain
        bilinear sampling; for a smaller one it matches sampling the field resized to the frame
        (``cv2.resize``, linear) at whole pixels, without making that full-size copy.
    """
    points = np.asarray(points_xy, dtype=np.float32)
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    height, width = flow.shape[:2]
    frame_h, frame_w = (height, width) if frame_size_hw is None else frame_size_hw
    sx, sy = width / frame_w, height / frame_h
    flat = points.reshape(-1, 2).astype(np.float64)
    valid = ~np.isnan(flat).any(axis=1)
    x = np.clip((flat[valid, 0] + 0.5) * sx - 0.5, 0, width - 1)
    y = np.clip((flat[valid, 1] + 0.5) * sy - 0.5, 0, height - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(width - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(height - 2, 0))
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    motion = (flow[y0, x0] * (1 - fx) * (1 - fy) + flow[y0, x1] * fx * (1 - fy)
              + flow[y1, x0] * (1 - fx) * fy + flow[y1, x1] * fx * fy)
    out = np.full(flat.shape, np.nan, np.float32)
    out[valid] = motion * np.array([1 / sx, 1 / sy])
    return out.reshape(points.shape)


def propagate_points(points_xy: np.ndarray, flow) -> np.ndarray:
    """Move points by an optical-flow field.

    Args:
        points_xy: (..., 2) pixel positions in the first frame; NaN points stay NaN.
        flow: (H, W, 2) displacement (dx, dy) in pixels from the first frame to the second, at
            the frame's size (see ``sample_flow``); or a flow-field object with
            ``displacements(points_xy) -> (..., 2)`` (``posetrack.flow``: a field kept at the
            resolution and on the device it was computed at, read only at the points).

    Returns:
        (..., 2) float32 positions in the second frame. The flow is sampled bilinearly; a point
        outside the image takes the flow at the nearest border pixel, so people partly out of
        view keep moving with the scene.
    """
    points = np.asarray(points_xy, dtype=np.float32)
    if isinstance(flow, np.ndarray):
        motion = sample_flow(flow, points)
    else:
        motion = np.asarray(flow.displacements(points), dtype=np.float32).reshape(points.shape)
    return np.where(np.isnan(points), points, points + motion).astype(np.float32)

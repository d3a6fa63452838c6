"""Pure top-down crop geometry and heatmap decoding, as in SimpleBaseline (numpy only).

The chain, for one person box:

1. :func:`box_to_center_scale`: the box becomes a centre and a scale in units of
   ``PIXEL_STD`` (200) pixels, padded to the network input's aspect ratio and enlarged by 1.25.
2. :func:`affine_matrices`: the affine map from image pixels to crop pixels (the crop centre
   lands on ``(w / 2, h / 2)``, the scaled box width on the crop width). The crop itself is cut by
   the torch code in :mod:`posetrack.pose` with exactly this matrix.
3. The network gives heatmaps at 1/4 of the input size; :func:`decode_heatmaps` takes each
   joint's argmax, moves it a quarter pixel towards the higher neighbour, and keeps the maximum as
   the score; :func:`merge_flip_heatmaps` averages in the heatmaps of the mirrored crop.
4. :func:`heatmap_to_image` maps heatmap coordinates back to image pixels through the inverse of
   the affine built for the *heatmap* size (the original code's convention: heatmap pixel ``x``
   is crop pixel ``4 x``).

Pixel coordinates everywhere: pixel ``i`` covers ``[i - 0.5, i + 0.5]``, its centre is ``i``
(OpenCV's convention). Sizes are ``(height, width)`` when the name ends in ``_hw`` and
``(width, height)`` when it ends in ``_wh``.
"""

from __future__ import annotations

import numpy as np

PIXEL_STD = 200.0  # scale unit of the original code: scale 1.0 = 200 pixels
BOX_PADDING = 1.25  # the original enlarges every box by 25% so the limbs at its edge stay in view
MIN_BOX_SIDE = 1.0  # pixels; a degenerate box is widened to this so its affine stays invertible


def box_to_center_scale(boxes_xyxy: np.ndarray, input_size_hw: tuple[int, int],
                        padding: float = BOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes -> crop centres and scales, as SimpleBaseline's ``_box2cs``.

    The box is padded (the shorter side grown) to the input's aspect ratio ``w / h``, then both
    sides are multiplied by ``padding``. Width and height are ``x2 - x1`` and ``y2 - y1``; a side
    shorter than ``MIN_BOX_SIDE`` is widened to it.

    Args:
        boxes_xyxy: (N, 4) float, pixels.
        input_size_hw: network input (height, width), e.g. (256, 192).
        padding: enlargement factor of the padded box (1.25 in the original).

    Returns:
        centers_xy: (N, 2) float64, pixels.
        scales_wh: (N, 2) float64, the crop's (width, height) in units of 200 pixels; its aspect
            ratio is the input's.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    aspect = input_size_hw[1] / input_size_hw[0]
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    w = np.maximum(boxes[:, 2] - boxes[:, 0], MIN_BOX_SIDE)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], MIN_BOX_SIDE)
    too_wide = w > aspect * h
    h = np.where(too_wide, w / aspect, h)
    w = np.where(too_wide, w, h * aspect)
    scales = np.stack([w, h], axis=1) / PIXEL_STD * padding
    return centers, scales


def affine_matrices(centers_xy: np.ndarray, scales_wh: np.ndarray, output_size_wh: tuple[int, int],
                    rotation_deg: np.ndarray | float = 0.0, inverse: bool = False) -> np.ndarray:
    """Affine maps from image pixels to an output grid (crop or heatmap), as ``get_affine_transform``.

    Three point pairs define the map: the centre goes to ``(out_w / 2, out_h / 2)``; the point
    half a crop width above the centre (rotated by ``rotation_deg``, counter-clockwise) goes to
    half the output width above the output centre; the third point of each triple completes a
    right angle. Only the scale's *width* sets the zoom (the height follows from the aspect ratio
    padding in :func:`box_to_center_scale`).

    Args:
        centers_xy: (N, 2) pixels.
        scales_wh: (N, 2) in units of 200 pixels.
        output_size_wh: (width, height) of the output grid in pixels.
        rotation_deg: scalar or (N,) rotation in degrees (0 at test time).
        inverse: give the map from output grid back to image pixels instead.

    Returns:
        (N, 2, 3) float64 matrices ``M``: ``[x_out, y_out] = M @ [x, y, 1]``.
    """
    centers = np.asarray(centers_xy, dtype=np.float64).reshape(-1, 2)
    src_w = np.asarray(scales_wh, dtype=np.float64).reshape(-1, 2)[:, 0] * PIXEL_STD
    out_w, out_h = float(output_size_wh[0]), float(output_size_wh[1])
    rot = np.deg2rad(np.broadcast_to(np.asarray(rotation_deg, dtype=np.float64), src_w.shape))

    # The "up" direction (0, -w/2) rotated by rot.
    src_dir = np.stack([src_w * 0.5 * np.sin(rot), -src_w * 0.5 * np.cos(rot)], axis=1)
    src0, src1 = centers, centers + src_dir
    dst0 = np.broadcast_to(np.array([out_w * 0.5, out_h * 0.5]), centers.shape)
    dst1 = dst0 + np.array([0.0, -out_w * 0.5])
    src = np.stack([src0, src1, _third_point(src0, src1)], axis=1)  # (N, 3, 2)
    dst = np.stack([dst0, dst1, _third_point(dst0, dst1)], axis=1)
    if inverse:
        src, dst = dst, src
    # Solve [x y 1] @ M.T = [x' y'] for the three pairs at once.
    lhs = np.concatenate([src, np.ones(src.shape[:2] + (1,))], axis=2)  # (N, 3, 3)
    return np.linalg.solve(lhs, dst).transpose(0, 2, 1)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point c with b->c equal to b->a rotated by 90 degrees: (N, 2), (N, 2) -> (N, 2)."""
    d = a - b
    return b + np.stack([-d[:, 1], d[:, 0]], axis=1)


def apply_affine(points_xy: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Map points by per-item affine matrices: (N, K, 2), (N, 2, 3) -> (N, K, 2) float64."""
    points = np.asarray(points_xy, dtype=np.float64)
    matrices = np.asarray(matrices, dtype=np.float64)
    return points @ matrices[:, :, :2].transpose(0, 2, 1) + matrices[:, None, :, 2]


def heatmap_to_image(coords_xy: np.ndarray, centers_xy: np.ndarray, scales_wh: np.ndarray,
                     heatmap_size_wh: tuple[int, int]) -> np.ndarray:
    """Heatmap coordinates -> image pixels, as the original ``transform_preds``.

    Args:
        coords_xy: (N, J, 2) heatmap pixels.
        centers_xy, scales_wh: (N, 2) each, from :func:`box_to_center_scale`.
        heatmap_size_wh: (width, height) of the heatmaps, e.g. (48, 64).

    Returns:
        (N, J, 2) float64 image pixels.
    """
    back = affine_matrices(centers_xy, scales_wh, heatmap_size_wh, inverse=True)
    return apply_affine(coords_xy, back)


def decode_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions and scores from heatmaps, as the original ``get_final_preds``.

    Per joint: the argmax (the first one on ties, row-major); then, when the argmax is at least
    two pixels from the left/top edge and one from the right/bottom edge (the original's
    ``1 < x < W - 1`` test, kept as is), a quarter-pixel step in x and in y towards the higher of
    the two neighbours (none when they are equal). The score is the maximum value.

    One deliberate difference: the original zeroes the coordinates of a joint whose maximum is
    <= 0; here they stay at the argmax and only the (<= 0) score says the joint is unreliable.

    Args:
        heatmaps: (N, J, H, W) float.

    Returns:
        coords_xy: (N, J, 2) float64 heatmap pixels.
        scores: (N, J) float32 maxima.
    """
    heatmaps = np.asarray(heatmaps)
    n, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, j, h * w)
    if h * w == 0:
        raise ValueError(f"heatmaps must not be empty, got shape {heatmaps.shape}")
    index = flat.argmax(axis=2)
    scores = np.take_along_axis(flat, index[..., None], axis=2)[..., 0].astype(np.float32)
    x, y = index % w, index // w
    inside = (x > 1) & (x < w - 1) & (y > 1) & (y < h - 1)
    xl, xr = np.clip(x - 1, 0, w - 1), np.clip(x + 1, 0, w - 1)
    yu, yd = np.clip(y - 1, 0, h - 1), np.clip(y + 1, 0, h - 1)

    def at(yy, xx):
        return np.take_along_axis(flat, (yy * w + xx)[..., None], axis=2)[..., 0]

    dx = np.sign(at(y, xr).astype(np.float64) - at(y, xl))
    dy = np.sign(at(yd, x).astype(np.float64) - at(yu, x))
    coords = np.stack([x + 0.25 * dx * inside, y + 0.25 * dy * inside], axis=2).astype(np.float64)
    return coords, scores


def flip_heatmaps_back(flipped: np.ndarray, flip_permutation: np.ndarray,
                       shift: bool = True) -> np.ndarray:
    """Heatmaps of a horizontally mirrored crop -> heatmaps in the unmirrored frame.

    Mirrors the width axis back, swaps left/right joints (``flip_permutation[j]`` is the joint
    that ``j`` becomes when mirrored), and, with ``shift``, moves every column one pixel right
    (column 0 keeps its value), as the original code does because the mirrored output grid is
    not aligned with the unmirrored one.

    Args:
        flipped: (N, J, H, W) heatmaps of the mirrored crops.
        flip_permutation: (J,) int, e.g. ``JointLayout.flip_permutation``.

    Returns:
        (N, J, H, W) heatmaps, same dtype.
    """
    back = np.asarray(flipped)[:, np.asarray(flip_permutation), :, ::-1]
    if shift:
        back = np.concatenate([back[..., :1], back[..., :-1]], axis=3)
    return np.ascontiguousarray(back)


def merge_flip_heatmaps(heatmaps: np.ndarray, flipped: np.ndarray, flip_permutation: np.ndarray,
                        shift: bool = True) -> np.ndarray:
    """Flip test: the mean of the heatmaps and the flipped-back heatmaps of the mirrored crops.

    Args:
        heatmaps: (N, J, H, W) of the crops.
        flipped: (N, J, H, W) of the horizontally mirrored crops.
        flip_permutation, shift: as :func:`flip_heatmaps_back`.

    Returns:
        (N, J, H, W).
    """
    return (np.asarray(heatmaps) + flip_heatmaps_back(flipped, flip_permutation, shift)) * 0.5

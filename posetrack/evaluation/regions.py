"""Ignore regions: which points lie inside any of a frame's polygons."""

from __future__ import annotations

import numpy as np


def points_in_polygons(points_xy: np.ndarray, polygons) -> np.ndarray:
    """Whether each point lies inside at least one polygon (even-odd rule).

    Args:
        points_xy: (M, 2) float, pixels; NaN points are never inside.
        polygons: sequence of (K, 2) float arrays, pixels, vertices in order (open or closed).

    Returns:
        (M,) bool. Points exactly on an edge may fall either way; the official evaluator (shapely's
        ``contains``) counts them as outside. A polygon with fewer than 3 vertices contains nothing.
    """
    points_xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(points_xy), dtype=bool)
    x, y = points_xy[:, :1], points_xy[:, 1:]  # (M, 1): broadcast against the edges
    for polygon in polygons:
        vertices = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(vertices) < 3:
            continue
        x0, y0 = vertices[:, 0], vertices[:, 1]
        x1, y1 = np.append(x0[1:], x0[0]), np.append(y0[1:], y0[0])  # each edge's other end
        straddles = (y0 > y) != (y1 > y)  # (M, K): the edge crosses the point's horizontal line
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        crossings = (straddles & (x < x_cross)).sum(axis=1)
        inside |= crossings % 2 == 1
    return inside


def points_in_frame_polygons(points_xy: np.ndarray, point_frames: np.ndarray, polygons_of_frame) -> np.ndarray:
    """:func:`points_in_polygons` for the points of many frames at once, each against its own
    frame's polygons (one vectorised pass over a whole sequence instead of a call per frame).

    Args:
        points_xy: (M, 2) float, pixels; NaN points are never inside.
        point_frames: (M,) int, each point's frame index.
        polygons_of_frame: frame index -> sequence of (K, 2) polygons (frames not in it have none).

    Returns:
        (M,) bool, identical to calling :func:`points_in_polygons` frame by frame.
    """
    points_xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    point_frames = np.asarray(point_frames, dtype=np.int64).reshape(-1)
    inside = np.zeros(len(points_xy), dtype=bool)
    frames = [f for f, polygons in polygons_of_frame.items() if len(polygons)]
    if not frames or not len(points_xy):
        return inside
    # edges[f, r, e] = (x0, y0, x1, y1) of edge e of polygon r of the f-th frame; NaN padding never
    # straddles a point's line, so padded edges and polygons count no crossing.
    edge_lists = [[_edges(p) for p in polygons_of_frame[f]] for f in frames]
    num_polygons = max(len(e) for e in edge_lists)
    num_edges = max(len(e) for edges in edge_lists for e in edges)
    edges = np.full((len(frames), num_polygons, num_edges, 4), np.nan)
    for i, polygon_edges in enumerate(edge_lists):
        for r, e in enumerate(polygon_edges):
            edges[i, r, :len(e)] = e
    slot = np.full(int(max(max(frames), point_frames.max())) + 1, -1, np.int64)
    slot[frames] = np.arange(len(frames))
    rows = np.flatnonzero(slot[point_frames] >= 0)
    e = edges[slot[point_frames[rows]]]  # (M', R, E, 4)
    x, y = points_xy[rows, 0][:, None, None], points_xy[rows, 1][:, None, None]
    x0, y0, x1, y1 = e[..., 0], e[..., 1], e[..., 2], e[..., 3]
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    crossings = (straddles & (x < x_cross)).sum(axis=2)  # (M', R)
    inside[rows] = (crossings % 2 == 1).any(axis=1)
    return inside


def _edges(polygon) -> np.ndarray:
    """(K, 2) vertices -> (K, 4) edges (x0, y0, x1, y1), closing edge included; none below 3
    vertices."""
    vertices = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(vertices) < 3:
        return np.zeros((0, 4))
    return np.concatenate([vertices, np.roll(vertices, -1, axis=0)], axis=1)


def ignored_joints(keypoints_xy: np.ndarray, frames: np.ndarray, images) -> np.ndarray:
    """Which joints lie inside an ignore region of their frame.

    Args:
        keypoints_xy: (N, J, 2) float, pixels, NaN for absent joints (a ``PoseTrackTable``'s).
        frames: (N,) int, each person's frame index.
        images: the frames' ``ImageInfo`` (the GT's: predictions are clipped by the GT's regions).

    Returns:
        (N, J) bool.
    """
    keypoints_xy = np.asarray(keypoints_xy, dtype=np.float64)
    polygons = {k: image.ignore_regions for k, image in enumerate(images) if image.ignore_regions}
    num_people, num_joints = keypoints_xy.shape[:2]
    if not polygons or not num_people:
        return np.zeros((num_people, num_joints), dtype=bool)
    point_frames = np.repeat(np.asarray(frames, dtype=np.int64), num_joints)
    inside = points_in_frame_polygons(keypoints_xy.reshape(-1, 2), point_frames, polygons)
    return inside.reshape(num_people, num_joints)


def ignored_in_pair(gt, pred) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ignored_joints` of a GT ``PoseTrackTable`` and its predictions (frames paired by
    position, both clipped by the GT's regions): ((G, 17) bool, (P, 17) bool)."""
    return (ignored_joints(gt.keypoints_xy, gt.frames, gt.images),
            ignored_joints(pred.keypoints_xy, pred.frames, gt.images))

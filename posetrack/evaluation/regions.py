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

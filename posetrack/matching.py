"""Greedy one-to-one matching of two sets by a similarity matrix."""

from __future__ import annotations

import numpy as np


def greedy_match(similarity: np.ndarray, min_similarity: float):
    """Match rows to columns, highest similarity first, each row and column used at most once.

    Greedy rather than Hungarian, as in the paper: the most certain pair is committed first and is
    never given up to raise the sum of weaker pairs, which keeps a clearly visible person's id
    stable when a doubtful detection appears next to them; it also costs O(n log n) to sort
    instead of O(n^3).

    Args:
        similarity: (Na, Nb) float; NaN entries never match.
        min_similarity: pairs with similarity below this never match (equal to it: they can).

    Returns:
        (pairs, unmatched_a, unmatched_b): pairs (K, 2) int64 of (row, column) in the order they
        were matched; unmatched_a (Na - K,) and unmatched_b (Nb - K,) int64, ascending. Equal
        similarities go to the lower row, then the lower column.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2:
        raise ValueError(f"similarity must be 2-D, got shape {similarity.shape}")
    num_a, num_b = similarity.shape
    rows, cols = np.nonzero(similarity >= min_similarity)  # NaN compares False
    order = np.lexsort((cols, rows, -similarity[rows, cols]))
    used_a, used_b = np.zeros(num_a, bool), np.zeros(num_b, bool)
    pairs = []
    for r, c in zip(rows[order], cols[order]):
        if not used_a[r] and not used_b[c]:
            used_a[r] = used_b[c] = True
            pairs.append((r, c))
            if len(pairs) == min(num_a, num_b):
                break
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return pairs, np.flatnonzero(~used_a), np.flatnonzero(~used_b)

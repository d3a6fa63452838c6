"""CLEAR MOT counts per joint type, event for event as motmetrics 1.4.0 counts them.

The official evaluator feeds one ``motmetrics.MOTAccumulator`` per joint type and sequence, one
``update`` per frame, with every GT/predicted pair within the PCKh threshold as a candidate (NaN
distance = not a candidate), then sums motmetrics' counts. Building those accumulators and their
pandas frames is most of the official tool's run time, so this module replays motmetrics 1.4.0's
``MOTAccumulator.update`` for all 15 joint types of a frame at once, on dense state arrays:

1. a GT id still paired with a prediction id it was last matched to, and within reach, is a match
   again (the earlier GT in file order wins when two claim the same prediction);
2. the remaining candidates are assigned by minimum total distance with motmetrics' own scipy
   solver (skipped when no row or column has two candidates left, where the solution is forced);
   a pair contradicting the GT's previous pairing is a switch;
3. unmatched GT are misses, unmatched predictions false positives.

``sum_distance`` is what poseval sums for MOTP: the ``D`` column of *all* accumulator events, i.e.
every candidate distance (motmetrics' RAW events), plus each match/switch distance, plus the
distance again for each TRANSFER, ASCEND and MIGRATE event. tests/evaluation check every count
against ``MOTAccumulator`` on random sequences and on the reference fixtures.

Frames with nobody on one side are handled by the caller's choice: the official placeholder (one
GT id against one prediction id that never match: one object, one miss and one false positive per
joint type, no change of state) or the real events.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from motmetrics.lap import lsa_solve_scipy


@dataclass(frozen=True)
class MotFrame:
    """One frame as the MOT counts see it.

    Attributes:
        gt_ids: (G,) int64 GT track ids.
        pr_ids: (P,) int64 predicted track ids, unique within the frame.
        gt_present: (G, J) bool, annotated GT joints.
        pr_present: (P, J) bool, predicted joints.
        distances: (G, P, J) float64 candidate distances (normalised); NaN = not a candidate. NaN
            wherever either joint is absent.
    """

    gt_ids: np.ndarray
    pr_ids: np.ndarray
    gt_present: np.ndarray
    pr_present: np.ndarray
    distances: np.ndarray


@dataclass(frozen=True)
class MotCounts:
    """Per-joint CLEAR MOT counts, each (J,): int64 except ``sum_distance`` (float64)."""

    objects: np.ndarray
    misses: np.ndarray
    switches: np.ndarray
    false_positives: np.ndarray
    detections: np.ndarray
    sum_distance: np.ndarray

    @classmethod
    def zeros(cls, num_joints: int) -> "MotCounts":
        values = {f.name: np.zeros(num_joints, np.int64) for f in fields(cls)}
        values["sum_distance"] = np.zeros(num_joints, np.float64)
        return cls(**values)

    def __add__(self, other: "MotCounts") -> "MotCounts":
        return MotCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def placeholder_counts(num_joints: int) -> MotCounts:
    """The official stand-in for a frame with no predictions or no GT left: per joint type one
    object, one miss, one false positive."""
    one = np.ones(num_joints, np.int64)
    zero = np.zeros(num_joints, np.int64)
    return MotCounts(one, one, zero, one.copy(), zero.copy(), np.zeros(num_joints))


@dataclass
class _PairingState:
    """motmetrics' accumulator state, one column per joint type, rows indexed by dense ids.

    last_hyp: the prediction id each GT id was last paired with (-1: never) (motmetrics ``m``).
    last_obj: the GT id each prediction id was last assigned to in step 2 (``res_m``).
    obj_matched: the GT id has been matched at least once (``last_match``).
    hyp_matched: the prediction id has been matched at least once (``hypHistory``).
    """

    last_hyp: np.ndarray
    last_obj: np.ndarray
    obj_matched: np.ndarray
    hyp_matched: np.ndarray

    @classmethod
    def fresh(cls, num_objects: int, num_hyps: int, num_joints: int) -> "_PairingState":
        return cls(np.full((num_objects, num_joints), -1, np.int64),
                   np.full((num_hyps, num_joints), -1, np.int64),
                   np.zeros((num_objects, num_joints), bool),
                   np.zeros((num_hyps, num_joints), bool))


def count_sequence(frames, num_joints: int, empty_frame_placeholders: bool = True) -> MotCounts:
    """MOT counts of one sequence (fresh accumulators), frames in order.

    Args:
        frames: sequence of :class:`MotFrame`.
        num_joints: J.
        empty_frame_placeholders: True (official) replaces a frame without GT people or without
            predicted people by :func:`placeholder_counts`; False counts its real misses or false
            positives.
    """
    frames = list(frames)
    if not frames:
        return MotCounts.zeros(num_joints)
    gt_dense, num_gt_ids = _dense_ids([f.gt_ids for f in frames])
    pr_dense, num_pr_ids = _dense_ids([f.pr_ids for f in frames])
    state = _PairingState.fresh(num_gt_ids, num_pr_ids, num_joints)
    placeholder = _as_row(placeholder_counts(num_joints))
    rows = []  # per frame: (6, J), the MotCounts fields in order
    for frame, gt_ids, pr_ids in zip(frames, gt_dense, pr_dense):
        if empty_frame_placeholders and (len(gt_ids) == 0 or len(pr_ids) == 0):
            rows.append(placeholder)
        else:
            rows.append(_as_row(_count_frame(frame, gt_ids, pr_ids, state, num_joints)))
    sums = np.sum(rows, axis=0)  # float64; the integer counts stay exact
    values = {f.name: row.astype(np.int64) for f, row in zip(fields(MotCounts), sums)}
    values["sum_distance"] = sums[-1]
    return MotCounts(**values)


def _as_row(counts: MotCounts) -> np.ndarray:
    return np.array([getattr(counts, f.name) for f in fields(MotCounts)], np.float64)


def _dense_ids(id_arrays) -> tuple[list[np.ndarray], int]:
    """Map track ids to 0..K-1 over the whole sequence (same id, same index); also returns K."""
    lengths = [len(a) for a in id_arrays]
    unique, inverse = np.unique(np.concatenate(id_arrays).astype(np.int64), return_inverse=True)
    return np.split(inverse.reshape(-1), np.cumsum(lengths)[:-1]), len(unique)


def _count_frame(frame: MotFrame, gt_ids, pr_ids, state: _PairingState, num_joints: int) -> MotCounts:
    dist = frame.distances
    candidate = ~np.isnan(dist)  # (G, P, J)
    objects = frame.gt_present.sum(axis=0).astype(np.int64)
    predicted = frame.pr_present.sum(axis=0).astype(np.int64)
    if len(gt_ids) == 0 or len(pr_ids) == 0:  # nothing to pair: all misses, or all false positives
        nothing = np.zeros(num_joints, np.int64)
        return MotCounts(objects, objects.copy(), nothing, predicted, nothing.copy(), np.zeros(num_joints))
    sum_distance = np.where(candidate, dist, 0.0).sum(axis=(0, 1))  # RAW events

    # 1. Keep earlier pairings: GT g matches prediction p again if p carries g's last partner id.
    previous = state.last_hyp[gt_ids]  # (G, J)
    kept = candidate & (previous[:, None, :] == pr_ids[None, :, None])
    p1, j1 = np.nonzero(kept.any(axis=0))
    g1 = np.argmax(kept, axis=0)[p1, j1]  # the first GT claiming p wins
    state.obj_matched[gt_ids[g1], j1] = True
    state.hyp_matched[pr_ids[p1], j1] = True
    sum_distance = sum_distance + np.bincount(j1, dist[g1, p1, j1], minlength=num_joints)

    # 2. Assign the rest by minimum total distance.
    gt_taken = np.zeros(frame.gt_present.shape, bool)
    pr_taken = np.zeros(frame.pr_present.shape, bool)
    gt_taken[g1, j1] = True
    pr_taken[p1, j1] = True
    g2, p2, j2 = _assign_remaining(dist, candidate & ~gt_taken[:, None, :] & ~pr_taken[None, :, :],
                                   frame.gt_present, frame.pr_present)
    obj, hyp, d2 = gt_ids[g2], pr_ids[p2], dist[g2, p2, j2]
    before = state.last_hyp[obj, j2]
    switch = (before >= 0) & (before != hyp)
    ascend = switch & ~state.hyp_matched[hyp, j2]
    owner = state.last_obj[hyp, j2]
    transfer = (owner >= 0) & (owner != obj)
    migrate = transfer & ~state.obj_matched[obj, j2]
    extra_events = 1 + ascend.astype(np.int64) + transfer + migrate
    sum_distance = sum_distance + np.bincount(j2, d2 * extra_events, minlength=num_joints)
    state.hyp_matched[hyp, j2] = True
    state.obj_matched[obj, j2] = True
    state.last_hyp[obj, j2] = hyp
    state.last_obj[hyp, j2] = obj

    detections = np.bincount(j1, minlength=num_joints) + np.bincount(j2, minlength=num_joints)
    return MotCounts(
        objects=objects.astype(np.int64),
        misses=(objects - detections).astype(np.int64),
        switches=np.bincount(j2[switch], minlength=num_joints).astype(np.int64),
        false_positives=(predicted - detections).astype(np.int64),
        detections=detections.astype(np.int64),
        sum_distance=sum_distance,
    )


def _assign_remaining(dist, open_pairs, gt_present, pr_present):
    """Minimum-distance assignment of the open candidate pairs, per joint type.

    Returns (g, p, j) index arrays of the assigned pairs. Where every GT row and prediction column
    of a joint type has at most one open candidate, every candidate is in the (unique) maximum
    assignment; otherwise the joint's matrix (its present GT x present predictions, non-candidates
    NaN, exactly what motmetrics builds) goes to motmetrics' scipy solver, so ties resolve alike.
    """
    crowded = (open_pairs.sum(axis=1) > 1).any(axis=0) | (open_pairs.sum(axis=0) > 1).any(axis=0)
    g, p, j = np.nonzero(open_pairs & ~crowded[None, None, :])
    parts = [(g, p, j)]
    for joint in np.flatnonzero(crowded):
        rows = np.flatnonzero(gt_present[:, joint])
        cols = np.flatnonzero(pr_present[:, joint])
        costs = np.where(open_pairs[np.ix_(rows, cols, [joint])][..., 0],
                         dist[np.ix_(rows, cols, [joint])][..., 0], np.nan)
        r, c = lsa_solve_scipy(costs)
        parts.append((rows[r], cols[c], np.full(len(r), joint)))
    return tuple(np.concatenate(arrays).astype(np.int64) for arrays in zip(*parts))

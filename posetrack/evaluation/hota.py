"""Keypoint HOTA as the PoseTrack21 evaluation kit computes it (anDoer/PoseTrack21 @ 3e61960,
``eval/posetrack21``, metric ``HOTAeypoints``), on PoseTrack21, 2018 and 2017 files.

HOTA splits tracking quality into detection (DetA: are the joints found?) and association (AssA:
does each GT track keep one predicted track?), each averaged over 19 localisation thresholds,
where MOTA mixes both into one count at PCKh@0.5. What the kit does, and so what this does:

* frames: the GT's labelled frames (``is_labeled``), paired with the prediction frame at the
  same position; joints: the 15 PoseTrack joints without the ears, each scored separately;
  a joint is present when x > 0 and y > 0 (GT and predictions; scores and visibility ignored);
* ignore regions: joints strictly inside a polygon are removed, then, in those frames only,
  people left with every joint at x <= 0 and y <= 0;
* similarity of a GT and a predicted joint: ``max(0, 1 - d / 0.5001)``, d the distance in GT head
  sizes (0.6 x head-box diagonal), 0 when either is absent (anDoer/PoseTrack21#11: every
  threshold is stricter than PCKh@0.5: 0.475 head sizes at alpha = 0.05 ... 0.025 at 0.95);
* per frame and joint type one Hungarian assignment maximising the summed similarity over all GT
  x all predicted people of the frame; at threshold alpha, assigned pairs with similarity
  >= alpha - eps are true positives;
* a labelled frame without predicted people adds the *whole sequence's* GT joints of each type
  to the false negatives (anDoer/PoseTrack21#10, kept: published numbers include it);
* AssA, AssRe, AssPr from the per-(GT track, predicted track) true-positive counts, per joint
  type and threshold; sequences combine by summing TP/FN/FP and TP-weighting AssA/AssRe/AssPr
  and LocA; a "total" column pools the 15 joints the kit's way (see ``combine``).

Where the kit crashes, a defined answer: a labelled frame without GT people (none annotated, or
all inside ignore regions) counts its predicted joints as false positives of that frame (the
kit's unreachable code would add the whole sequence's predicted joints, the other half of #10).
Every array here is float64; the kit's per-threshold values are averaged only when reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import FormatError
from ..formats import PoseTrackTable
from .assign import euclidean, head_sizes_from_boxes
from .regions import ignored_in_pair

# The kit's joints, in its order: POSETRACK17 slots without the two ear slots.
JOINT_NAMES = (
    "nose", "neck", "head_top", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle",
)
JOINT_SLOTS = (0, 1, 2) + tuple(range(5, 17))
NUM_JOINTS = len(JOINT_NAMES)
ALPHAS = np.arange(0.05, 0.99, 0.05)  # the kit's 19 thresholds, bit for bit
ZERO_SIMILARITY_DISTANCE = 0.5001  # head sizes; the kit's clipping (anDoer/PoseTrack21#11)
EPS = np.finfo(float).eps
METRICS = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")


@dataclass(frozen=True)
class HotaCounts:
    """Per-threshold values of one sequence or of several combined, each (19, 16): the 15 joints
    in ``JOINT_NAMES`` order, then the "total" column. Fractions, not percent.

    ``tp``/``fn``/``fp`` are counts (float64 holding integers); ``ass_a``/``ass_re``/``ass_pr``
    and ``loc_a`` are the kit's values, which sequences combine TP-weighted.
    ``joint_mean_total``: the total column of every ratio is the plain mean over the joints (one
    sequence, as the kit reports it) instead of computed from the pooled counts (combined).
    """

    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray
    ass_a: np.ndarray
    ass_re: np.ndarray
    ass_pr: np.ndarray
    loc_a: np.ndarray
    joint_mean_total: bool = False

    def metrics(self) -> dict:
        """Metric name -> (19, 16) per-threshold values, the kit's formulas."""
        det_re = self.tp / np.maximum(1, self.tp + self.fn)
        det_pr = self.tp / np.maximum(1, self.tp + self.fp)
        det_a = self.tp / np.maximum(1, self.tp + self.fn + self.fp)
        values = {"HOTA": np.sqrt(det_a * self.ass_a), "DetA": det_a, "AssA": self.ass_a,
                  "LocA": self.loc_a, "DetRe": det_re, "DetPr": det_pr, "AssRe": self.ass_re,
                  "AssPr": self.ass_pr}
        if self.joint_mean_total:
            values = {name: _mean_total(v[:, :NUM_JOINTS]) for name, v in values.items()}
        return values


@dataclass(frozen=True)
class HotaSequence:
    """One sequence's HOTA counts and its sizes (labelled frames, people and ids after ignore
    regions)."""

    counts: HotaCounts
    evaluated_frames: int
    gt_people: int
    predicted_people: int
    gt_ids: int
    predicted_ids: int


# ---------------------------------------------------------------------------------------------
# One sequence


def kit_joints(keypoints_xy: np.ndarray) -> np.ndarray:
    """(N, 17, 2) POSETRACK17 pixels, NaN = absent -> (N, 15, 2) float64 in the kit's order, an
    absent joint at (0, 0) as the kit holds it."""
    return np.nan_to_num(np.asarray(keypoints_xy, np.float64)[:, JOINT_SLOTS], nan=0.0)


def present(xy: np.ndarray) -> np.ndarray:
    """(..., 2) -> (...) bool: the kit's "joint present" rule, x > 0 and y > 0."""
    return (xy[..., 0] > 0) & (xy[..., 1] > 0)


def similarity(gt_xy: np.ndarray, gt_head_sizes: np.ndarray, pr_xy: np.ndarray) -> np.ndarray:
    """(G, 15, 2), (G,), (P, 15, 2) -> (G, P, 15) the kit's ``max(0, 1 - d / 0.5001)``, computed as
    it does (``-1 / 0.5001 * d + 1``); 0 where either joint is absent."""
    diff = gt_xy[:, None] - pr_xy[None, :]
    both = present(gt_xy)[:, None, :] & present(pr_xy)[None, :, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(both, euclidean(diff[..., 0], diff[..., 1]) / gt_head_sizes[:, None, None], np.inf)
    d[np.isnan(d)] = np.inf  # a joint on its GT joint with a zero head box: 0 / 0
    return np.maximum((-1 / ZERO_SIMILARITY_DISTANCE) * d + 1, 0)


def assigned_pairs(sim: np.ndarray):
    """(G, P, 15) similarities -> (g, p, j) of the pairs with positive similarity in the kit's
    per-joint maximum-similarity assignment (only those can reach a threshold). Where every row
    and column of a joint has at most one positive entry, the assignment holds exactly those;
    otherwise scipy's ``linear_sum_assignment`` decides, on the matrix the kit gives it."""
    positive = sim > 0
    crowded = (positive.sum(axis=0) > 1).any(axis=0) | (positive.sum(axis=1) > 1).any(axis=0)
    g, p, j = np.nonzero(positive & ~crowded)
    parts = [(g, p, j)]
    for joint in np.flatnonzero(crowded):
        rows, cols = linear_sum_assignment(-sim[:, :, joint])
        keep = sim[rows, cols, joint] > 0
        parts.append((rows[keep], cols[keep], np.full(int(keep.sum()), joint)))
    return tuple(np.concatenate(a).astype(np.int64) for a in zip(*parts))


def _kept(xy: np.ndarray) -> np.ndarray:
    """(N, 15, 2) -> (N,) bool: the kit keeps a person in a frame with ignore regions unless every
    joint is at x <= 0 and y <= 0."""
    return ~((xy[..., 0] <= 0) & (xy[..., 1] <= 0)).all(axis=1)


def sequence_hota(gt: PoseTrackTable, pred: PoseTrackTable, gt_file=None, ignored=None) -> HotaSequence:
    """HOTA counts of one sequence (frames paired by position; ``len(gt) == len(pred)``).

    ``ignored``: the (GT, prediction) masks of :func:`regions.ignored_joints` (joints inside the
    GT frame's ignore regions), computed here when not given."""
    if ignored is None:
        ignored = ignored_in_pair(gt, pred)
    gt_xy_all = kit_joints(np.where(ignored[0][..., None], np.nan, gt.keypoints_xy))
    pr_xy_all = kit_joints(np.where(ignored[1][..., None], np.nan, pred.keypoints_xy))
    heads_all = head_sizes_from_boxes(gt.head_boxes_xyxy)
    gt_slices, pr_slices = gt.frame_slices(), pred.frame_slices()
    frames = []  # per labelled frame: (gt xy, head sizes, gt ids, pr xy, pr ids), after regions
    for k, image in enumerate(gt.images):
        if not image.is_labeled:
            continue
        g, p = gt_slices[k], pr_slices[k]
        gxy, heads, gids = gt_xy_all[g], heads_all[g], gt.track_ids[g]
        pxy, pids = pr_xy_all[p], pred.track_ids[p]
        if image.ignore_regions:
            keep = _kept(gxy)
            gxy, heads, gids = gxy[keep], heads[keep], gids[keep]
            keep = _kept(pxy)
            pxy, pids = pxy[keep], pids[keep]
        lacking = np.flatnonzero(present(gxy).any(axis=1) & np.isnan(heads))
        if lacking.size:
            raise FormatError(gt_file, f"frame {k} ({image.file_name}): GT person with track id "
                                       f"{int(gids[lacking[0]])} has annotated joints but no head "
                                       "box, which the similarity needs")
        frames.append((gxy, heads, gids, pxy, pids))
    return _count(frames)


def _dense(ids_per_frame):
    all_ids = np.concatenate([np.zeros(0, np.int64)] + list(ids_per_frame))
    unique, inverse = np.unique(all_ids, return_inverse=True)
    lengths = [len(i) for i in ids_per_frame]
    return np.split(inverse.reshape(-1), np.cumsum(lengths)[:-1]) if lengths else [], len(unique)


def _count(frames) -> HotaSequence:
    num_alphas = len(ALPHAS)
    gt_dense, num_gt_ids = _dense([f[2] for f in frames])
    pr_dense, num_pr_ids = _dense([f[4] for f in frames])
    gt_id_count = np.zeros((num_gt_ids, NUM_JOINTS))
    pr_id_count = np.zeros((num_pr_ids, NUM_JOINTS))
    pair_g, pair_p, pair_j, pair_s = [], [], [], []
    fn_frames = np.zeros(NUM_JOINTS)  # GT joints of frames with both sides present
    frames_without_predictions = 0
    gt_people = predicted_people = 0
    for (gxy, heads, _, pxy, _), gids, pids in zip(frames, gt_dense, pr_dense):
        gt_present, pr_present = present(gxy), present(pxy)
        np.add.at(gt_id_count, gids, gt_present)
        np.add.at(pr_id_count, pids, pr_present)
        gt_people += len(gxy)
        predicted_people += len(pxy)
        if len(gxy) == 0:  # the kit crashes; here: the frame's predicted joints are false positives
            continue
        if len(pxy) == 0:  # anDoer/PoseTrack21#10: the whole sequence's GT joints, added below
            frames_without_predictions += 1
            continue
        fn_frames += gt_present.sum(axis=0)
        sim = similarity(gxy, heads, pxy)
        g, p, j = assigned_pairs(sim)
        pair_g.append(gids[g])
        pair_p.append(pids[p])
        pair_j.append(j)
        pair_s.append(sim[g, p, j])
    num_gt_joints = gt_id_count.sum(axis=0)
    num_pr_joints = pr_id_count.sum(axis=0)
    shape = (num_alphas, NUM_JOINTS)
    if predicted_people == 0:  # the kit's shortcut for a sequence without any prediction
        zeros = np.zeros(shape)
        counts = _with_total(np.zeros(shape), np.broadcast_to(num_gt_joints, shape).copy(), zeros.copy(),
                             zeros.copy(), zeros.copy(), zeros.copy(), np.ones(shape))
        return HotaSequence(counts, len(frames), gt_people, 0, num_gt_ids, 0)
    g, p, j, s = (np.concatenate(a) if a else np.zeros(0) for a in (pair_g, pair_p, pair_j, pair_s))
    g, p, j = g.astype(np.int64), p.astype(np.int64), j.astype(np.int64)
    hits = s[None, :] >= (ALPHAS - EPS)[:, None]  # (19, M)
    a = np.broadcast_to(np.arange(num_alphas)[:, None], hits.shape)
    cell = (a * NUM_JOINTS + j[None, :])[hits]
    tp = np.bincount(cell, minlength=num_alphas * NUM_JOINTS).reshape(shape).astype(np.float64)
    loc_sum = np.bincount(cell, np.broadcast_to(s, hits.shape)[hits],
                          minlength=num_alphas * NUM_JOINTS).reshape(shape)
    pair_cell = (((a * num_gt_ids + g[None, :]) * num_pr_ids + p[None, :]) * NUM_JOINTS + j[None, :])[hits]
    matches = np.bincount(pair_cell, minlength=num_alphas * num_gt_ids * num_pr_ids * NUM_JOINTS)
    matches = matches.reshape(num_alphas, num_gt_ids, num_pr_ids, NUM_JOINTS).astype(np.float64)
    fn = fn_frames[None, :] - tp + frames_without_predictions * num_gt_joints[None, :]
    fp = num_pr_joints[None, :] - tp
    n_g, n_p = gt_id_count[None, :, None, :], pr_id_count[None, None, :, :]
    per_tp = np.maximum(1, tp)
    ass_a = (matches * matches / np.maximum(1, n_g + n_p - matches)).sum(axis=(1, 2)) / per_tp
    ass_re = (matches * matches / np.maximum(1, n_g)).sum(axis=(1, 2)) / per_tp
    ass_pr = (matches * matches / np.maximum(1, n_p)).sum(axis=(1, 2)) / per_tp
    loc_a = np.maximum(1e-10, loc_sum) / np.maximum(1e-10, tp)
    counts = _with_total(tp, fn, fp, ass_a, ass_re, ass_pr, loc_a)
    return HotaSequence(counts, len(frames), gt_people, predicted_people, num_gt_ids, num_pr_ids)


def _with_total(tp, fn, fp, ass_a, ass_re, ass_pr, loc_a) -> HotaCounts:
    """Append the kit's per-sequence "total" column: counts summed over joints, every ratio the
    plain mean over joints."""
    def summed(x):
        return np.concatenate([x, x.sum(axis=1, keepdims=True)], axis=1)

    return HotaCounts(summed(tp), summed(fn), summed(fp), _mean_total(ass_a), _mean_total(ass_re),
                      _mean_total(ass_pr), _mean_total(loc_a), joint_mean_total=True)


def _mean_total(x: np.ndarray) -> np.ndarray:
    """(19, 15) -> (19, 16): the joints and their plain mean."""
    return np.concatenate([x, x.mean(axis=1, keepdims=True)], axis=1)


# ---------------------------------------------------------------------------------------------
# Several sequences


def combine(sequences) -> HotaCounts:
    """The kit's combination, column by column and threshold by threshold: TP/FN/FP summed,
    AssA/AssRe/AssPr TP-weighted (``sum value x TP / max(1, TP)``), LocA likewise with the kit's
    1e-10 floors. So the total column's DetA pools every joint of every sequence, and its AssA
    weights each sequence's joint mean by that sequence's total TP."""
    counts = [s.counts if isinstance(s, HotaSequence) else s for s in sequences]
    tp = sum(c.tp for c in counts)
    weight = np.maximum(1.0, tp)

    def weighted(name):
        return sum(getattr(c, name) * c.tp for c in counts) / weight

    loc_a = np.maximum(1e-10, sum(c.loc_a * c.tp for c in counts)) / np.maximum(1e-10, tp)
    return HotaCounts(tp, sum(c.fn for c in counts), sum(c.fp for c in counts),
                      weighted("ass_a"), weighted("ass_re"), weighted("ass_pr"), loc_a)


@dataclass(frozen=True)
class HotaResult:
    """HOTA of an evaluation: all sequences combined, and each sequence alone."""

    total: HotaCounts
    per_sequence: dict  # name -> HotaSequence

    @property
    def evaluated_frames(self) -> int:
        return sum(s.evaluated_frames for s in self.per_sequence.values())


def summary(counts: HotaCounts) -> dict:
    """Metric name -> (16,) percent: 100 x the mean over the 19 thresholds, as the kit prints."""
    return {name: 100.0 * values.mean(axis=0) for name, values in counts.metrics().items()}


assert len(JOINT_SLOTS) == NUM_JOINTS and len(ALPHAS) == 19

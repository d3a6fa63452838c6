"""The evaluator: per-frame assignment, per-joint AP over pooled frames, per-joint MOT counts
summed over sequences; the same metric functions for one sequence and for all of them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import PosetrackError
from . import metrics
from .ap import joint_ap
from .assign import assign_predictions, normalised_distances, pckh_hits, prediction_labels
from .hota import HotaResult, combine
from .joints import NUM_EVAL_JOINTS
from .load import EvalFrame, load_sequences, pair_files
from .mot import MotCounts, MotFrame, count_sequence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalOptions:
    """Which of the official evaluator's quirks to reproduce. The defaults give the published
    (official) numbers; turning one off gives numbers that no longer compare with them.

    Attributes:
        drop_last_frame: leave the last evaluated frame of every sequence out of the MOT counts
            (official). False counts it, and makes sequences with one evaluated frame trackable.
        empty_frame_placeholders: a frame without predicted people (or without GT people left
            after ignore regions) counts one placeholder object, miss and false positive per joint
            type (official). False counts its real misses or false positives.
    """

    drop_last_frame: bool = True
    empty_frame_placeholders: bool = True

    @property
    def official(self) -> bool:
        return self.drop_last_frame and self.empty_frame_placeholders


@dataclass(frozen=True)
class PoseData:
    """What AP needs from a set of frames.

    Attributes:
        scores: (N, 15) float64, one row per predicted person (frames in order), -9999 = no score.
        labels: (N, 15) bool, true positives.
        predicted: (N, 15) bool, predicted joints (the ones that enter the ranking).
        num_gt: (15,) int64, annotated GT joints.
    """

    scores: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    num_gt: np.ndarray

    @classmethod
    def concatenate(cls, parts) -> "PoseData":
        parts = list(parts)
        if not parts:
            empty = np.zeros((0, NUM_EVAL_JOINTS))
            return cls(empty, empty.astype(bool), empty.astype(bool), np.zeros(NUM_EVAL_JOINTS, np.int64))
        return cls(np.concatenate([p.scores for p in parts]), np.concatenate([p.labels for p in parts]),
                   np.concatenate([p.predicted for p in parts]), sum(p.num_gt for p in parts))


@dataclass(frozen=True)
class Scores:
    """Results for one sequence or for all: per-joint AP, and MOT counts (None where tracking
    cannot be computed). Metric values are derived with the functions of ``metrics``."""

    ap: tuple  # of JointAP, one per evaluated joint
    mot: MotCounts | None

    @property
    def ap_per_joint(self) -> np.ndarray:
        return np.array([a.ap for a in self.ap])

    @property
    def mota_per_joint(self) -> np.ndarray:
        c = self.mot
        return metrics.mota(c.misses, c.switches, c.false_positives, c.objects)

    @property
    def motp_per_joint(self) -> np.ndarray:
        return metrics.motp(self.mot.sum_distance, self.mot.detections)

    @property
    def precision_per_joint(self) -> np.ndarray:
        return metrics.precision(self.mot.detections, self.mot.false_positives)

    @property
    def recall_per_joint(self) -> np.ndarray:
        return metrics.recall(self.mot.detections, self.mot.objects)


@dataclass(frozen=True)
class EvaluationResult:
    """Everything ``posetrack eval`` reports.

    Attributes:
        total: all sequences together (poseval's mAP and MOT); None when only HOTA was asked for.
        per_sequence: sequence name -> its own Scores (sequences with evaluated frames).
        num_frames: frames poseval evaluated over all sequences (0 without poseval).
        untracked: names of sequences left out of the MOT counts (one evaluated frame while the
            last frame is dropped).
        options: the quirks reproduced.
        hota: PoseTrack21 keypoint HOTA, when asked for.
    """

    total: Scores | None
    per_sequence: dict
    num_frames: int
    untracked: tuple
    options: EvalOptions
    hota: HotaResult | None = None


# ---------------------------------------------------------------------------------------------


METRICS = ("poseval", "hota")  # what ``metrics`` may hold; the CLI's "all" is both


def evaluate(gt_path, pred_path, options: EvalOptions = EvalOptions(),
             workers: int | None = None, metrics=("poseval",)) -> EvaluationResult:
    """Evaluate predictions against PoseTrack ground truth as the official tools do.

    ``gt_path``: a folder of per-sequence GT files (PoseTrack21, 2018 or 2017), or one file;
    ``pred_path``: a folder with a prediction file of the same name for each, or one file;
    ``workers``: processes reading the files (None: one per core; 1: none);
    ``metrics``: "poseval" (mAP and MOTA, as poseval) and/or "hota" (keypoint HOTA, as the
    PoseTrack21 kit).
    """
    metrics = tuple(metrics)
    unknown = set(metrics) - set(METRICS)
    if unknown or not metrics:
        raise ValueError(f"metrics must be some of {METRICS}, got {metrics}")
    sequences = load_sequences(pair_files(gt_path, pred_path), workers, metrics)
    hota = evaluate_hota(sequences) if "hota" in metrics else None
    if "poseval" not in metrics:
        return EvaluationResult(None, {}, 0, (), options, hota)
    result = evaluate_sequences(sequences, options)
    return EvaluationResult(result.total, result.per_sequence, result.num_frames, result.untracked,
                            options, hota)


def evaluate_hota(sequences) -> HotaResult:
    """Combine the HOTA counts of loaded sequences (``load_sequences(..., metrics=("hota",))``)."""
    per_sequence = {s.name: s.hota for s in sequences}
    if not any(s.evaluated_frames for s in per_sequence.values()):
        raise PosetrackError("no ground-truth frame is labelled (is_labeled): nothing to evaluate for HOTA")
    return HotaResult(combine(per_sequence.values()), per_sequence)


def evaluate_sequences(sequences, options: EvalOptions = EvalOptions()) -> EvaluationResult:
    """Evaluate loaded sequences (see :func:`load.load_sequence`) as poseval does."""
    if not options.official:
        log.warning("non-official settings (%s): these numbers do not compare with published ones", options)
    pose_data, mot_counts, untracked = {}, {}, []
    num_frames = 0
    for sequence in sequences:
        if not sequence.frames:
            log.warning("%s: no frame has annotated GT people; the sequence is not evaluated", sequence.name)
            continue
        num_frames += len(sequence.frames)
        per_frame = [frame_outcome(frame) for frame in sequence.frames]
        pose_data[sequence.name] = PoseData.concatenate(p for p, _ in per_frame)
        mot_frames = [m for _, m in per_frame]
        if options.drop_last_frame:
            mot_frames = mot_frames[:-1]
        if not mot_frames:
            untracked.append(sequence.name)
            continue
        mot_counts[sequence.name] = count_sequence(mot_frames, NUM_EVAL_JOINTS,
                                                   options.empty_frame_placeholders)
    if not pose_data:
        raise PosetrackError("no ground-truth frame has annotated people: nothing to evaluate")
    if untracked:
        log.warning("tracking (MOTA) not computed for %d sequence(s) with a single evaluated frame, "
                    "which the official tool leaves out (it drops the last frame of each sequence) "
                    "and fails on: %s", len(untracked), ", ".join(untracked))
    if not mot_counts:
        log.warning("no sequence has two evaluated frames: tracking metrics are not defined")
    per_sequence = {name: Scores(ap_per_joint(data), mot_counts.get(name))
                    for name, data in pose_data.items()}
    total_mot = sum(mot_counts.values(), MotCounts.zeros(NUM_EVAL_JOINTS)) if mot_counts else None
    total = Scores(ap_per_joint(PoseData.concatenate(pose_data.values())), total_mot)
    return EvaluationResult(total, per_sequence, num_frames, tuple(untracked), options)


def frame_outcome(frame: EvalFrame) -> tuple[PoseData, MotFrame]:
    """Assign one frame: its AP data and its MOT input."""
    distances = normalised_distances(frame.gt_xy, frame.gt_head_sizes, frame.pr_xy)
    hits = pckh_hits(distances)
    gt_present, pr_present = frame.gt_present, frame.pr_present
    assigned = assign_predictions(hits, gt_present)
    labels = prediction_labels(hits, assigned, pr_present)
    pose = PoseData(frame.pr_scores, labels, pr_present, gt_present.sum(axis=0))
    mot = MotFrame(frame.gt_ids, frame.pr_ids, gt_present, pr_present, np.where(hits, distances, np.nan))
    return pose, mot


def ap_per_joint(data: PoseData) -> tuple:
    """One :class:`JointAP` per evaluated joint, frames pooled."""
    return tuple(
        joint_ap(data.scores[data.predicted[:, j], j], data.labels[data.predicted[:, j], j], int(data.num_gt[j]))
        for j in range(NUM_EVAL_JOINTS)
    )

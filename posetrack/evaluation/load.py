"""Loading for the evaluator: pair ground-truth and prediction files by name, select the frames the
official evaluator scores, remove joints inside ignore regions, and turn each frame into arrays of
the 15 evaluated joints (poseval's order, see ``joints``).

Files are read only through :mod:`posetrack.formats`, which detects PoseTrack 2018 and 2017.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError, PosetrackError
from ..formats import MAX_TRACK_ID, PoseTrackTable, check_track_id_rows, read_posetrack_table
from .ap import MISSING_SCORE
from .assign import head_sizes_from_boxes
from .hota import HotaSequence, sequence_hota
from .joints import EVAL_SLOTS
from .regions import ignored_in_pair

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalFrame:
    """One evaluated frame: GT and predicted people, 15 evaluated joints each.

    Attributes:
        gt_xy: (G, 15, 2) float64, pixels; NaN for a joint that is not annotated (or ignored).
        gt_head_sizes: (G,) float64, pixels: 0.6 x the head box diagonal (NaN when a person has
            no joints and no head box).
        gt_ids: (G,) int64 track ids, offset by 10000 x the sequence index.
        pr_xy: (P, 15, 2) float64, pixels; NaN for a joint that is not predicted (or ignored).
        pr_scores: (P, 15) float64; -9999 where a predicted joint has no score.
        pr_ids: (P,) int64 track ids, offset by 10000 x the sequence index.
    """

    gt_xy: np.ndarray
    gt_head_sizes: np.ndarray
    gt_ids: np.ndarray
    pr_xy: np.ndarray
    pr_scores: np.ndarray
    pr_ids: np.ndarray

    @property
    def gt_present(self) -> np.ndarray:
        """(G, 15) bool: the GT joint is annotated."""
        return ~np.isnan(self.gt_xy[..., 0])

    @property
    def pr_present(self) -> np.ndarray:
        """(P, 15) bool: the joint is predicted."""
        return ~np.isnan(self.pr_xy[..., 0])


@dataclass(frozen=True)
class EvalSequence:
    """The evaluated frames of one sequence (GT file), in file order."""

    name: str
    index: int
    frames: tuple
    hota: HotaSequence | None = None  # when HOTA is asked for


# ---------------------------------------------------------------------------------------------
# Pairing files


def pair_files(gt_path, pred_path) -> list[tuple[str, Path, Path]]:
    """Pair every GT file with the prediction file of the same name.

    ``gt_path`` is a folder of ``*.json`` files or one file; ``pred_path`` is a folder, or one file
    when ``gt_path`` is one. Returns ``(sequence name, gt file, prediction file)`` sorted by name.
    Raises PosetrackError naming the path: a missing or empty GT folder, a missing prediction
    folder, or prediction files missing for some GT files (all of them listed).
    """
    gt_path, pred_path = Path(gt_path), Path(pred_path)
    if not gt_path.exists():
        raise PosetrackError(f"{gt_path}: no such ground-truth file or folder")
    if not pred_path.exists():
        raise PosetrackError(f"{pred_path}: no such prediction file or folder")
    if gt_path.is_file():
        pred_file = pred_path / gt_path.name if pred_path.is_dir() else pred_path
        if not pred_file.is_file():
            raise PosetrackError(f"{pred_path}: no prediction file {gt_path.name} for the ground truth {gt_path}")
        return [(gt_path.stem, gt_path, pred_file)]
    gt_files = sorted(p for p in gt_path.glob("*.json") if p.is_file())
    if not gt_files:
        raise PosetrackError(f"{gt_path}: the ground-truth folder holds no .json files")
    if not pred_path.is_dir():
        raise PosetrackError(f"{pred_path}: expected a folder of predictions, since the ground truth "
                             f"{gt_path} is a folder")
    missing = [p.name for p in gt_files if not (pred_path / p.name).is_file()]
    if missing:
        raise PosetrackError(f"{pred_path}: prediction files missing for {len(missing)} of "
                             f"{len(gt_files)} ground-truth sequences: {', '.join(missing)}")
    extra = sorted({p.name for p in pred_path.glob("*.json")} - {p.name for p in gt_files})
    if extra:
        log.warning("%d prediction file(s) without ground truth are not evaluated: %s",
                    len(extra), ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else ""))
    return [(p.stem, p, pred_path / p.name) for p in gt_files]


# ---------------------------------------------------------------------------------------------
# Sequences


def load_sequences(pairs, workers: int | None = None, metrics=("poseval",)) -> list[EvalSequence]:
    """Load every ``(name, gt file, prediction file)`` of :func:`pair_files`, sequence index = position.

    Args:
        pairs: from :func:`pair_files`.
        workers: processes reading files in parallel (JSON decoding dominates the run time);
            None: one per CPU core (at most 8); 1: read in this process.
        metrics: "poseval" (the evaluated frames of mAP and MOTA) and/or "hota" (each
            sequence's HOTA counts, computed where the files are read).

    Raises the error of the first bad sequence in ``pairs`` order, whatever the number of workers.
    """
    pairs = list(pairs)
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    jobs = [(i, name, gt, pred, tuple(metrics)) for i, (name, gt, pred) in enumerate(pairs)]
    if workers <= 1 or len(jobs) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [load_sequence(*job) for job in jobs]
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("fork")) as pool:
        outcomes = list(pool.map(_load_job, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    for outcome in outcomes:
        if isinstance(outcome, tuple):  # an error, re-raised here as the same type
            path, problem = outcome
            raise PosetrackError(problem) if path is None else FormatError(path, problem)
    return outcomes


def _load_job(job):
    """load_sequence in a worker; errors come back as (path or None, message) because FormatError's
    two-argument constructor does not survive pickling."""
    try:
        return load_sequence(*job)
    except FormatError as err:
        return (err.path, err.problem)
    except PosetrackError as err:
        return (None, str(err))


def load_sequence(index: int, name: str, gt_file, pred_file, metrics=("poseval",)) -> EvalSequence:
    """Read a GT file and its predictions and keep what the evaluators score: for "poseval" the
    evaluated frames, for "hota" the sequence's HOTA counts (:func:`hota.sequence_hota`).

    Frames are paired by position. A frame is evaluated by poseval when the GT has at least one
    person in it (labelled frames without people, and unlabelled frames, are skipped on both
    sides). Every number stays the float64 the JSON holds, as in poseval.
    """
    gt, pred = read_pair(gt_file, pred_file, poseval_ids="poseval" in metrics)
    ignored = ignored_in_pair(gt, pred)
    counts = sequence_hota(gt, pred, gt_file, ignored) if "hota" in metrics else None
    frames = poseval_frames(index, gt, pred, gt_file, ignored) if "poseval" in metrics else ()
    return EvalSequence(name, index, frames, counts)


def poseval_frames(index: int, gt: PoseTrackTable, pred: PoseTrackTable, gt_file, ignored=None) -> tuple:
    """The frames poseval evaluates, as :class:`EvalFrame` (joints in its order, ignore regions
    applied, ids offset by 10000 x ``index``). ``ignored``: the (GT, prediction) masks of
    :func:`regions.ignored_joints`, computed here when not given."""
    if ignored is None:
        ignored = ignored_in_pair(gt, pred)
    gt_xy = evaluated_joints(np.where(ignored[0][..., None], np.nan, gt.keypoints_xy))
    pr_xy = evaluated_joints(np.where(ignored[1][..., None], np.nan, pred.keypoints_xy))
    pr_scores = evaluated_joints(pred.keypoint_scores)
    pr_scores[np.isnan(pr_scores)] = MISSING_SCORE
    head_sizes = head_sizes_from_boxes(gt.head_boxes_xyxy)
    annotated = evaluated_joints(gt.keypoints_xy)  # before the ignore regions, as poseval checks
    lacking = np.flatnonzero(~np.isnan(annotated[..., 0]).all(axis=1) & np.isnan(head_sizes))
    if lacking.size:
        row = int(lacking[0])
        k = int(gt.frames[row])
        person = row - gt.frame_slices()[k].start
        raise FormatError(gt_file, f"frame {k} ({gt.images[k].file_name}): GT person {person} "
                                   "has annotated joints but no head box, which PCKh needs")
    gt_ids = gt.track_ids + index * MAX_TRACK_ID
    pr_ids = pred.track_ids + index * MAX_TRACK_ID
    frames = []
    for k, (g, p) in enumerate(zip(gt.frame_slices(), pred.frame_slices())):
        if g.stop == g.start:
            continue
        if not gt.images[k].is_labeled:
            log.debug("%s: frame %d is marked unlabelled but has GT people; evaluated, as poseval does",
                      gt_file, k)
        frame = EvalFrame(gt_xy[g], head_sizes[g], gt_ids[g], pr_xy[p], pr_scores[p], pr_ids[p])
        frames.append(without_empty_people(frame) if gt.images[k].ignore_regions else frame)
    return tuple(frames)


def read_pair(gt_file, pred_file, poseval_ids: bool = True) -> tuple[PoseTrackTable, PoseTrackTable]:
    """Read a GT file and its prediction file (float64 tables); check frame counts and track ids
    (unique per frame, non-negative, and below 10000 with ``poseval_ids``: poseval offsets them by
    10000 x the sequence index; the PoseTrack21 kit has no upper bound)."""
    gt = read_posetrack_table(gt_file)
    pred = read_posetrack_table(pred_file)
    if len(pred) != len(gt):
        raise FormatError(pred_file, f"has {len(pred)} frames, but the ground truth {gt_file} has {len(gt)}")
    max_id = MAX_TRACK_ID if poseval_ids else None
    check_track_id_rows(gt_file, gt.images, gt.frames, gt.track_ids, max_id=max_id)
    check_track_id_rows(pred_file, pred.images, pred.frames, pred.track_ids, max_id=max_id)
    return gt, pred


def without_empty_people(frame: EvalFrame) -> EvalFrame:
    """The frame without people who have no joint left (poseval, in frames with ignore regions:
    also people who had none to begin with)."""
    gt_keep = ~np.isnan(frame.gt_xy[..., 0]).all(axis=1)
    pr_keep = ~np.isnan(frame.pr_xy[..., 0]).all(axis=1)
    return EvalFrame(gt_xy=frame.gt_xy[gt_keep], gt_head_sizes=frame.gt_head_sizes[gt_keep],
                     gt_ids=frame.gt_ids[gt_keep], pr_xy=frame.pr_xy[pr_keep],
                     pr_scores=frame.pr_scores[pr_keep], pr_ids=frame.pr_ids[pr_keep])


def evaluated_joints(values: np.ndarray) -> np.ndarray:
    """(N, 17, ...) POSETRACK17 values -> (N, 15, ...) float64 in poseval's joint order (a copy)."""
    return np.asarray(values, dtype=np.float64)[:, list(EVAL_SLOTS)]

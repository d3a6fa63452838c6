"""Reports of an EvaluationResult: the official tool's table, and a JSON-ready dict."""

from __future__ import annotations

import math

import numpy as np

from . import hota, metrics
from .evaluate import EvaluationResult, Scores
from .joints import JOINT_NAMES

# In the order of joints.GROUPS.
_GROUP_LABELS = ("Head", "Shou", "Elb ", "Wri ", "Hip ", "Knee", "Ankl")
AP_HEADER = "&" + "".join(f" {label} &" for label in _GROUP_LABELS) + " Total\\\\"
MOT_HEADER = ("&" + " MOTA &" * 8 + " MOTP & Prec & Rec  \\\\\n"
              + "&" + "".join(f" {label} &" for label in _GROUP_LABELS) + " Total&" * 3 + " Total\\\\")


def _cell(value: float) -> str:
    return "{:>5}".format("%1.1f" % value)


def table_row(values) -> str:
    """A row of the official table: cells of one decimal, right-aligned to 5, '&'-separated."""
    return "&" + " &".join(_cell(v) for v in values) + " \\\\"


def ap_row(scores: Scores) -> str:
    ap = scores.ap_per_joint
    return table_row(list(metrics.group_means(ap).values()) + [metrics.joint_mean(ap)])


def mot_row(scores: Scores) -> str:
    mota = scores.mota_per_joint
    totals = [metrics.joint_mean(v) for v in (mota, scores.motp_per_joint, scores.precision_per_joint,
                                              scores.recall_per_joint)]
    return table_row(list(metrics.group_means(mota).values()) + totals)


def format_table(result: EvaluationResult) -> str:
    """The tables the official tools print: poseval's AP and MOT (with a note where MOT is
    undefined) and/or keypoint HOTA."""
    parts = []
    if result.total is not None:
        parts.append(format_poseval_table(result))
    if result.hota is not None:
        parts.append(format_hota_table(result.hota))
    return "\n\n".join(parts)


def format_hota_table(result: hota.HotaResult) -> str:
    """Keypoint HOTA: one row per joint and the combined total, one column per metric (percent,
    mean over the 19 thresholds, one decimal)."""
    values = hota.summary(result.total)
    header = f"{'':<15}" + "".join(f"{name:>7}" for name in hota.METRICS)
    rows = [f"{label:<15}" + "".join(f"{values[name][j]:>7.1f}" for name in hota.METRICS)
            for j, label in enumerate(hota.JOINT_NAMES + ("total",))]
    return "\n".join([f"Keypoint HOTA (PoseTrack21), {result.evaluated_frames} labelled frames, "
                      "percent, mean over 19 thresholds:", header] + rows)


def format_poseval_table(result: EvaluationResult) -> str:
    """poseval's tables (AP, then MOT)."""
    lines = ["Average Precision (AP) metric:", AP_HEADER, ap_row(result.total),
             "Multiple Object Tracking (MOT) metrics:"]
    if result.total.mot is None:
        lines.append("not defined: no sequence has two evaluated frames")
    else:
        lines += [MOT_HEADER, mot_row(result.total)]
        if result.untracked:
            lines.append(f"(without {len(result.untracked)} sequence(s) with a single evaluated frame)")
    if not result.options.official:
        lines.append(f"Non-official settings: {result.options}")
    return "\n".join(lines)


def _number(value):
    value = float(value)
    return None if math.isnan(value) else value


def _per_joint(values) -> dict:
    return {name: _number(v) for name, v in zip(JOINT_NAMES, values)}


def _with_total(values) -> dict:
    return {**{g: _number(v) for g, v in metrics.group_means(values).items()},
            "total": _number(metrics.joint_mean(values))}


def scores_to_json(scores: Scores) -> dict:
    """The JSON of one set of scores (percent; null where undefined or not computed)."""
    ap = scores.ap_per_joint
    out = {"ap": _with_total(ap)}
    if scores.mot is None:
        out.update({"mota": None, "motp": None, "precision": None, "recall": None,
                    "per_joint": {"ap": _per_joint(ap), "mota": None}, "counts": None})
        return out
    mota = scores.mota_per_joint
    c = scores.mot
    out.update({
        "mota": _with_total(mota),
        "motp": {"total": _number(metrics.joint_mean(scores.motp_per_joint))},
        "precision": {"total": _number(metrics.joint_mean(scores.precision_per_joint))},
        "recall": {"total": _number(metrics.joint_mean(scores.recall_per_joint))},
        "per_joint": {"ap": _per_joint(ap), "mota": _per_joint(mota),
                      "motp": _per_joint(scores.motp_per_joint),
                      "precision": _per_joint(scores.precision_per_joint),
                      "recall": _per_joint(scores.recall_per_joint)},
        "counts": {name: {"misses": int(c.misses[j]), "switches": int(c.switches[j]),
                          "false_positives": int(c.false_positives[j]), "objects": int(c.objects[j]),
                          "detections": int(c.detections[j])}
                   for j, name in enumerate(JOINT_NAMES)},
    })
    return out


def _hota_numbers(counts: hota.HotaCounts) -> dict:
    """"total" and "per_joint" (metric -> joint -> value), percent, mean over the thresholds."""
    values = hota.summary(counts)
    return {"total": {name: float(v[-1]) for name, v in values.items()},
            "per_joint": {name: {joint: float(v[j]) for j, joint in enumerate(hota.JOINT_NAMES)}
                          for name, v in values.items()}}


def _per_threshold(values: np.ndarray) -> dict:
    return {"total": values[:, -1].tolist(),
            "per_joint": {joint: values[:, j].tolist() for j, joint in enumerate(hota.JOINT_NAMES)}}


def hota_to_json(result: hota.HotaResult, per_sequence: bool = False) -> dict:
    """The "hota" part of the ``--json`` document (see :func:`result_to_json`)."""
    out = _hota_numbers(result.total)
    c = result.total
    out["counts"] = {"TP": _per_threshold(c.tp.astype(np.int64)), "FN": _per_threshold(c.fn.astype(np.int64)),
                     "FP": _per_threshold(c.fp.astype(np.int64))}
    out["alphas"] = hota.ALPHAS.tolist()
    out["evaluated_frames"] = result.evaluated_frames
    if per_sequence:
        out["per_sequence"] = {
            name: {**_hota_numbers(s.counts),
                   "counts_mean_over_alpha": {key: float(getattr(s.counts, key.lower())[:, -1].mean())
                                              for key in ("TP", "FN", "FP")},
                   "evaluated_frames": s.evaluated_frames, "gt_people": s.gt_people,
                   "predicted_people": s.predicted_people, "gt_ids": s.gt_ids,
                   "predicted_ids": s.predicted_ids}
            for name, s in result.per_sequence.items()}
    return out


def result_to_json(result: EvaluationResult, per_sequence: bool = False) -> dict:
    """The ``--json`` document, percent throughout, ``null`` where undefined.

    With poseval (the default): ``ap``, ``mota``, ``motp``, ``precision``, ``recall``,
    ``per_joint``, ``counts``, ``evaluated_frames`` at the top level (:func:`scores_to_json`), and
    each sequence's scores under ``per_sequence`` if asked. With HOTA: ``hota`` = {``total``:
    {HOTA, DetA, AssA, LocA, DetRe, DetPr, AssRe, AssPr}, ``per_joint``: {metric: {joint: value}},
    ``counts``: {TP, FN, FP: {``total``, ``per_joint``: one count per threshold}}, ``alphas``,
    ``evaluated_frames`` (labelled frames), and ``per_sequence`` if asked}. Only HOTA asked for:
    the document holds ``hota`` alone.
    """
    out = {}
    if result.total is not None:
        out = scores_to_json(result.total)
        out["evaluated_frames"] = result.num_frames
        if per_sequence:
            out["per_sequence"] = {name: scores_to_json(s) for name, s in result.per_sequence.items()}
    if result.hota is not None:
        out["hota"] = hota_to_json(result.hota, per_sequence)
    return out


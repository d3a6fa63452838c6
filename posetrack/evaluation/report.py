"""Reports of an EvaluationResult: the official tool's table, and a JSON-ready dict."""

from __future__ import annotations

import math

from . import metrics
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
    """The tables the official tool prints (AP, then MOT), with a note where MOT is undefined."""
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


def result_to_json(result: EvaluationResult, per_sequence: bool = False) -> dict:
    """The ``--json`` document: totals, and each sequence's scores under "per_sequence" if asked."""
    out = scores_to_json(result.total)
    out["evaluated_frames"] = result.num_frames
    if per_sequence:
        out["per_sequence"] = {name: scores_to_json(s) for name, s in result.per_sequence.items()}
    return out


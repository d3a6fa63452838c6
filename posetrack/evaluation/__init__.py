"""PoseTrack evaluation equal to the official poseval: mAP (PCKh@0.5) and CLEAR MOT per joint.

Parts: ``load`` (files -> evaluated frames), ``assign`` (PCKh distances, pose assignment), ``ap``,
``mot`` (motmetrics-equal event counts), ``metrics`` (functions of counts), ``report`` (table,
JSON), ``evaluate`` (puts them together). Needs numpy, scipy and motmetrics; never torch.
"""

from .evaluate import EvalOptions, EvaluationResult, Scores, evaluate, evaluate_sequences

__all__ = ["EvalOptions", "EvaluationResult", "Scores", "evaluate", "evaluate_sequences"]

"""Fixtures for the evaluator's tests (helpers in evalcase.py)."""

import pytest

from evalcase import make_video
from posetrack.formats import write_posetrack18


@pytest.fixture
def write_pair(tmp_path):
    """write_pair(name, gt_frames, pred_frames, **options) -> (gt folder, pred folder)."""
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()

    def write(name, gt_frames, pred_frames, pred_scores=1.0, regions=None, labelled=None):
        write_posetrack18(gt_dir / f"{name}.json", make_video(gt_frames, regions=regions, labelled=labelled))
        write_posetrack18(pred_dir / f"{name}.json", make_video(pred_frames, scores=pred_scores,
                                                            head_boxes=False))
        return gt_dir, pred_dir

    return write

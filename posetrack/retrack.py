"""Tracking alone: give track ids to poses that are already computed.

Users who cached per-frame poses re-track them with other settings without re-running the
networks. Optical flow between the video's frames (when given) lets the tracker warp poses
forward; without it the tracker assumes no motion.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable

import numpy as np

from .formats import PoseTrackVideo
from .frame import NO_TRACK
from .tracker import Tracker, TrackerConfig

log = logging.getLogger(__name__)


def retrack(video: PoseTrackVideo, config: TrackerConfig = TrackerConfig(),
            flows: Iterable[np.ndarray | None] | None = None) -> PoseTrackVideo:
    """Replace the track ids of every frame's poses with ones from a fresh tracker.

    Args:
        video: poses per frame (their track ids, if any, are ignored).
        config: tracker settings.
        flows: one flow field per frame, the flow from the previous frame into it (None for the
            first frame, or for all frames to track without motion). ``None``: no flow at all.

    Returns:
        A new PoseTrackVideo with the same images and poses and new track ids (``min_hits``
        is not used: every pose may start a track and gets an id at once).
    """
    # the poses are already the estimator's decisions: every one keeps a row and gets an id
    tracker = Tracker(dataclasses.replace(config, min_hits=1))
    flows = iter(flows) if flows is not None else None
    tracked = []
    for poses in video.poses:
        flow = next(flows, None) if flows is not None else None
        tracker.propagate(flow)
        tracker.update(poses.replace(track_ids=np.full(len(poses), NO_TRACK)))
        tracked += tracker.pop_final()
    tracked += tracker.flush()
    return PoseTrackVideo(video.images, tracked, video.head_boxes_xyxy, video.format)


def flows_between_frames(frames, flow_model) -> Iterable:
    """Yield None for the first frame, then the flow field from each frame to the next (kept at
    the resolution it was computed at; the tracker samples it at the joints)."""
    previous = None
    for _, image in frames:
        yield None if previous is None else flow_model.field(previous, image)
        previous = image

"""Temporal smoothing of tracked keypoints with the One-Euro filter (Casiez et al., CHI 2012).

Each joint of each track is filtered on its own: an exponential low-pass filter whose cutoff
rises with the joint's speed, so a joint at rest is smoothed hard (no jitter) and a moving joint
lightly (little lag). Speed is measured in person heights per second (the height of the person's
box), so one setting serves near and far people and any video size.

Optional and off by default: smoothing removes the frame-to-frame jitter users see in rendered
output, but it moves joints away from where the network put them, so evaluated output is left as
the network gives it (see scripts/bench_tracking.py for its effect on mAP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import setting, validate
from .formats import PoseTrackVideo
from .frame import NO_TRACK, Poses
from .geometry import boxes_from_keypoints


@dataclass(frozen=True)
class SmoothingConfig:
    """One-Euro filter settings. Defaults were chosen with scripts/bench_tracking.py.
    ``enabled`` is for the commands (run, batch, render smooth only when it is on); the
    functions here always smooth."""

    enabled: bool = setting(False, (
        "Smooth the written and drawn keypoints over time (One-Euro filter): less jitter in "
        "overlays, but keypoints are no longer exactly the network's and lag fast motion a "
        "little; leave it off for evaluation."), option="smooth")

    min_cutoff: float = setting(1.0, (
        "Cutoff frequency (Hz) of a joint at rest. Lower: steadier still joints, more lag when "
        "they start to move; higher: less lag, more jitter left."), low=0.0, low_open=True)
    beta: float = setting(10.0, (
        "How fast the cutoff rises with speed (Hz per person height per second). Higher: fast "
        "limbs follow with less lag, jitter returns sooner; lower: smoother, lags fast motion."),
        low=0.0)
    d_cutoff: float = setting(1.0, (
        "Cutoff frequency (Hz) of the speed estimate that drives the cutoff. Higher: reacts "
        "sooner to a change of speed, but noise then opens the filter more often."),
        low=0.0, low_open=True)

    def __post_init__(self):
        validate(self)


def smoothing_factor(cutoff_hz, dt_s):
    """The exponential filter's weight of a new sample: 1 / (1 + tau / dt), tau = 1 / (2 pi f)."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt_s)


@dataclass
class _JointState:
    """Filter state of one track: per joint the filtered position, speed and last time."""

    position: np.ndarray  # (J, 2) filtered position; NaN where the joint has no state
    velocity: np.ndarray  # (J, 2) filtered velocity, person heights / s
    time: np.ndarray  # (J,) time of the last sample, s; NaN where no state


def one_euro_step(state: _JointState, xy: np.ndarray, t: float, height: float,
                  config: SmoothingConfig) -> np.ndarray:
    """Filter one track's joints at time ``t``; updates ``state`` in place.

    Args:
        xy: (J, 2) this frame's joints, NaN where absent (they stay absent, their state is kept).
        height: the person's height in pixels (speed is in heights per second).

    Returns:
        (J, 2) filtered positions.
    """
    present = ~np.isnan(xy).any(axis=1)
    fresh = present & np.isnan(state.time)
    ongoing = present & ~fresh
    out = np.full_like(xy, np.nan)
    out[fresh] = xy[fresh]
    state.position[fresh] = xy[fresh]
    state.velocity[fresh] = 0.0
    if ongoing.any():
        dt = (t - state.time[ongoing])[:, None]
        speed_raw = (xy[ongoing] - state.position[ongoing]) / dt / height
        velocity = state.velocity[ongoing] + smoothing_factor(config.d_cutoff, dt) * (
            speed_raw - state.velocity[ongoing])
        cutoff = config.min_cutoff + config.beta * np.hypot(*velocity.T)[:, None]
        position = state.position[ongoing] + smoothing_factor(cutoff, dt) * (
            xy[ongoing] - state.position[ongoing])
        state.velocity[ongoing], state.position[ongoing] = velocity, position
        out[ongoing] = position
    state.time[present] = t
    return out


class TrackSmoother:
    """Online One-Euro smoothing of tracked poses, one frame at a time (for a running pipeline).

    A joint's filter runs from the first frame its track shows it; a joint absent in some frames
    stays absent there and resumes from its last filtered value (the longer the gap, the more the
    new value counts); a new track id starts fresh filters. People without a track id (-1) are
    left as they are. Scores, boxes and ids are unchanged.
    """

    def __init__(self, config: SmoothingConfig = SmoothingConfig(), fps: float = 25.0):
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.config = config
        self.fps = fps
        self._states: dict[int, _JointState] = {}

    def __call__(self, poses: Poses, frame_index: int) -> Poses:
        """The poses of frame ``frame_index`` (frames equally spaced at ``fps``), smoothed."""
        keypoints = poses.keypoints_xy.copy()
        heights = _person_heights(poses)
        for i, track in enumerate(poses.track_ids.tolist()):
            if track == NO_TRACK:
                continue
            state = self._states.get(track)
            if state is None:
                joints = poses.num_joints
                state = self._states[track] = _JointState(
                    np.full((joints, 2), np.nan), np.zeros((joints, 2)), np.full(joints, np.nan))
            keypoints[i] = one_euro_step(state, keypoints[i].astype(np.float64),
                                         frame_index / self.fps, heights[i], self.config)
        return poses.replace(keypoints_xy=keypoints)


def smooth_tracks(video: PoseTrackVideo, config: SmoothingConfig = SmoothingConfig(),
                  fps: float = 25.0) -> PoseTrackVideo:
    """Smooth every track's keypoints over time (see ``TrackSmoother``); returns a new video."""
    smoother = TrackSmoother(config, fps)
    smoothed = [smoother(poses, k) for k, poses in enumerate(video.poses)]
    return PoseTrackVideo(video.images, smoothed, video.head_boxes_xyxy, video.format)


def _person_heights(poses: Poses) -> np.ndarray:
    """(N,) box height in pixels, or the height of the joints' extent without a box; at least 1."""
    heights = poses.boxes_xyxy[:, 3] - poses.boxes_xyxy[:, 1]
    extent = boxes_from_keypoints(poses.keypoints_xy, enlarge=0.0)
    heights = np.where(np.isfinite(heights) & (heights > 0), heights, extent[:, 3] - extent[:, 1])
    return np.where(np.isfinite(heights) & (heights > 1), heights, 1.0)

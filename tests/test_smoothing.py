"""One-Euro smoothing of tracks: steady joints stay put, jitter shrinks, gaps and new tracks are
handled, and the speed setting trades lag for smoothness."""

import numpy as np
import pytest

from posetrack.formats import ImageInfo, PoseTrackVideo
from posetrack.frame import Poses
from posetrack.smoothing import SmoothingConfig, smooth_tracks, smoothing_factor

FPS = 25.0


def video_of(tracks):
    """tracks: list over frames of lists of (track_id, keypoints (17, 2))."""
    poses = []
    for people in tracks:
        n = len(people)
        kp = np.array([xy for _, xy in people], np.float32).reshape(n, 17, 2)
        boxes = np.tile(np.array([0, 0, 100, 200], np.float32), (n, 1))  # person height 200 px
        poses.append(Poses(boxes, np.ones(n), kp, np.ones((n, 17)), [t for t, _ in people]))
    images = [ImageInfo(k, f"{k:06d}.jpg") for k in range(len(tracks))]
    return PoseTrackVideo(images, poses, [np.full((len(p), 4), np.nan, np.float32) for p in poses])


def series(video, track, joint=0):
    """(F, 2) positions of one joint of one track (NaN where absent)."""
    out = np.full((len(video), 2), np.nan)
    for k, p in enumerate(video.poses):
        rows = np.flatnonzero(p.track_ids == track)
        if len(rows):
            out[k] = p.keypoints_xy[rows[0], joint]
    return out


def test_constant_signal_is_unchanged():
    xy = np.tile([[320.0, 240.0]], (17, 1))
    video = video_of([[(0, xy)]] * 30)
    smoothed = smooth_tracks(video, SmoothingConfig(), FPS)
    np.testing.assert_allclose(series(smoothed, 0), series(video, 0), atol=1e-4)


def test_noise_is_reduced():
    rng = np.random.default_rng(0)
    truth = np.array([320.0, 240.0])
    frames = [[(0, truth + rng.normal(0, 5, (17, 2)))] for _ in range(100)]
    video = video_of(frames)
    smoothed = smooth_tracks(video, SmoothingConfig(), FPS)
    raw_error = np.hypot(*(series(video, 0)[20:] - truth).T).mean()
    smooth_error = np.hypot(*(series(smoothed, 0)[20:] - truth).T).mean()
    assert smooth_error < 0.7 * raw_error


def test_absent_joints_stay_absent_and_resume():
    xy = np.tile([[100.0, 100.0]], (17, 1))
    gap = xy.copy()
    gap[3] = np.nan  # joint 3 missing in frames 5-7
    frames = [[(0, xy + k)] if not 5 <= k <= 7 else [(0, gap + k)] for k in range(12)]
    smoothed = smooth_tracks(video_of(frames), SmoothingConfig(), FPS)
    joint3 = series(smoothed, 0, joint=3)
    assert np.isnan(joint3[5:8]).all()
    assert not np.isnan(joint3[:5]).any() and not np.isnan(joint3[8:]).any()
    # after the gap it resumes from its filtered value: smoothed, not a copy of the input
    assert joint3[8, 0] != pytest.approx(108.0)
    # the other joints are filtered through the gap
    assert not np.isnan(series(smoothed, 0, joint=0)).any()


def test_a_new_track_restarts_the_filter():
    a, b = np.full((17, 2), 100.0), np.full((17, 2), 500.0)
    frames = [[(0, a)]] * 10 + [[(1, b)]] * 3
    smoothed = smooth_tracks(video_of(frames), SmoothingConfig(), FPS)
    np.testing.assert_allclose(series(smoothed, 1)[10], [500.0, 500.0])  # not pulled towards 100


def test_a_track_that_ends_and_returns_resumes_its_own_filter():
    still = np.full((17, 2), 100.0)
    frames = [[(0, still)]] * 5 + [[]] * 3 + [[(0, still + 50)]]
    smoothed = smooth_tracks(video_of(frames), SmoothingConfig(), FPS)
    value = series(smoothed, 0)[8, 0]
    assert 100.0 < value < 150.0


def test_untracked_people_and_input_are_left_alone():
    rng = np.random.default_rng(1)
    frames = [[(-1, rng.normal(200, 5, (17, 2))), (4, rng.normal(200, 5, (17, 2)))] for _ in range(5)]
    video = video_of(frames)
    before = [p.keypoints_xy.copy() for p in video.poses]
    smoothed = smooth_tracks(video, SmoothingConfig(), FPS)
    for k in range(5):
        np.testing.assert_array_equal(video.poses[k].keypoints_xy, before[k])  # input unchanged
        np.testing.assert_array_equal(smoothed.poses[k].keypoints_xy[0], before[k][0])
        np.testing.assert_array_equal(smoothed.poses[k].track_ids, video.poses[k].track_ids)


def test_beta_trades_lag_for_smoothness():
    # a joint moving at a steady 2 person heights per second (16 px a frame)
    frames = [[(0, np.tile([[10.0 + 16 * k, 100.0]], (17, 1)))] for k in range(40)]
    video = video_of(frames)
    lag = {}
    for beta in (0.0, 3.0):
        smoothed = smooth_tracks(video, SmoothingConfig(beta=beta), FPS)
        lag[beta] = float((series(video, 0) - series(smoothed, 0))[-1, 0])
    assert 0 < lag[3.0] < 0.5 * lag[0.0]


def test_smoothing_factor_edges():
    assert smoothing_factor(1.0, 1e9) == pytest.approx(1.0)  # a long gap: take the new sample
    assert smoothing_factor(1e-9, 0.04) == pytest.approx(0.0, abs=1e-6)  # near-zero cutoff: hold


@pytest.mark.parametrize("changes, message", [
    ({"min_cutoff": 0.0}, "min_cutoff must be a number > 0"),
    ({"d_cutoff": -1.0}, "d_cutoff must be a number > 0"),
    ({"beta": -0.1}, "beta must be a number >= 0"),
])
def test_config_is_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        SmoothingConfig(**changes)


def test_fps_is_validated():
    with pytest.raises(ValueError, match="fps must be > 0"):
        smooth_tracks(video_of([]), SmoothingConfig(), 0.0)


def test_online_smoother_equals_the_whole_video_pass():
    from posetrack.formats import video_from_frames
    from posetrack.frame import Poses
    from posetrack.smoothing import SmoothingConfig, TrackSmoother, smooth_tracks

    rng = np.random.default_rng(3)
    poses = []
    for k in range(12):
        keypoints = (np.array([[100.0, 100.0], [300.0, 120.0]])[:, None, :] + 2.0 * k
                     + rng.normal(0, 3, (2, 17, 2))).astype(np.float32)
        boxes = np.concatenate([keypoints.min(1) - 5, keypoints.max(1) + 5], 1)
        poses.append(Poses(boxes, np.ones(2), keypoints, np.ones((2, 17)), [4, 9]))
    whole = smooth_tracks(video_from_frames([f"{k}.jpg" for k in range(12)], poses), SmoothingConfig(), 25.0)
    online = TrackSmoother(SmoothingConfig(), 25.0)
    for k, p in enumerate(poses):
        np.testing.assert_array_equal(online(p, k).keypoints_xy, whole.poses[k].keypoints_xy)
    assert not np.allclose(whole.poses[-1].keypoints_xy, poses[-1].keypoints_xy)

"""Seeded synthetic multi-person scenes, and what a pose-tracking pipeline would see in them.

Benchmark and test support (scripts/bench_tracking.py, tests/test_tracking_regression.py), not
part of the installed package: scripts and tests put the repository root on the path.

A scene is a short clip (1280x720) of articulated walkers in PoseTrack 2018 form. Its difficulty
is set by a ``SceneSpec``: people crossing in front of each other, walking behind pillars for
several frames, running past a panning camera, entering and leaving, standing in a crowd.
People stand on a ground plane, so nearer people are taller, lower in the image, and hide the
people behind them.

From the true scene it derives a pipeline's inputs, frame by frame:

* ground truth as PoseTrack val has it (:func:`ground_truth`): only labelled frames (a dense
  central block, every 4th frame elsewhere) carry people; hidden and out-of-view joints, and the
  ear slots, are not annotated; head boxes are given;
* person detections (:func:`detections`): a person is missed more often when partly hidden,
  fast (blur), or already missed in the frame before; boxes jitter; false positives appear at
  random and on a person-like background object (a "decoy") that is detected again and again;
* a pose estimator (:func:`estimate_poses`) that answers any box: the person it covers best gets
  their pose with noise scaled to their size, rare outlier joints and left/right swaps, and
  joint scores that fall as the error grows; hidden joints are guessed with low scores, or
  snapped onto the person in front; a box on nobody gets a junk pose with low scores;
* a dense optical-flow field per frame (:func:`flow_field`): camera pan plus each person's
  articulated motion painted over their silhouette (the nearer person wins), plus noise that
  grows with the motion. It is drawn at 1/4 resolution and repeated up to full size, which costs
  about 5 ms a frame and mimics patch-based flow (OpenCV DIS) that cannot resolve thin limbs.

Everything is a pure function of the scene, and a scene is a pure function of its spec and the
``np.random.Generator`` it is made with: per-frame randomness comes from seeds the scene stores,
so results do not depend on the order in which frames are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from posetrack.formats import ImageInfo, PoseTrackVideo
from posetrack.frame import NO_TRACK, Detections, Poses
from posetrack.geometry import box_iou
from posetrack.joints import NUM_JOINTS, POSETRACK17
from posetrack.matching import greedy_match
from posetrack.detection import DetectorConfig
from posetrack.pipeline import PipelineConfig, TrackingStep, filter_output

WIDTH, HEIGHT = 1280, 720
FLOW_STRIDE = 4  # the flow field is drawn at 1/4 resolution, then repeated to full size
_HORIZON_Y = 200.0  # image row of the horizon: a person's feet lie at HORIZON + 1.15 x height

_J = {name: i for i, name in enumerate(POSETRACK17.joints)}
_EARS = np.array([_J["left_ear"], _J["right_ear"]])
_LABELLED_JOINTS = np.setdiff1d(np.arange(NUM_JOINTS), _EARS)  # PoseTrack never labels the ears
# Per-joint estimator noise, in person heights (1 sigma): head joints are easy, wrists and ankles
# hard, as top-down networks show on PoseTrack.
_NOISE_SIGMA = np.array([
    0.012, 0.012, 0.014, 0.012, 0.012,  # nose, head_bottom, head_top, ears
    0.018, 0.018, 0.024, 0.024, 0.032, 0.032,  # shoulders, elbows, wrists
    0.022, 0.022, 0.025, 0.025, 0.030, 0.030,  # hips, knees, ankles
])
_HEAD_SIZE = 0.127  # PoseTrack head size (0.6 x head-box diagonal) in person heights
# Body silhouette: capsules around skeleton segments, radius in person heights.
_SEGMENTS = [(a, b, 0.045) for a, b in POSETRACK17.skeleton if _EARS[0] not in (a, b)]
_SEGMENTS += [(_J["head_bottom"], _J["left_hip"], 0.08), (_J["head_bottom"], _J["right_hip"], 0.08),
              (_J["head_top"], _J["head_bottom"], 0.075)]
_SEG_A = np.array([a for a, _, _ in _SEGMENTS])
_SEG_B = np.array([b for _, b, _ in _SEGMENTS])
_SEG_R = np.array([r for _, _, r in _SEGMENTS])

SceneKind = Literal["crossing", "occlusion", "fast_pan", "enter_leave", "crowd", "couples"]
SCENE_KINDS: tuple[str, ...] = ("crossing", "occlusion", "fast_pan", "enter_leave", "crowd", "couples")
COUPLE_STYLES = ("dance", "hug", "arm_in_arm", "pass_in_front")


@dataclass(frozen=True)
class SceneSpec:
    """What kind of clip to make and how hard its pipeline inputs are.

    Attributes:
        kind: the layout of people and camera (see ``SCENE_KINDS``): "crossing" (walkers in
            opposite directions pass in front of each other), "occlusion" (walkers pass behind
            pillars for several frames), "fast_pan" (runners, a fast shaky camera pan),
            "enter_leave" (people walk in and out of view, one entering where another left),
            "crowd" (a dense group standing and shuffling, gesturing), "couples" (pairs who
            overlap heavily for most of the clip: dancing and swapping sides, hugging, walking
            arm in arm, one passing slowly close in front of the other).
        num_frames: clip length.
        miss_rate: probability that a fully visible, slow person is not detected in a frame.
        false_positives_per_frame: mean number of random false detections a frame.
        noise_scale: multiplies the keypoint noise of the pose estimator.
        flow_noise: pixel noise of the flow field (it also grows by 8% of the motion).
    """

    kind: SceneKind
    num_frames: int = 60
    miss_rate: float = 0.07
    false_positives_per_frame: float = 0.3
    noise_scale: float = 1.0
    flow_noise: float = 0.4

    def __post_init__(self):
        if self.kind not in SCENE_KINDS:
            raise ValueError(f"kind must be one of {SCENE_KINDS}, got {self.kind!r}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames!r}")


@dataclass(frozen=True)
class Scene:
    """One generated clip: the true people and the pipeline observations drawn for them.

    P people (the last ``num_decoys`` of them are person-like background objects that are never
    in the ground truth), F frames, J = 17 joints (POSETRACK17).

    Attributes:
        name: sequence name (the file stem of its PoseTrack files).
        spec: the spec it was made from.
        seed: seed of the per-frame randomness (junk poses, flow noise).
        keypoints_xy: (F, P, J, 2) true joint positions, pixels, also for hidden joints.
        heights: (F, P) person height in pixels (head top to ankles standing straight).
        present: (F, P) bool, the person is in the clip (may still be out of view).
        hidden: (F, P, J) bool, the joint is outside the image or behind a pillar or a nearer
            person.
        hidden_by: (F, P, J) int, the person hiding the joint, or -1.
        occluders_xyxy: (F, K, 4) pillars in image pixels (they move with the camera).
        camera_xy: (F, 2) camera offset; a static point at world x is at image x - camera.
        labelled: (F,) bool, the frame has ground truth.
        detected: (F, P) bool, the person detector finds the person.
        det_boxes_xyxy: (F, P, 4) the detector's box when it finds them.
        det_scores: (F, P) its score.
        pose_xy: (F, P, J, 2) what the pose estimator answers for the person's box.
        pose_scores: (F, P, J) its joint scores.
        false_boxes_xyxy: per frame, (N, 4) random false detections; ``false_scores`` theirs.
    """

    name: str
    spec: SceneSpec
    seed: int
    keypoints_xy: np.ndarray
    heights: np.ndarray
    present: np.ndarray
    hidden: np.ndarray
    hidden_by: np.ndarray
    occluders_xyxy: np.ndarray
    camera_xy: np.ndarray
    labelled: np.ndarray
    num_decoys: int
    detected: np.ndarray
    det_boxes_xyxy: np.ndarray
    det_scores: np.ndarray
    pose_xy: np.ndarray
    pose_scores: np.ndarray
    false_boxes_xyxy: tuple
    false_scores: tuple

    @property
    def num_frames(self) -> int:
        return self.keypoints_xy.shape[0]

    @property
    def num_people(self) -> int:
        """Real people (decoys excluded)."""
        return self.keypoints_xy.shape[1] - self.num_decoys


def labelled_frames(num_frames: int, dense: int = 30, step: int = 4) -> np.ndarray:
    """(F,) bool: a dense central block of ``dense`` frames, and every ``step``-th frame outside
    it, as in PoseTrack val."""
    labelled = np.arange(num_frames) % step == 0
    start = max((num_frames - dense) // 2, 0)
    labelled[start:start + dense] = True
    return labelled


# ---------------------------------------------------------------------------------------------
# People: trajectories and articulated poses


@dataclass(frozen=True)
class _Walker:
    world_x: np.ndarray  # (F,) pelvis x in world pixels
    height: np.ndarray  # (F,) person height, pixels
    phase: np.ndarray  # (F,) gait phase, radians
    facing: float  # +1 walking towards +x, -1 towards -x
    front: float  # +1 facing the camera (their left on image right), -1 showing their back
    width: float  # shoulder/hip width factor: 1 frontal, small in profile
    leg_swing: float  # radians
    arm_swing: float
    gesture: np.ndarray  # (F,) extra arm raise, radians (standing people wave, point)
    present: np.ndarray  # (F,) bool


def _smooth_noise(rng, num_frames, scale, periods=(40.0, 17.0)):
    """(F,) a smooth random signal of about ``scale`` amplitude (a sum of random sinusoids)."""
    t = np.arange(num_frames)
    out = np.zeros(num_frames)
    for period in periods:
        out += scale * rng.uniform(-1, 1) * np.sin(2 * np.pi * t / (period * rng.uniform(0.7, 1.3))
                                                   + rng.uniform(0, 2 * np.pi))
    return out / len(periods)


def _walker(rng, num_frames, start_x, height, speed, *, gait="walk", present=None, depth_rate=0.0):
    """A person at world x ``start_x`` (frame 0) moving ``speed`` heights a frame (signed)."""
    t = np.arange(num_frames)
    height = height * np.exp(depth_rate * t)
    velocity = speed * height * (1 + _smooth_noise(rng, num_frames, 0.25))
    if gait == "stand":
        velocity = speed * height * _smooth_noise(rng, num_frames, 1.0, (30.0, 13.0))
    world_x = start_x + np.concatenate([[0.0], np.cumsum(velocity[1:])])
    stride = {"walk": 0.8, "run": 1.3, "stand": 0.8}[gait]
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(np.abs(velocity) / (stride * height))
    facing = float(np.sign(speed) or rng.choice([-1.0, 1.0]))
    gesture = np.zeros(num_frames)
    if gait == "stand" and rng.random() < 0.6:
        gesture = np.clip(_smooth_noise(rng, num_frames, 3.0, (25.0, 9.0)), 0, 2.2)
    return _Walker(
        world_x=world_x, height=height, phase=phase, facing=facing,
        front=float(rng.choice([-1.0, 1.0])),
        width=float(rng.uniform(0.35, 1.0) if gait != "stand" else rng.uniform(0.6, 1.0)),
        leg_swing={"walk": 0.4, "run": 0.75, "stand": 0.05}[gait] * rng.uniform(0.8, 1.2),
        arm_swing={"walk": 0.35, "run": 0.9, "stand": 0.1}[gait] * rng.uniform(0.7, 1.3),
        gesture=gesture,
        present=np.ones(num_frames, bool) if present is None else present,
    )


def _pose(walker: _Walker, camera_x, camera_y) -> np.ndarray:
    """(F, J, 2) image positions of the walker's joints."""
    h = walker.height[:, None]
    s, lat = walker.facing, walker.front * walker.width
    phi = walker.phase
    xy = np.zeros((len(phi), NUM_JOINTS, 2))

    def put(name, x, y):
        xy[:, _J[name], 0], xy[:, _J[name], 1] = x, y

    put("head_top", 0.0, -0.52)
    put("nose", 0.035 * s, -0.42)
    put("head_bottom", 0.0, -0.36)
    put("left_ear", 0.04 * lat - 0.01 * s, -0.43)
    put("right_ear", -0.04 * lat - 0.01 * s, -0.43)
    for side, sign, offset in (("left", 1.0, 0.0), ("right", -1.0, np.pi)):
        shoulder = np.array([0.11 * sign * lat, -0.30])
        hip = np.array([0.085 * sign * lat, 0.0])
        put(f"{side}_shoulder", *shoulder)
        put(f"{side}_hip", *hip)
        swing = walker.leg_swing * np.sin(phi + offset)
        flex = 0.15 + walker.leg_swing * 1.2 * np.clip(np.cos(phi + offset), 0, None)
        knee = hip[:, None] + 0.245 * np.array([s * np.sin(swing), np.cos(swing)])
        ankle = knee + 0.245 * np.array([s * np.sin(swing - flex), np.cos(swing - flex)])
        put(f"{side}_knee", *knee)
        put(f"{side}_ankle", *ankle)
        arm = -walker.arm_swing * np.sin(phi + offset) + (walker.gesture if side == "right" else 0.0)
        bend = 0.3 + 0.5 * walker.arm_swing * np.clip(np.sin(phi + offset + 0.5), 0, None)
        elbow = shoulder[:, None] + 0.17 * np.array([s * np.sin(arm), np.cos(arm)])
        wrist = elbow + 0.15 * np.array([s * np.sin(arm + bend), np.cos(arm + bend)])
        put(f"{side}_elbow", *elbow)
        put(f"{side}_wrist", *wrist)
    bob = 0.012 * np.cos(2 * phi) * (walker.leg_swing > 0.1)
    pelvis_x = walker.world_x - camera_x
    pelvis_y = _HORIZON_Y + 1.15 * walker.height - 0.48 * walker.height + bob * walker.height - camera_y
    return xy * h[:, :, None] + np.stack([pelvis_x, pelvis_y], axis=1)[:, None, :]


def _layout(spec: SceneSpec, rng):
    """-> (walkers, camera (F, 2), pillars (K, 4) world xyxy) for the spec's kind."""
    F = spec.num_frames
    t = np.arange(F)
    camera = np.zeros((F, 2))
    pillars = np.zeros((0, 4))
    walkers = []
    if spec.kind == "crossing":
        camera[:, 0] = rng.uniform(-2, 2) * t
        for _ in range(int(rng.integers(1, 3))):  # pairs that cross
            height = rng.uniform(180, 380)
            cross_x, cross_t = rng.uniform(400, 880), rng.uniform(0.3, 0.7) * F
            for direction in (1.0, -1.0):
                h = height * rng.uniform(0.85, 1.15)
                speed = direction * rng.uniform(0.02, 0.045)
                start = cross_x - speed * h * cross_t + camera[int(cross_t), 0]
                walkers.append(_walker(rng, F, start, h, speed))
        if rng.random() < 0.5:  # a bystander
            walkers.append(_walker(rng, F, rng.uniform(100, 1180), rng.uniform(150, 300), 0.005,
                                   gait="stand"))
    elif spec.kind == "occlusion":
        camera[:, 0] = rng.uniform(-3, 3) * t
        for _ in range(int(rng.integers(1, 3))):
            # a pillar a walker spends 5-15 frames behind
            h = rng.uniform(200, 380)
            speed = rng.choice([-1.0, 1.0]) * rng.uniform(0.02, 0.04)
            width = rng.uniform(5, 12) * abs(speed) * h + 0.15 * h
            hide_t = rng.uniform(0.3, 0.7) * F
            centre = rng.uniform(300, 980)
            pillars = np.vstack([pillars, [centre - width / 2, 0, centre + width / 2, HEIGHT]])
            start = centre - speed * h * hide_t + camera[int(hide_t), 0]
            walkers.append(_walker(rng, F, start, h, speed))
        for _ in range(int(rng.integers(1, 3))):  # others, in front of or behind the first
            walkers.append(_walker(rng, F, rng.uniform(100, 1180), rng.uniform(160, 420),
                                   rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 0.03)))
    elif spec.kind == "fast_pan":
        pan = rng.choice([-1.0, 1.0]) * rng.uniform(10, 25)
        camera[:, 0] = pan * t + _smooth_noise(rng, F, 12.0, (9.0, 5.0))
        camera[:, 1] = _smooth_noise(rng, F, 8.0, (11.0, 6.0))
        for _ in range(int(rng.integers(2, 5))):
            h = rng.uniform(180, 400)
            speed = np.sign(pan) * rng.uniform(0.05, 0.11)
            start = rng.uniform(200, 1080) - speed * h * F / 2 + camera[F // 2, 0]
            walkers.append(_walker(rng, F, start, h, speed, gait="run"))
    elif spec.kind == "enter_leave":
        camera[:, 0] = rng.uniform(-2, 2) * t
        for _ in range(int(rng.integers(3, 6))):
            h = rng.uniform(160, 400)
            speed = rng.choice([-1.0, 1.0]) * rng.uniform(0.025, 0.05)
            edge = -0.2 * h if speed > 0 else WIDTH + 0.2 * h
            enter_t = rng.uniform(-0.5, 0.7) * F
            start = edge - speed * h * enter_t
            walkers.append(_walker(rng, F, start, h, speed, depth_rate=rng.uniform(-0.004, 0.004)))
        # one person turns up where another left a few frames before (a tempting wrong match)
        leaver = walkers[0]
        leave = np.flatnonzero((leaver.world_x > WIDTH + 0.2 * leaver.height[0])
                               | (leaver.world_x < -0.2 * leaver.height[0]))
        if len(leave) and leave[0] + 4 < F:
            back = -np.sign(leaver.facing)
            start = leaver.world_x[leave[0]] - back * leaver.height[0] * 0.03 * (leave[0] + 3)
            present = t >= leave[0] + 3
            walkers.append(_walker(rng, F, start, leaver.height[0] * rng.uniform(0.9, 1.1),
                                   back * 0.03, present=present))
    elif spec.kind == "couples":
        camera[:, 0] = rng.uniform(-2, 2) * t
        for _ in range(int(rng.integers(1, 3))):
            walkers += _couple(rng, F, str(rng.choice(COUPLE_STYLES)), rng.uniform(220, 400),
                               rng.uniform(350, 930) + camera[F // 2, 0])
        if rng.random() < 0.5:  # a bystander
            walkers.append(_walker(rng, F, rng.uniform(100, 1180), rng.uniform(150, 300), 0.005,
                                   gait="stand"))
    else:  # crowd
        camera[:, 0] = _smooth_noise(rng, F, 20.0, (50.0, 23.0))
        centre = rng.uniform(450, 830)
        for _ in range(int(rng.integers(7, 11))):
            gait = "stand" if rng.random() < 0.7 else "walk"
            speed = rng.uniform(0.01, 0.03) if gait == "stand" else \
                rng.choice([-1.0, 1.0]) * rng.uniform(0.01, 0.025)
            walkers.append(_walker(rng, F, centre + rng.normal(0, 160), rng.uniform(170, 420),
                                   speed, gait=gait))
    return walkers, camera, pillars


def _couple(rng, num_frames, style, height, centre):
    """Two people who overlap for most of the clip around world x ``centre``; the second is a
    little further away (smaller), so the first hides parts of them whenever they overlap.

    "dance": side by side, swaying and swapping sides (each passes in front of the other) every
    1-2.5 s; "hug": nearly on top of each other, barely moving; "arm_in_arm": walking together,
    a shoulder width apart; "pass_in_front": one stands, the other walks slowly past close in
    front of them, overlapping for about half the clip.
    """
    t = np.arange(num_frames)
    far = height * rng.uniform(0.9, 0.96)
    if style == "arm_in_arm":
        speed = rng.choice([-1.0, 1.0]) * rng.uniform(0.015, 0.03)
        a = _walker(rng, num_frames, centre - speed * height * num_frames / 2, height, speed)
        gap = rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.25) * height
        b = replace(_walker(rng, num_frames, 0.0, far, speed), world_x=a.world_x + gap)
        return [a, b]
    if style == "pass_in_front":
        standing = _walker(rng, num_frames, centre, far, 0.005, gait="stand")
        speed = rng.choice([-1.0, 1.0]) * rng.uniform(0.006, 0.012)
        passer = _walker(rng, num_frames, centre - speed * height * num_frames / 2, height, speed)
        return [passer, standing]
    amplitude = (0.3 if style == "dance" else 0.05) * height
    gait = "walk" if style == "dance" else "stand"
    sway = amplitude * np.sin(2 * np.pi * t / rng.uniform(25, 60) + rng.uniform(0, 2 * np.pi))
    a = _walker(rng, num_frames, centre, height, 0.01, gait=gait)
    b = _walker(rng, num_frames, centre, far, 0.01, gait=gait)
    drift = _smooth_noise(rng, num_frames, 0.1 * height)
    return [replace(a, world_x=centre + drift + sway), replace(b, world_x=centre + drift - sway)]


# ---------------------------------------------------------------------------------------------
# Visibility


def _segment_distances(points, keypoints, heights):
    """Distance of points to a person's body capsules, minus their radius (< 0: inside).

    points (N, 2); keypoints (J, 2); -> (N, S) signed distances, and (N, S) segment parameter t.
    """
    a, b = keypoints[_SEG_A], keypoints[_SEG_B]  # (S, 2)
    ab = b - a
    length2 = np.maximum((ab ** 2).sum(axis=1), 1e-9)
    rel = points[:, None, :] - a[None]
    t = np.clip((rel * ab[None]).sum(axis=2) / length2, 0, 1)
    d = np.hypot(*(rel - t[..., None] * ab[None]).transpose(2, 0, 1))
    return d - _SEG_R * heights, t


def _visibility(keypoints, heights, present, real, pillars_img):
    """-> hidden (F, P, J) bool and hidden_by (F, P, J) int (-1: not hidden by a person)."""
    F, P = keypoints.shape[:2]
    x, y = keypoints[..., 0], keypoints[..., 1]
    hidden = (x < 0) | (x >= WIDTH) | (y < 0) | (y >= HEIGHT)
    for k in range(pillars_img.shape[1]):
        x1, y1, x2, y2 = (pillars_img[:, k, i][:, None, None] for i in range(4))
        hidden |= (x >= x1) & (x <= x2) & (y >= y1) & (y <= y2)
    hidden_by = np.full((F, P, NUM_JOINTS), -1)
    for f in range(F):
        for q in np.flatnonzero(present[f] & real):
            behind = np.flatnonzero(present[f] & (heights[f] < heights[f, q]))
            if not len(behind):
                continue
            d, _ = _segment_distances(keypoints[f, behind].reshape(-1, 2), keypoints[f, q], heights[f, q])
            inside = (d.min(axis=1) < 0).reshape(len(behind), NUM_JOINTS)
            # a nearer-hidder found later only overrides if it is nearer still
            take = inside & ((hidden_by[f, behind] < 0)
                             | (heights[f, np.maximum(hidden_by[f, behind], 0)] < heights[f, q]))
            hidden_by[f, behind] = np.where(take, q, hidden_by[f, behind])
    return hidden | (hidden_by >= 0), hidden_by


def _visible_box(keypoints, hidden, heights):
    """(…, 4) box around the visible labelled joints, grown by 0.1 height (NaN if none)."""
    xy = np.where(hidden[..., None], np.nan, keypoints)[..., _LABELLED_JOINTS, :]
    with np.errstate(all="ignore"), _quiet_nan():
        low, high = np.nanmin(xy, axis=-2), np.nanmax(xy, axis=-2)
    pad = 0.08 * heights[..., None]
    return np.concatenate([low - pad, high + pad], axis=-1)


class _quiet_nan:
    """Silence numpy's all-NaN-slice warnings inside a block."""

    def __enter__(self):
        import warnings
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


# ---------------------------------------------------------------------------------------------
# Making a scene


def make_scene(spec: SceneSpec, rng: np.random.Generator, name: str = "synthetic") -> Scene:
    """Generate one clip and its pipeline observations from ``spec``, drawing from ``rng``."""
    F = spec.num_frames
    walkers, camera, pillars = _layout(spec, rng)
    num_decoys = int(rng.random() < 0.5)
    for _ in range(num_decoys):  # a poster or statue the detector takes for a person
        walkers.append(_walker(rng, F, rng.uniform(100, 1180) + camera[F // 2, 0],
                               rng.uniform(150, 300), 0.0, gait="stand"))
    P = len(walkers)
    real = np.arange(P) < P - num_decoys
    keypoints = np.stack([_pose(w, camera[:, 0], camera[:, 1]) for w in walkers], axis=1)
    heights = np.stack([w.height for w in walkers], axis=1)
    present = np.stack([w.present for w in walkers], axis=1)
    pillars_img = pillars[None, :, :] - np.tile(camera, 2)[:, None, :]
    hidden, hidden_by = _visibility(keypoints, heights, present, real, pillars_img)
    hidden |= ~present[..., None]

    detected, boxes, scores = _detector(spec, rng, keypoints, hidden, heights, present, real, camera)
    pose_xy, pose_scores = _estimator(spec, rng, keypoints, hidden, hidden_by, heights, real)
    count = rng.poisson(spec.false_positives_per_frame, F)
    false_boxes, false_scores = [], []
    for n in count:
        h = rng.uniform(120, 350, n)
        centre = np.stack([rng.uniform(0, WIDTH, n), rng.uniform(_HORIZON_Y, HEIGHT - 60, n)], 1)
        half = np.stack([0.2 * h, 0.5 * h], 1)
        false_boxes.append(np.clip(np.concatenate([centre - half, centre + half], 1),
                                   0, [WIDTH, HEIGHT, WIDTH, HEIGHT]).astype(np.float32))
        false_scores.append(rng.uniform(0.3, 0.75, n).astype(np.float32))
    return Scene(
        name=name, spec=spec, seed=int(rng.integers(2 ** 31)),
        keypoints_xy=keypoints.astype(np.float32), heights=heights.astype(np.float32),
        present=present, hidden=hidden, hidden_by=hidden_by,
        occluders_xyxy=pillars_img.astype(np.float32), camera_xy=camera.astype(np.float32),
        labelled=labelled_frames(F), num_decoys=num_decoys,
        detected=detected, det_boxes_xyxy=boxes.astype(np.float32), det_scores=scores.astype(np.float32),
        pose_xy=pose_xy.astype(np.float32), pose_scores=pose_scores.astype(np.float32),
        false_boxes_xyxy=tuple(false_boxes), false_scores=tuple(false_scores),
    )


def _detector(spec, rng, keypoints, hidden, heights, present, real, camera):
    """-> detected (F, P), boxes (F, P, 4), scores (F, P): a detector with streaky misses."""
    F, P = heights.shape
    visible = (~hidden[..., _LABELLED_JOINTS]).mean(axis=2)
    pelvis = keypoints[:, :, [_J["left_hip"], _J["right_hip"]]].mean(axis=2)
    speed = np.zeros((F, P))
    speed[1:] = np.hypot(*(pelvis[1:] - pelvis[:-1]).transpose(2, 0, 1))
    p_miss = spec.miss_rate + 0.5 * (1 - visible) ** 2 + np.minimum(0.2, 0.004 * speed)
    p_miss = np.where(real, p_miss, 0.5)  # a decoy is found half the time
    p_miss[visible < 0.3] = 1.0
    p_miss[~present] = 1.0
    draws = rng.random((F, P))
    detected = np.zeros((F, P), bool)
    for f in range(F):  # a miss makes the next frame's miss likelier (blur lasts)
        p = p_miss[f] if f == 0 else np.where(detected[f - 1], p_miss[f], np.maximum(p_miss[f], 0.35))
        detected[f] = draws[f] >= p
    boxes = _visible_box(keypoints, hidden, heights)
    size = np.concatenate([boxes[..., 2:] - boxes[..., :2]] * 2, axis=-1)
    boxes = boxes + rng.normal(0, 0.04, boxes.shape) * size
    boxes = np.clip(boxes, 0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
    detected &= ~np.isnan(boxes).any(axis=2)
    scores = np.clip(0.55 + 0.45 * visible - rng.uniform(0, 0.2, (F, P)), 0.3, 1.0)
    scores = np.where(real, scores, rng.uniform(0.45, 0.7, (F, P)))
    return detected, np.nan_to_num(boxes), scores


def _estimator(spec, rng, keypoints, hidden, hidden_by, heights, real):
    """-> pose (F, P, J, 2), scores (F, P, J): what the pose network answers for each person."""
    F, P, J = hidden.shape
    h = heights[..., None]
    sigma = (spec.noise_scale * _NOISE_SIGMA * h + 1.0)[..., None]
    # errors partly persist from frame to frame (the network sees a similar image), partly not
    persistent = rng.normal(0, 1, (F, P, J, 2))
    for f in range(1, F):
        persistent[f] = 0.8 * persistent[f - 1] + 0.6 * persistent[f]
    error = (0.6 * persistent + 0.8 * rng.normal(0, 1, (F, P, J, 2))) * sigma
    normalised = np.hypot(error[..., 0], error[..., 1]) / (0.5 * _HEAD_SIZE * h)
    scores = np.clip(0.93 - 0.22 * normalised + rng.normal(0, 0.06, (F, P, J)), 0.05, 0.99)
    # outliers: a joint put on the wrong limb or background
    outlier = rng.random((F, P, J)) < 0.04
    angle = rng.uniform(0, 2 * np.pi, (F, P, J))
    jump = rng.uniform(0.08, 0.25, (F, P, J)) * heights[..., None]
    error = np.where(outlier[..., None], np.stack([np.cos(angle), np.sin(angle)], -1) * jump[..., None],
                     error)
    scores = np.where(outlier, rng.uniform(0.1, 0.55, (F, P, J)), scores)
    pose = keypoints + error
    # left/right confusion of the limbs, whole person at once
    swap = rng.random((F, P)) < 0.02
    perm = POSETRACK17.flip_permutation
    pose = np.where(swap[..., None, None], pose[:, :, perm], pose)
    scores = np.where(swap[..., None], scores[:, :, perm] * 0.8, scores)
    # hidden joints: guessed near the truth with a low score, or snapped onto the person in front
    guess = keypoints + rng.normal(0, 1, (F, P, J, 2)) * 0.06 * h[..., None]
    snap = (hidden_by >= 0) & (rng.random((F, P, J)) < 0.5)
    front_xy = np.empty_like(keypoints)
    for f in range(F):
        front_xy[f] = keypoints[f, np.maximum(hidden_by[f], 0), np.arange(J)[None, :]]
    snapped = front_xy + rng.normal(0, 1, (F, P, J, 2)) * sigma
    pose = np.where(hidden[..., None], np.where(snap[..., None], snapped, guess), pose)
    scores = np.where(hidden, np.where(snap, rng.uniform(0.25, 0.6, (F, P, J)),
                                       rng.uniform(0.02, 0.38, (F, P, J))), scores)
    scores = np.where(real[None, :, None], scores, rng.uniform(0.15, 0.6, (F, P, J)))
    pose = np.clip(pose, 0, [WIDTH - 1, HEIGHT - 1])
    return pose, scores


# ---------------------------------------------------------------------------------------------
# What the pipeline sees, frame by frame


def _frame_rng(scene: Scene, frame: int, stream: int, *extra: int) -> np.random.Generator:
    """A generator for one frame's randomness, independent of the order frames are asked for."""
    return np.random.default_rng([scene.seed, stream, frame, *extra])


def head_boxes(scene: Scene, frame: int) -> np.ndarray:
    """(P, 4) xyxy head boxes around each person's true head (0.6 x diagonal = head size)."""
    kp, h = scene.keypoints_xy[frame], scene.heights[frame][:, None]
    centre = (kp[:, _J["head_top"]] + kp[:, _J["head_bottom"]]) / 2
    half = np.concatenate([0.0635 * h, 0.085 * h], axis=1)
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def ground_truth(scene: Scene) -> PoseTrackVideo:
    """The scene's PoseTrack 2018 ground truth: people on labelled frames only, hidden joints and
    ears absent, a person annotated when at least 2 labelled joints are visible; track id = the
    person's index."""
    images, poses, heads = [], [], []
    real = np.arange(scene.keypoints_xy.shape[1]) < scene.num_people
    for f in range(scene.num_frames):
        images.append(ImageInfo(
            image_id=f, file_name=f"images/synthetic/{scene.name}/{f:06d}.jpg",
            is_labeled=bool(scene.labelled[f]),
            extra={"vid_id": scene.name, "nframes": scene.num_frames, "frame_id": f}))
        visible = ~scene.hidden[f]
        visible[:, _EARS] = False
        people = np.flatnonzero(real & scene.present[f] & (visible.sum(axis=1) >= 2)) \
            if scene.labelled[f] else np.zeros(0, int)
        keypoints = np.where(visible[people, :, None], scene.keypoints_xy[f, people], np.nan)
        boxes = _visible_box(scene.keypoints_xy[f, people], ~visible[people], scene.heights[f, people])
        poses.append(Poses(boxes, np.full(len(people), np.nan), keypoints,
                           np.full((len(people), NUM_JOINTS), np.nan), people))
        heads.append(head_boxes(scene, f)[people])
    return PoseTrackVideo(images, poses, heads)


def detections(scene: Scene, frame: int) -> Detections:
    """The person detector's output: found people, then false positives."""
    found = scene.detected[frame]
    return Detections(np.concatenate([scene.det_boxes_xyxy[frame, found], scene.false_boxes_xyxy[frame]]),
                      np.concatenate([scene.det_scores[frame, found], scene.false_scores[frame]]))


def estimate_poses(scene: Scene, frame: int, boxes_xyxy: np.ndarray) -> Poses:
    """What the top-down pose network answers for each box (box scores: NaN, track ids: -1).

    Boxes and people are paired one to one, best box IoU first (at least 0.3, against the box of
    the person's visible joints); a paired box gets that person's pose for this frame, except
    that joints outside the crop (the box grown by 25%) are pulled onto its border and lose
    confidence, as a crop cuts them off. Other boxes get a junk pose scattered over the box with
    low scores.
    """
    boxes_xyxy = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    n = len(boxes_xyxy)
    people = np.flatnonzero(scene.present[frame])
    person_boxes = _visible_box(scene.keypoints_xy[frame, people], scene.hidden[frame, people],
                                scene.heights[frame, people])
    iou = box_iou(boxes_xyxy, np.nan_to_num(person_boxes, nan=-1.0))
    keypoints = np.empty((n, NUM_JOINTS, 2), np.float32)
    scores = np.empty((n, NUM_JOINTS), np.float32)
    paired = np.zeros(n, bool)
    if iou.size:
        order = np.argsort(-iou, axis=None, kind="stable")
        used_person = np.zeros(len(people), bool)
        for flat in order:
            b, p = divmod(int(flat), len(people))
            if iou[b, p] < 0.3:
                break
            if paired[b] or used_person[p]:
                continue
            paired[b] = used_person[p] = True
            keypoints[b] = scene.pose_xy[frame, people[p]]
            scores[b] = scene.pose_scores[frame, people[p]]
    for b in np.flatnonzero(paired):
        crop = _grow(boxes_xyxy[b], 0.25)
        inside = ((keypoints[b] >= crop[:2]) & (keypoints[b] <= crop[2:])).all(axis=1)
        keypoints[b] = np.clip(keypoints[b], crop[:2], crop[2:])
        scores[b] = np.where(inside, scores[b], 0.3 * scores[b])
    for b in np.flatnonzero(~paired):
        box = boxes_xyxy[b]
        rng = _frame_rng(scene, frame, 2, *np.clip(np.round(box) + 2 ** 20, 0, None).astype(int).tolist())
        keypoints[b] = box[:2] + rng.random((NUM_JOINTS, 2)) * (box[2:] - box[:2])
        scores[b] = rng.uniform(0.02, 0.35, NUM_JOINTS)
    return Poses(boxes_xyxy, np.full(n, np.nan), keypoints, scores, np.full(n, NO_TRACK))


def _grow(box, fraction):
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * (1 + fraction)
    return np.concatenate([centre - half, centre + half])


def estimator(scene: Scene):
    """``estimate(frame, boxes) -> Poses`` for ``pipeline.TrackingStep``: the simulated pose
    network on frame ``frame`` (the step passes the frame index where the real loop passes the
    image). A pose's box score is its box's: the detector's, or for a propagated box the score
    the tracker gave it."""
    def estimate(frame: int, boxes: Detections) -> Poses:
        return estimate_poses(scene, frame, boxes.boxes_xyxy).replace(box_scores=boxes.scores)
    return estimate


def flow_field(scene: Scene, frame: int) -> np.ndarray | None:
    """(H, W, 2) float32 optical flow from ``frame - 1`` to ``frame``; None for frame 0.

    Background moves against the camera; each person's pixels (capsules around their skeleton in
    the earlier frame) move as their nearest body segment does, nearer people painted last;
    pillars move with the background. Noise: smooth (camera), per-cell (flow_noise), and 8% of
    each person's motion. Drawn on a grid of FLOW_STRIDE-pixel cells.
    """
    if frame == 0:
        return None
    rng = _frame_rng(scene, frame, 1)
    gh, gw = HEIGHT // FLOW_STRIDE, WIDTH // FLOW_STRIDE
    background = -(scene.camera_xy[frame] - scene.camera_xy[frame - 1])
    coarse = rng.normal(0, 0.2 + 0.03 * np.abs(background).max(), (gh // 20 + 1, gw // 20 + 1, 2))
    low = background + np.repeat(np.repeat(coarse, 20, 0), 20, 1)[:gh, :gw]
    low += rng.normal(0, scene.spec.flow_noise, (gh, gw, 2))
    before, after = scene.keypoints_xy[frame - 1], scene.keypoints_xy[frame]
    heights = scene.heights[frame - 1]
    both = scene.present[frame - 1] & scene.present[frame]
    both[scene.num_people:] = False  # decoys are background
    noise = scene.spec.flow_noise
    for p in np.flatnonzero(both)[np.argsort(heights[both], kind="stable")]:
        _paint_person(low, before[p], after[p] - before[p], heights[p], noise, rng)
    for x1, y1, x2, y2 in scene.occluders_xyxy[frame - 1]:
        c1, c2 = np.clip([int(x1 // FLOW_STRIDE), int(np.ceil(x2 / FLOW_STRIDE))], 0, gw)
        r1, r2 = np.clip([int(y1 // FLOW_STRIDE), int(np.ceil(y2 / FLOW_STRIDE))], 0, gh)
        low[r1:r2, c1:c2] = background + rng.normal(0, scene.spec.flow_noise, (r2 - r1, c2 - c1, 2))
    low = low.astype(np.float32)
    return np.repeat(np.repeat(low, FLOW_STRIDE, axis=0), FLOW_STRIDE, axis=1)


def _paint_person(low, keypoints, motion, height, noise, rng):
    """Write one person's motion into the flow grid ``low`` (gh, gw, 2), in place.

    Each body capsule is drawn over its own small window of cells; a cell takes the motion of
    the nearest capsule (interpolated along it) when it lies inside one.
    """
    gh, gw = low.shape[:2]
    reach = _SEG_R.max() * height
    top_left = np.floor((np.nanmin(keypoints, axis=0) - reach) / FLOW_STRIDE).astype(int)
    bottom_right = np.ceil((np.nanmax(keypoints, axis=0) + reach) / FLOW_STRIDE).astype(int) + 1
    (c0, r0), (c1, r1) = np.clip(top_left, 0, [gw, gh]), np.clip(bottom_right, 0, [gw, gh])
    if c1 <= c0 or r1 <= r0:
        return
    nearest = np.full((r1 - r0, c1 - c0), np.inf, np.float32)
    disp = np.zeros((r1 - r0, c1 - c0, 2), np.float32)
    centre = (FLOW_STRIDE - 1) / 2
    points = keypoints.tolist()
    for a, b, radius in zip(_SEG_A.tolist(), _SEG_B.tolist(), (_SEG_R * height).tolist()):
        (ax, ay), (bx, by) = points[a], points[b]
        sc0 = max(c0, int((min(ax, bx) - radius) // FLOW_STRIDE))
        sr0 = max(r0, int((min(ay, by) - radius) // FLOW_STRIDE))
        sc1 = min(c1, int((max(ax, bx) + radius) // FLOW_STRIDE) + 2)
        sr1 = min(r1, int((max(ay, by) + radius) // FLOW_STRIDE) + 2)
        if sc1 <= sc0 or sr1 <= sr0:
            continue
        pa, pb = keypoints[a], keypoints[b]
        xs = np.arange(sc0, sc1, dtype=np.float32) * FLOW_STRIDE + centre
        ys = np.arange(sr0, sr1, dtype=np.float32) * FLOW_STRIDE + centre
        ab = pb - pa
        rx, ry = xs[None, :] - pa[0], ys[:, None] - pa[1]
        t = np.clip((rx * ab[0] + ry * ab[1]) / max(float(ab @ ab), 1e-6), 0, 1)
        d = np.hypot(rx - t * ab[0], ry - t * ab[1]) - radius
        window = (slice(sr0 - r0, sr1 - r0), slice(sc0 - c0, sc1 - c0))
        closer = d < nearest[window]
        nearest[window] = np.where(closer, d, nearest[window])
        here = (1 - t)[..., None] * motion[a] + t[..., None] * motion[b]
        disp[window] = np.where(closer[..., None], here, disp[window])
    inside = nearest < 0
    moving = disp[inside]
    moving += rng.normal(0, 1, moving.shape) * (noise + 0.08 * np.hypot(*moving.T))[:, None]
    low[r0:r1, c0:c1][inside] = moving


# ---------------------------------------------------------------------------------------------
# Running trackers over a scene


class IouTracker:
    """Baseline: greedy box-IoU matching to the previous frame only, no memory, no propagation,
    no tentative tracks (every pose gets an id at once).

    Same interface as ``Tracker`` (``propagate`` offers no boxes and ignores the flow).
    """

    def __init__(self, min_iou: float = 0.3, first_id: int = 0):
        self.min_iou = min_iou
        self._next_id = first_id
        self._previous = Poses.empty()
        self._final = []

    def propagate(self, flow=None) -> Detections:
        return Detections.empty()

    def offered_track(self, rows):
        return np.full(len(rows), -1, np.int64)

    def update(self, poses: Poses, may_start=None, from_track=None) -> Poses:
        similarity = box_iou(self._previous.boxes_xyxy, poses.boxes_xyxy)
        pairs, _, new = greedy_match(similarity, self.min_iou)
        ids = np.full(len(poses), NO_TRACK, np.int64)
        ids[pairs[:, 1]] = self._previous.track_ids[pairs[:, 0]]
        ids[new] = np.arange(self._next_id, self._next_id + len(new))
        self._next_id += len(new)
        self._previous = poses.replace(track_ids=ids)
        self._final.append(self._previous)
        return self._previous

    def pop_final(self) -> list[Poses]:
        out, self._final = self._final, []
        return out

    flush = pop_final


def run_trackers(scene: Scene, trackers, use_flow, config: PipelineConfig = PipelineConfig(),
                 detection: DetectorConfig = DetectorConfig()):
    """Run several trackers over the scene in lock step (each flow field is made once), each
    through the pipeline's own per-frame step (``pipeline.TrackingStep``) with the scene's
    detections, flow and simulated pose network.

    Args:
        trackers: objects with the ``Tracker`` interface (``Tracker``, ``IouTracker``), fresh
            for this scene.
        use_flow: one bool per tracker: whether it is given the flow (else None).
        config: the pipeline settings of the simulated frames.
        detection: the detection stage's score filters (``weak_min_score``: the detector drops
            boxes below it; ``min_score``: boxes below it only continue tracks).

    Returns:
        One list per tracker of the tracked poses of every frame (before ``filter_output``).
    """
    steps = [TrackingStep(estimator(scene), tracker, config, min_score=detection.min_score)
             for tracker in trackers]
    outputs = [[] for _ in trackers]
    for f in range(scene.num_frames):
        flow = flow_field(scene, f) if any(use_flow) else None
        found = detections(scene, f)
        found = found[found.scores >= detection.floor]
        for step, flows, out in zip(steps, use_flow, outputs):
            out += [poses for _, poses in step(f, found, flow if flows else None, tag=f)]
    for step, out in zip(steps, outputs):
        out += [poses for _, poses in step.flush()]
    return outputs


def prediction_video(truth: PoseTrackVideo, tracked,
                     config: PipelineConfig = PipelineConfig()) -> PoseTrackVideo:
    """A prediction file for ``truth``'s frames from a list of tracked poses (filtered as the
    pipeline filters its output)."""
    poses = [filter_output(p, config) for p in tracked]
    return PoseTrackVideo(truth.images, poses, [np.full((len(p), 4), np.nan, np.float32) for p in poses])

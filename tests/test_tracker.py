"""The tracker on generated scenes: ids must stay with people."""

import numpy as np
import pytest

from posetrack.frame import Poses
from posetrack.tracker import Tracker, TrackerConfig

# A standing person in the POSETRACK17 layout, in units of body height, centred at (0, 0).
_TEMPLATE = np.array([
    [0.0, -0.40], [0.0, -0.33], [0.0, -0.50], [0.05, -0.42], [-0.05, -0.42],  # head, ears
    [0.12, -0.28], [-0.12, -0.28], [0.16, -0.10], [-0.16, -0.10], [0.18, 0.05], [-0.18, 0.05],
    [0.09, 0.05], [-0.09, 0.05], [0.10, 0.28], [-0.10, 0.28], [0.10, 0.50], [-0.10, 0.50],
], np.float32)

W, H = 640, 480


def person(cx, cy, height=200.0, score=0.9):
    keypoints = _TEMPLATE * height + np.array([cx, cy], np.float32)
    box = np.concatenate([keypoints.min(0), keypoints.max(0)])
    return box, score, keypoints, np.full(17, score, np.float32)


def frame(*people) -> Poses:
    if not people:
        return Poses.empty()
    boxes, scores, keypoints, keypoint_scores = zip(*people)
    return Poses(np.stack(boxes), np.array(scores), np.stack(keypoints), np.stack(keypoint_scores),
                 np.full(len(people), -1))


def constant_flow(velocities_at):
    """A dense flow field: each (box, (dx, dy)) region moves by its velocity, later ones on top."""
    flow = np.zeros((H, W, 2), np.float32)
    for (x1, y1, x2, y2), velocity in velocities_at:
        flow[max(int(y1), 0):max(int(y2), 0), max(int(x1), 0):max(int(x2), 0)] = velocity
    return flow


def joint_flow(people_velocities, radius=6):
    """A flow field that moves the pixels within ``radius`` of each person's joints by that
    person's velocity (background still), as a flow method sees a textured body."""
    flow = np.zeros((H, W, 2), np.float32)
    ys, xs = np.mgrid[0:H, 0:W]
    for keypoints, velocity in people_velocities:
        for x, y in keypoints:
            flow[(xs - x) ** 2 + (ys - y) ** 2 <= radius ** 2] = velocity
    return flow


def run(tracker, frames, flows=None):
    """-> list of id lists, one per frame, as final (``pop_final``, then ``flush``)."""
    final = []
    for k, poses in enumerate(frames):
        tracker.propagate(None if flows is None else flows[k])
        tracker.update(poses)
        final += tracker.pop_final()
    final += tracker.flush()
    assert len(final) == len(frames)
    return [poses.track_ids.tolist() for poses in final]


def test_two_people_crossing_keep_their_ids_with_flow():
    # A walks right, B walks left, 30 px/frame, B a little lower: they overlap at frame 5.
    frames, flows = [], []
    for k in range(11):
        a, b = (170 + 30 * k, 240), (470 - 30 * k, 270)
        frames.append(frame(person(*a), person(*b)))
        box_a, box_b = person(*a)[0], person(*b)[0]
        flows.append(constant_flow([(box_a - [30, 0, 30, 0], (30, 0)), (box_b + [30, 0, 30, 0], (-30, 0))]))
    flows[0] = None
    ids = run(Tracker(), frames, flows)
    assert all(frame_ids == [0, 1] for frame_ids in ids), ids


def test_flow_matters_for_fast_crossing():
    # 40 px/frame, passing each other 30 px apart in height: without flow each track is compared
    # with where its person was a frame ago, which at the crossing is where the other one is now,
    # and the ids swap; with flow they stay.
    def position(k):
        return (160 + 40 * k, 220), (480 - 40 * k, 250)

    frames, flows = [], [None]
    for k in range(9):
        a, b = position(k)
        frames.append(frame(person(*a, height=120), person(*b, height=120)))
        if k:
            a, b = position(k - 1)
            flows.append(joint_flow([(person(*a, 120)[2], (40, 0)), (person(*b, 120)[2], (-40, 0))]))
    with_flow = run(Tracker(), frames, flows)
    assert all(frame_ids == [0, 1] for frame_ids in with_flow), with_flow
    without_flow = run(Tracker(), frames)
    assert any(frame_ids != [0, 1] for frame_ids in without_flow)


def test_occluded_person_gets_the_same_id_back():
    # B disappears for 3 frames (occluded) and reappears where she stood; A keeps walking.
    frames = []
    for k in range(10):
        a = person(100 + 5 * k, 240)
        frames.append(frame(a) if 3 <= k <= 5 else frame(a, person(400, 240)))
    ids = run(Tracker(TrackerConfig(memory_frames=4)), frames)
    assert ids[:3] == [[0, 1]] * 3
    assert ids[3:6] == [[0]] * 3
    assert ids[6:] == [[0, 1]] * 4


def test_occlusion_longer_than_memory_starts_a_new_track_unless_refound():
    frames = [frame(person(400, 240))] * 2 + [frame()] * 3 + [frame(person(400, 240))] * 2
    assert run(Tracker(TrackerConfig(memory_frames=3, refind_frames=0)), frames)[-1] == [1]
    assert run(Tracker(TrackerConfig(memory_frames=4, refind_frames=0)), frames)[-1] == [0]
    assert run(Tracker(TrackerConfig(memory_frames=3, refind_frames=5)), frames)[-1] == [0]


@pytest.mark.parametrize("gap, shift, growth, refound", [
    (30, 0, 0.05, True),  # hidden 1.2 s at 25 fps, back where she vanished
    (30, 40, 0.05, True),  # moved 40 px (0.2 heights) while hidden: the widened gate takes her
    (30, 40, 0.0, False),  # ... which a gate that does not widen refuses
    (30, 400, 0.05, False),  # someone far away is not her
    (60, 0, 0.05, False),  # beyond refind_frames (50): a new id
])
def test_refinding_a_lost_person(gap, shift, growth, refound):
    config = TrackerConfig(memory_frames=8, refind_frames=50, refind_gate_growth=growth)
    frames = [frame(person(200, 240))] * 3 + [frame()] * gap + [frame(person(200 + shift, 240))] * 3
    ids = run(Tracker(config), frames)
    assert ids[-1] == ([0] if refound else [1])


def test_a_lost_track_moves_by_its_own_velocity_while_hidden():
    # walks right 6 px a frame (flow measured on her), vanishes for 20 frames, comes back where
    # her walk took her: 120 px further, well outside an unmoved gate
    config = TrackerConfig(memory_frames=8, refind_frames=50, refind_gate_growth=0.0)
    frames, flows = [], []
    for k in range(30):
        x = 100 + 6 * k
        frames.append(frame(person(x, 240)) if k < 5 or k >= 25 else frame())
        flows.append(joint_flow([(person(x - 6, 240)[2], (6, 0))]) if 0 < k < 5 else None)
    assert run(Tracker(config), frames, flows)[-1] == [0]


def test_missed_detection_and_false_positive():
    # A and B walk; A is missed in frame 4; a false positive (small pose far away) in frame 6.
    frames = []
    for k in range(9):
        a, b = person(100 + 10 * k, 200), person(500 - 10 * k, 260)
        people = [b] if k == 4 else [a, b]
        if k == 6:
            people.append(person(600, 60, height=60, score=0.4))
        frames.append(frame(*people))
    ids = run(Tracker(TrackerConfig(min_hits=1)), frames)
    assert ids[4] == [1]
    assert ids[5] == [0, 1]
    assert ids[6] == [0, 1, 2]  # the false positive gets an id of its own, takes none
    assert ids[7] == [0, 1] and ids[8] == [0, 1]
    # seen once, a ghost never gets an id (min_hits 2), and the others' ids are the same
    assert run(Tracker(TrackerConfig(min_hits=2)), frames) == ids[:6] + [[0, 1]] + ids[7:]


def test_a_new_track_is_written_from_its_first_frame_once_confirmed():
    # B appears at frame 2; with min_hits 3 she is confirmed at frame 4, and frames 2-3 get her
    # id then; frames are final 2 frames late; C is seen twice only and never gets an id
    tracker = Tracker(TrackerConfig(min_hits=3))
    final_per_call = []
    for k in range(7):
        people = [person(100, 200)] + ([person(400, 200)] if k >= 2 else [])
        people += [person(250, 100, height=80)] if k in (5, 6) else []
        tracker.propagate(None)
        tracker.update(frame(*people))
        final_per_call.append([p.track_ids.tolist() for p in tracker.pop_final()])
    assert final_per_call == [[], [], [[0]], [[0]], [[0, 1]], [[0, 1]], [[0, 1]]]
    # the clip ends: C, alive but short of min_hits for lack of frames, is confirmed
    assert [p.track_ids.tolist() for p in tracker.flush()] == [[0, 1, 2]] * 2
    assert tracker.flush() == []


def test_poses_that_may_not_start_a_track_only_continue_one():
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracker.update(frame(person(100, 200)), may_start=[True])
    out = tracker.update(frame(person(102, 200), person(400, 200)), may_start=[False, False])
    assert out.track_ids.tolist() == [0, -1]  # the second continues nobody: no id
    assert [p.track_ids.tolist() for p in tracker.pop_final()] == [[0], [0]]
    with pytest.raises(ValueError, match="may_start"):
        tracker.update(frame(person(1, 1)), may_start=[True, True])


def test_a_propagated_pose_keeps_its_track_from_a_confident_pose_that_fits_it_worse():
    # flow-propagated and confident poses are matched in one pass, best pairs first: the pose from
    # the track's own propagated box, right on it, keeps it; the confident pose next to it starts
    # a track of its own
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracker.update(frame(person(100, 200)), may_start=[True])
    tracker.propagate(None)
    out = tracker.update(frame(person(101, 200), person(125, 200)), may_start=[False, True],
                         from_track=[0, -1])
    assert out.track_ids.tolist() == [0, 1]


def test_a_weak_pose_only_takes_a_track_no_confident_pose_took():
    # a weak detection's pose (may not start, not from a propagated box) is matched after the
    # confident ones: even right on the track, it does not beat a confident pose to it
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracker.update(frame(person(100, 200), person(400, 200)), may_start=[True, True])
    out = tracker.update(frame(person(101, 200), person(115, 200), person(402, 200)),
                         may_start=[False, True, False])
    assert out.track_ids.tolist() == [-1, 0, 1]


def test_a_pose_that_may_not_start_a_track_does_not_continue_a_tentative_one():
    tracker = Tracker(TrackerConfig(min_hits=2, min_similarity=0.0))  # not even at a zero floor
    tracker.update(frame(person(100, 200)), may_start=[True])
    tracker.propagate(None)
    tracker.update(frame(person(101, 200), person(100, 200)), may_start=[False, False],
                   from_track=[-1, 0])
    assert [p.track_ids.tolist() for p in tracker.flush()] == [[], []]  # it died unconfirmed


def _partial(cx, cy, score):
    """The same standing person as ``person(cx, cy)``, seen by a second, lower box: its pose has
    the person's upper-body joints only, 2 px off."""
    box, _, keypoints, keypoint_scores = person(cx + 2, cy)
    keypoints = keypoints.copy()
    keypoints[11:] = np.nan
    return box * [1, 1, 1, 0.8], score, keypoints, keypoint_scores


def test_a_second_box_on_a_tracked_person_starts_no_track():
    # the detector keeps two boxes on one person (their overlap is below its NMS threshold): the
    # second box's pose duplicates the tracked one and gets no id; at duplicate_oks 1 it would
    frames = [frame(person(100, 200))] + [frame(person(100, 200), _partial(100, 200, 0.6))] * 3
    assert run(Tracker(), frames) == [[0], [0], [0], [0]]
    assert run(Tracker(TrackerConfig(duplicate_oks=1.0)), frames) == [[0], [0, 1], [0, 1], [0, 1]]


def test_two_boxes_on_a_new_person_give_one_track_and_a_one_frame_clip_keeps_both():
    # both boxes appear at once: in that frame they cannot be told from two people (a one-frame
    # clip writes both); in the next the weaker box's tentative track is dropped as a duplicate
    both = frame(person(100, 200), _partial(100, 200, 0.6))
    assert run(Tracker(), [both]) == [[0, 1]]
    assert run(Tracker(), [both, both, both]) == [[0], [0], [0]]


def test_two_people_side_by_side_are_not_duplicates():
    frames = [frame(person(100, 200))] + [frame(person(100, 200), person(160, 200))] * 3
    assert run(Tracker(), frames) == [[0], [0, 1], [0, 1], [0, 1]]


def test_people_entering_and_leaving():
    # A stands throughout. B enters from the left at frame 3 and leaves at frame 8 on the right.
    # C enters at frame 12 where B left, after B's track was forgotten: a new id.
    frames = []
    for k in range(15):
        people = [person(320, 240)]
        if 3 <= k < 8:
            people.append(person(40 + 15 * (k - 3), 360, height=150))
        if k >= 12:
            people.append(person(120, 360, height=150))
        frames.append(frame(*people))
    ids = run(Tracker(TrackerConfig(memory_frames=3, refind_frames=0)), frames)
    assert [i[0] for i in ids] == [0] * 15
    assert [i[1] for i in ids[3:8]] == [1] * 5
    assert [i[1] for i in ids[12:]] == [2] * 3


def test_two_trackers_do_not_share_ids_or_state():
    scene = [frame(person(100, 200), person(400, 200))] * 3
    first, second = Tracker(), Tracker()
    assert run(first, scene) == run(second, scene) == [[0, 1]] * 3
    first.reset()
    assert run(first, [frame(person(300, 300))] * 2) == [[0]] * 2
    assert run(Tracker(first_id=100), [frame(person(1, 1))] * 2) == [[100]] * 2


def test_propagate_offers_warped_boxes_of_confident_tracks_seen_last_frame():
    tracker = Tracker(TrackerConfig(propagate_min_score=0.5, box_enlarge=0.0, min_hits=1))
    tracker.propagate(None)
    tracker.update(frame(person(100, 200, score=0.9), person(400, 200, score=0.2)))
    offered = tracker.propagate(np.full((H, W, 2), (10, -5), np.float32))
    assert len(offered) == 1  # the low-score pose is not offered
    expected = person(110, 195)[0]
    np.testing.assert_allclose(offered.boxes_xyxy[0], expected, atol=1e-4)
    assert offered.scores[0] == pytest.approx(0.9)
    tracker.update(frame())
    # seen two frames ago: kept as a match candidate, but no longer offered
    assert len(tracker.propagate(None)) == 0


def test_update_without_propagate_assumes_no_motion_and_double_propagate_is_an_error():
    tracker = Tracker()
    assert tracker.update(frame(person(100, 100))).track_ids.tolist() == [-1]  # tentative
    assert tracker.update(frame(person(102, 100))).track_ids.tolist() == [0]  # confirmed
    tracker.propagate(None)
    with pytest.raises(RuntimeError, match="twice"):
        tracker.propagate(None)


@pytest.mark.parametrize("changes, message", [
    ({"memory_frames": 0}, "memory_frames must be an integer >= 1"),
    ({"min_similarity": 1.5}, r"min_similarity must be a number in \[0, 1\]"),
    ({"box_enlarge": -0.1}, "box_enlarge must be a number >= 0"),
])
def test_config_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**changes)


def _hidden_scene(occluder_velocity, walker_velocity, hidden=range(3, 7), frames=10):
    """B stands (or walks) and is hidden for ``hidden`` frames behind an occluder region whose
    pixels move at ``occluder_velocity``; elsewhere B's pixels move with B. Returns frames of
    poses and flows (flow k: from frame k-1 to k)."""
    poses, flows = [], [None]
    for k in range(frames):
        b = (200 + walker_velocity * k, 240)
        poses.append(frame() if k in hidden else frame(person(*b)))
        if k:
            previous = person(200 + walker_velocity * (k - 1), 240)[0]
            region = previous + np.array([-30, -30, 30, 30])
            velocity = occluder_velocity if k in hidden else (walker_velocity, 0)
            flows.append(constant_flow([(region, velocity)]))
    return poses, flows


def test_a_hidden_person_is_not_dragged_away_by_the_occluders_flow():
    # B stands still; while hidden the flow at B's joints is an occluder passing at 25 px/frame
    poses, flows = _hidden_scene(occluder_velocity=(25, 0), walker_velocity=0)
    ours = run(Tracker(), poses, flows)
    assert ours[-1] == [0]
    paper = TrackerConfig(match_last_seen=False, hidden_velocity=False)
    assert run(Tracker(paper), poses, flows)[-1] == [1]  # dragged 100 px away: a new id


def test_a_hidden_person_keeps_moving_with_their_own_velocity():
    # B walks at 15 px/frame behind a still pillar (flow 0 there) for 4 frames: 60 px further on
    poses, flows = _hidden_scene(occluder_velocity=(0, 0), walker_velocity=15)
    assert run(Tracker(), poses, flows)[-1] == [0]
    last_seen_only = TrackerConfig(hidden_velocity=False)
    assert run(Tracker(last_seen_only), poses, flows)[-1] == [1]


def test_median_motion():
    from posetrack.tracker import median_motion

    before = np.zeros((2, 3, 2), np.float32)
    after = before + np.array([[[1, 0], [2, 0], [30, 0]], [[5, 5], [5, 5], [5, 5]]], np.float32)
    usable = np.array([[True, True, True], [False, False, False]])
    np.testing.assert_allclose(median_motion(before, after, usable), [[2, 0], [0, 0]])

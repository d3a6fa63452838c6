import logging

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack.cli import main
from posetrack.errors import PosetrackError
from posetrack.formats import ImageInfo, PoseTrackVideo, write_posetrack18
from posetrack.frame import Poses
from posetrack.joints import POSETRACK17
from posetrack.render import UNTRACKED_COLOR, draw_poses, place_labels, render_video, track_color
from posetrack.video import open_frames

SHOULDER, ELBOW, WRIST = (POSETRACK17.index(n) for n in ("left_shoulder", "left_elbow", "left_wrist"))


def person(box, track_id, joints=None, scores=None) -> Poses:
    """One person: ``joints`` maps joint index -> (x, y); the rest are absent."""
    keypoints = np.full((1, 17, 2), np.nan, np.float32)
    for j, xy in (joints or {}).items():
        keypoints[0, j] = xy
    joint_scores = np.ones((1, 17), np.float32) if scores is None else np.asarray([scores], np.float32)
    return Poses(np.asarray([box], np.float32), [0.9], keypoints, joint_scores, [track_id])


def black(width=1920, height=1080):
    return np.zeros((height, width, 3), np.uint8)


def coloured(image) -> np.ndarray:
    """(H, W) bool: pixels something was drawn on."""
    return image.max(axis=2) > 0


# ---------------------------------------------------------------------------------------------
# Colours


def test_track_colours_are_fixed_and_distinct():
    assert track_color(3) == track_color(3)
    assert len({track_color(i) for i in range(50)}) == 50
    assert track_color(-1) == UNTRACKED_COLOR


def test_colour_of_an_id_is_the_same_in_every_frame():
    # box edge pixels of track 7, drawn at two places on two frames, and next to other people
    first = draw_poses(black(), person([100, 100, 300, 500], 7))
    others = Poses.concatenate([person([900, 100, 1100, 500], 2), person([500, 600, 700, 900], 7)])
    second = draw_poses(black(), others)
    assert tuple(first[100, 200]) == track_color(7)
    assert tuple(second[600, 600]) == track_color(7)
    assert tuple(second[100, 1000]) == track_color(2)


def test_draw_is_pure():
    image = black(480, 270)
    out = draw_poses(image, person([10, 10, 100, 200], 1, {SHOULDER: (50, 50), ELBOW: (60, 90)}))
    assert coloured(out).any() and not coloured(image).any()
    assert out.shape == image.shape and out.dtype == np.uint8


def test_no_people_draws_nothing():
    assert not coloured(draw_poses(black(480, 270), Poses.empty())).any()


# ---------------------------------------------------------------------------------------------
# What is drawn

ARM = {SHOULDER: (400, 300), ELBOW: (400, 500), WRIST: (700, 500)}


def forearm_drawn(image) -> bool:
    """Pixels halfway between elbow and wrist (away from both joint dots)."""
    return coloured(image)[495:506, 540:561].any()


@pytest.mark.parametrize("joints, scores, min_score, drawn", [
    (ARM, None, None, True),  # the whole arm present: forearm drawn
    ({SHOULDER: ARM[SHOULDER], ELBOW: ARM[ELBOW]}, None, None, False),  # wrist absent (NaN): no edge
    (ARM, [0.9] * 9 + [0.1] + [0.9] * 7, 0.5, False),  # wrist below the threshold: no edge
    (ARM, [0.9] * 9 + [0.5] + [0.9] * 7, 0.5, True),  # wrist at the threshold: drawn
    (ARM, [np.nan] * 17, 0.5, True),  # no scores in the file: drawn
])
def test_edges_only_between_drawn_joints(joints, scores, min_score, drawn):
    out = draw_poses(black(), person([np.nan] * 4, 4, joints, scores), min_joint_score=min_score)
    assert forearm_drawn(out) == drawn
    assert coloured(out)[395:406, 390:411].any()  # the upper arm is always there


def test_untracked_person_is_grey_without_label():
    out = draw_poses(black(), person([100, 300, 300, 500], -1))
    assert tuple(out[300, 200]) == UNTRACKED_COLOR
    assert not coloured(out)[:295].any()  # no tag above the box


def test_label_sits_above_the_box():
    out = draw_poses(black(), person([100, 300, 300, 500], 12))
    assert (out[250:299, 100:160] == track_color(12)).all(axis=2).any()


def _no_overlap_and_inside(corners, sizes, width, height):
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    for i in range(len(boxes)):
        for j in range(i):
            a, b = boxes[i], boxes[j]
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (i, j)


@pytest.mark.parametrize("width, height, seed", [(480, 270, 0), (480, 270, 1), (1920, 1080, 2)])
def test_tags_of_a_crowd_never_cover_each_other_nor_leave_the_image(width, height, seed):
    rng = np.random.default_rng(seed)
    n = 30
    # people crowded into one part of the frame, some boxes reaching past the border
    x1 = rng.uniform(-50, width * 0.5, n)
    y1 = rng.uniform(-30, height * 0.4, n)
    regions = np.stack([x1, y1, x1 + rng.uniform(20, width / 4, n), y1 + rng.uniform(40, height / 2, n)], 1)
    sizes = np.tile([30, 16] if width < 1000 else [60, 36], (n, 1))
    corners = place_labels(regions, sizes, width, height)
    _no_overlap_and_inside(corners, sizes, width, height)


def test_tags_of_two_people_in_one_box_both_sit_at_the_box():
    regions = np.array([[100, 100, 200, 300], [102, 100, 198, 300]], float)  # a hugging couple
    corners = place_labels(regions, np.array([[30, 16], [30, 16]]), 480, 270)
    _no_overlap_and_inside(corners, np.array([[30, 16], [30, 16]]), 480, 270)
    assert (np.abs(corners - [100, 84]).max(axis=1) <= 100).all()  # both near the top-left


def test_overlay_tags_in_a_crowd_are_distinct_on_the_image():
    # four people on nearly one box: four tags, each fully in its own colour somewhere
    people = Poses.concatenate([person([100 + 2 * i, 120, 300, 260], 10 + i) for i in range(4)])
    out = draw_poses(black(480, 270), people, boxes=False)
    for i in range(4):
        assert (out == track_color(10 + i)).all(axis=2).sum() > 30


def test_far_off_coordinates_do_not_crash():
    out = draw_poses(black(480, 270), person([-1e9, -1e9, 1e9, 1e9], 1, {SHOULDER: (1e12, -1e12)}))
    assert out.shape == (270, 480, 3)


def test_rejects_a_non_image():
    with pytest.raises(ValueError, match="uint8"):
        draw_poses(np.zeros((10, 10)), Poses.empty())


# ---------------------------------------------------------------------------------------------
# Overlay videos


def write_clip(path, n=6, size=(96, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(n):
        image = np.full((size[1], size[0], 3), 40, np.uint8)
        cv2.rectangle(image, (5 + 8 * i, 10), (20 + 8 * i, 50), (200, 200, 200), -1)
        writer.write(image)
    writer.release()
    return path


def tracks_for(n) -> PoseTrackVideo:
    poses = [person([5 + 8 * i, 10, 20 + 8 * i, 50], 1, {SHOULDER: (8 + 8 * i, 20), ELBOW: (10 + 8 * i, 35)})
             for i in range(n)]
    images = [ImageInfo(image_id=i, file_name=f"clip/{i:06d}.jpg") for i in range(n)]
    return PoseTrackVideo(images, poses, [np.full((1, 4), np.nan, np.float32)] * n)


def test_overlay_video_has_every_frame(tmp_path):
    frames = open_frames(write_clip(tmp_path / "clip.avi"))
    out = tmp_path / "overlay.mp4"
    assert render_video(frames, tracks_for(6), out, progress=False) == 6
    back = open_frames(out)
    assert len(back) == 6 and back.size == (96, 64) and back.fps == pytest.approx(10)
    assert sum(1 for _ in back) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "overlay.mp4"]  # no temp file


def test_fewer_tracked_frames_warn_and_keep_all_frames(tmp_path, caplog):
    frames = open_frames(write_clip(tmp_path / "clip.avi"))
    with caplog.at_level(logging.WARNING, logger="posetrack.render"):
        written = render_video(frames, tracks_for(4).poses, tmp_path / "overlay.mp4", progress=False)
    assert written == 6
    assert "frames 4-5 are written without overlay" in caplog.text


def test_more_tracked_frames_than_video_is_an_error(tmp_path):
    frames = open_frames(write_clip(tmp_path / "clip.avi"))
    with pytest.raises(PosetrackError, match="the tracks have 9 frames but .*clip.avi has 6"):
        render_video(frames, tracks_for(9), tmp_path / "overlay.mp4", progress=False)
    assert not (tmp_path / "overlay.mp4").exists()


def test_failure_midway_leaves_nothing_and_keeps_an_old_file(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((64, 96, 3), 60, np.uint8))
    frames = open_frames(folder)
    (folder / "000003.png").write_bytes(b"damaged")
    out = tmp_path / "overlay.mp4"
    out.write_bytes(b"an older overlay")
    with pytest.raises(PosetrackError, match="000003.png"):
        render_video(frames, tracks_for(4), out, progress=False)
    assert out.read_bytes() == b"an older overlay"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlay.mp4", "seq"]


def test_missing_output_folder(tmp_path):
    frames = open_frames(write_clip(tmp_path / "clip.avi"))
    with pytest.raises(PosetrackError, match="output folder .* does not exist"):
        render_video(frames, tracks_for(6), tmp_path / "no" / "overlay.mp4", progress=False)


@pytest.mark.parametrize("name", [
    "overlay.unknownext",  # no writer for it
    "overlay.gif",  # OpenCV wrote one frame of 67 into a .gif: refused, never half-written
    "overlay",  # no extension at all
])
def test_writer_refuses_extensions_it_cannot_write_whole(tmp_path, name):
    frames = open_frames(write_clip(tmp_path / "clip.avi"))
    with pytest.raises(PosetrackError, match="unknown extension .* for the overlay output; use .mp4"):
        render_video(frames, tracks_for(6), tmp_path / name, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]


def test_writer_that_cannot_open(tmp_path, monkeypatch):
    import posetrack.video

    # an FFmpeg build without the encoder
    monkeypatch.setitem(posetrack.video.VIDEO_CODECS, ".mp4", ("mp4", "no-such-encoder", {}))
    frames = open_frames(write_clip(tmp_path / "clip.avi"))
    with pytest.raises(PosetrackError, match="cannot write a video here with no-such-encoder"):
        render_video(frames, tracks_for(6), tmp_path / "overlay.mp4", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]


# ---------------------------------------------------------------------------------------------
# The command


def test_render_command(tmp_path):
    clip = write_clip(tmp_path / "clip.avi")
    write_posetrack18(tmp_path / "tracks.json", tracks_for(6))
    out = tmp_path / "overlay.mp4"
    result = CliRunner().invoke(main, ["render", str(clip), str(tmp_path / "tracks.json"), "--out", str(out),
                                       "--min-joint-score", "0.3"])
    assert result.exit_code == 0, result.output
    assert "6 frames" in result.output
    assert len(open_frames(out)) == 6


def test_render_command_error_is_one_line(tmp_path):
    clip = write_clip(tmp_path / "clip.avi")
    write_posetrack18(tmp_path / "tracks.json", tracks_for(8))
    result = CliRunner().invoke(main, ["render", str(clip), str(tmp_path / "tracks.json"), "--out",
                                       str(tmp_path / "overlay.mp4")])
    assert result.exit_code == 1
    assert "Error: the tracks have 8 frames" in result.output
    assert "Traceback" not in result.output


def test_render_posetrack_gt_over_its_frames(shared_dir, tmp_path):
    sample = shared_dir / "assets" / "posetrack18_sample"
    out = tmp_path / "overlay.mp4"
    result = CliRunner().invoke(main, ["render", str(sample / "images" / "val" / "009473_mpii_test"),
                                       str(sample / "annotations" / "val" / "009473_mpii_test.json"),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    back = open_frames(out)
    assert (len(back), back.size) == (1, (1920, 1080))

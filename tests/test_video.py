import logging
import os
import threading

import cv2
import numpy as np
import pytest

from posetrack.errors import PosetrackError
from posetrack.formats import ImageInfo, PoseTrackVideo
from posetrack.frame import Poses
from posetrack.video import DEFAULT_FOLDER_FPS, frames_for_posetrack, open_frames

W, H = 64, 48


def frame_image(index: int, size=(W, H)) -> np.ndarray:
    """A black frame with a white square whose x position encodes the frame index."""
    image = np.zeros((size[1], size[0], 3), np.uint8)
    x = 4 + 4 * index
    image[10:26, x:x + 8] = 255
    return image


def square_x(image: np.ndarray) -> int:
    """Where frame_image put the square (robust to lossy coding)."""
    columns = np.flatnonzero(image[18, :, 1] > 128)
    return int(columns[0])


def write_video(path, n: int, fourcc: str, fps: float = 10.0, size=(W, H)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(frame_image(i, size))
    writer.release()
    return path


def write_folder(folder, names, size=(W, H)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), frame_image(i, size))
    return folder


def reader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("posetrack-decode")]


# ---------------------------------------------------------------------------------------------
# Reading back what was written


@pytest.mark.parametrize("suffix, fourcc", [
    (".avi", "MJPG"),  # the codec every OpenCV build writes
    (".mp4", "mp4v"),  # what the sample videos and our overlays use
])
def test_video_frames_come_back_in_order(tmp_path, suffix, fourcc):
    path = write_video(tmp_path / f"clip{suffix}", 9, fourcc)
    with open_frames(path) as frames:
        assert len(frames) == 9
        assert frames.size == (W, H)
        assert frames.fps == pytest.approx(10.0)
        assert frames.file_names[:2] == ["clip/000000.jpg", "clip/000001.jpg"]
        items = list(frames)
    assert [i for i, _ in items] == list(range(9))
    assert all(img.shape == (H, W, 3) and img.dtype == np.uint8 for _, img in items)
    assert [square_x(img) for _, img in items] == [4 + 4 * i for i in range(9)]
    assert frames.frames_read == 9


def test_source_can_be_iterated_twice(tmp_path):
    frames = open_frames(write_video(tmp_path / "clip.avi", 4, "MJPG"))
    assert [i for i, _ in frames] == [i for i, _ in frames] == [0, 1, 2, 3]


def test_fps_override(tmp_path):
    assert open_frames(write_video(tmp_path / "clip.avi", 2, "MJPG"), fps=30).fps == 30


def test_folder_in_natural_name_order(tmp_path):
    # frame10 after frame9 (natural order); the text file and the subfolder are ignored
    names = [f"frame{i}.png" for i in (1, 2, 9, 10, 11)]
    folder = write_folder(tmp_path / "seq", names)
    (folder / "notes.txt").write_text("not a frame")
    (folder / "sub").mkdir()
    frames = open_frames(folder)
    assert len(frames) == 5
    assert frames.size == (W, H)
    assert frames.fps == DEFAULT_FOLDER_FPS
    assert frames.file_names == [f"seq/{n}" for n in names]
    assert [square_x(img) for _, img in frames] == [4 + 4 * i for i in range(5)]


def test_folder_file_names_relative_to_root(tmp_path):
    folder = write_folder(tmp_path / "images" / "val" / "seq", ["000000.jpg", "000001.jpg"])
    frames = open_frames(folder, root=tmp_path)
    assert frames.file_names == ["images/val/seq/000000.jpg", "images/val/seq/000001.jpg"]


# ---------------------------------------------------------------------------------------------
# The reader thread


def test_thread_stops_on_early_break(tmp_path):
    frames = open_frames(write_video(tmp_path / "clip.avi", 30, "MJPG"), queue_size=2)
    for index, _ in frames:
        if index == 1:
            break
    assert reader_threads() == []


def test_thread_stops_when_consumer_raises(tmp_path):
    frames = open_frames(write_video(tmp_path / "clip.avi", 30, "MJPG"), queue_size=2)
    with pytest.raises(KeyboardInterrupt):
        for index, _ in frames:
            if index == 2:
                raise KeyboardInterrupt
    assert reader_threads() == []


def test_close_stops_an_abandoned_iteration(tmp_path):
    with open_frames(write_video(tmp_path / "clip.avi", 30, "MJPG"), queue_size=2) as frames:
        iterator = iter(frames)
        next(iterator)  # started, never finished nor closed
        assert len(reader_threads()) == 1
    assert reader_threads() == []


def test_reader_error_is_raised_in_consumer(tmp_path):
    folder = write_folder(tmp_path / "seq", ["a.png", "b.png", "c.png"])
    frames = open_frames(folder)
    (folder / "c.png").write_bytes(b"damaged after opening")
    seen = []
    with pytest.raises(PosetrackError, match="c.png: cannot read the image"):
        for index, _ in frames:
            seen.append(index)
    assert seen == [0, 1]
    assert reader_threads() == []


# ---------------------------------------------------------------------------------------------
# Bad input


def test_missing_path(tmp_path):
    with pytest.raises(PosetrackError, match="no-such.mp4: no such file or folder"):
        open_frames(tmp_path / "no-such.mp4")


@pytest.mark.parametrize("content", [
    os.urandom(4096),  # random bytes
    b"",  # an empty file
])
def test_unreadable_video(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(PosetrackError, match="broken.mp4: cannot open as a video"):
        open_frames(path)


def test_empty_folder(tmp_path):
    with pytest.raises(PosetrackError, match="no frame images"):
        open_frames(tmp_path)


def test_folder_of_videos_gets_a_hint(tmp_path):
    write_video(tmp_path / "clip.avi", 2, "MJPG")
    with pytest.raises(PosetrackError, match="holds videos.*posetrack batch"):
        open_frames(tmp_path)


def test_mixed_sizes_name_the_file_and_both_sizes(tmp_path):
    folder = write_folder(tmp_path / "seq", ["000000.png", "000001.png"])
    cv2.imwrite(str(folder / "000002.png"), frame_image(2, size=(32, 48)))
    with pytest.raises(PosetrackError, match=r"000002.png: image is 32x48, .* are 64x48"):
        open_frames(folder)


def test_unreadable_image_in_folder(tmp_path):
    folder = write_folder(tmp_path / "seq", ["000000.png"])
    (folder / "000001.png").write_bytes(b"not a png")
    with pytest.raises(PosetrackError, match="000001.png: cannot read the image"):
        open_frames(folder)


def test_truncated_video_ends_early_with_a_warning(tmp_path, caplog):
    # An AVI cut short keeps its header (20 frames) but loses the frames after the cut.
    path = write_video(tmp_path / "clip.avi", 20, "MJPG")
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 6 // 10])
    frames = open_frames(cut)
    assert len(frames) == 20  # what the container says
    with caplog.at_level(logging.WARNING, logger="posetrack.video"):
        indices = [i for i, _ in frames]
    assert 0 < len(indices) < 20
    assert indices == list(range(len(indices)))
    assert frames.frames_read == len(indices)
    assert f"frame {len(indices)} could not be decoded" in caplog.text
    assert reader_threads() == []


# ---------------------------------------------------------------------------------------------
# PoseTrack frame folders in GT order


def annotation_file(file_names) -> PoseTrackVideo:
    images = [ImageInfo(image_id=100 + i, file_name=n) for i, n in enumerate(file_names)]
    return PoseTrackVideo(images, [Poses.empty() for _ in images], [np.zeros((0, 4), np.float32)] * len(images))


def test_frames_follow_the_annotation_order(tmp_path):
    folder = write_folder(tmp_path / "seq", ["000000.jpg", "000001.jpg", "000002.jpg"])
    gt_names = ["images/val/seq/000002.jpg", "images/val/seq/000000.jpg", "images/val/seq/000001.jpg"]
    frames = frames_for_posetrack(folder, annotation_file(gt_names))
    assert frames.file_names == gt_names
    assert [square_x(img) for _, img in frames] == [4 + 4 * 2, 4, 4 + 4 * 1]


def test_annotation_frame_count_mismatch_names_both(tmp_path):
    folder = write_folder(tmp_path / "seq", ["000000.jpg", "000001.jpg", "000002.jpg"])
    with pytest.raises(PosetrackError, match=r"seq holds 3 frame images but .* lists 2 frames"):
        frames_for_posetrack(folder, annotation_file(["seq/000000.jpg", "seq/000001.jpg"]))


def test_annotation_frame_missing_from_folder(tmp_path):
    folder = write_folder(tmp_path / "seq", ["000000.jpg", "000001.jpg"])
    with pytest.raises(PosetrackError, match="no image named '000007.jpg'"):
        frames_for_posetrack(folder, annotation_file(["seq/000000.jpg", "seq/000007.jpg"]))


def test_posetrack_sample_folder_matches_its_gt(shared_dir):
    sample = shared_dir / "assets" / "posetrack18_sample"
    gt = sample / "annotations" / "val" / "009473_mpii_test.json"
    frames = frames_for_posetrack(sample / "images" / "val" / "009473_mpii_test", gt)
    assert frames.file_names == ["images/val/009473_mpii_test/000000.jpg"]
    assert frames.size == (1920, 1080)

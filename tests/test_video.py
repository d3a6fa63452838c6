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


# ---------------------------------------------------------------------------------------------
# Frame ranges


@pytest.mark.parametrize("start, end, max_frames, expected", [
    (0, None, None, list(range(9))),  # the whole clip
    (2, 5, None, [2, 3, 4]),  # end is exclusive
    (6, None, None, [6, 7, 8]),  # to the end
    (0, None, 4, [0, 1, 2, 3]),
    (3, 8, 2, [3, 4]),  # max_frames shortens the range
    (7, 20, None, [7, 8]),  # an end past the clip stops at the clip's end
    (8, None, None, [8]),  # the last frame alone
])
@pytest.mark.parametrize("kind", ["video", "folder"])
def test_frame_range_keeps_frame_indices(tmp_path, kind, start, end, max_frames, expected):
    path = write_video(tmp_path / "clip.avi", 9, "MJPG") if kind == "video" else \
        write_folder(tmp_path / "seq", [f"{i:03d}.png" for i in range(9)])
    source = open_frames(path).select(start, end, max_frames)
    got = [(index, square_x(image)) for index, image in source]
    assert [index for index, _ in got] == expected
    assert [x for _, x in got] == [4 + 4 * i for i in expected]  # frame i is the i-th image
    assert len(source) == source.total == len(expected)


@pytest.mark.parametrize("start, end, max_frames, message", [
    (-1, None, None, "--start must be 0 or more"),
    (4, 4, None, r"--end \(4\) must be after --start \(4\)"),
    (0, None, 0, "--max-frames must be at least 1"),
    (9, None, None, "--start 9 is past the last frame .*9 frames, 0-8"),
])
def test_bad_frame_range(tmp_path, start, end, max_frames, message):
    source = open_frames(write_video(tmp_path / "clip.avi", 9, "MJPG"))
    with pytest.raises(PosetrackError, match=message):
        source.select(start, end, max_frames)


# ---------------------------------------------------------------------------------------------
# Cameras and stream URLs


@pytest.mark.parametrize("text, expected", [
    ("0", True), ("12", True),  # camera indices
    ("rtsp://camera.local/stream1", True), ("http://127.0.0.1:8000/a.avi", True),
    ("HTTPS://host/video.mp4", True), ("udp://239.0.0.1:1234", True),
    ("video.mp4", False), ("frames/", False), ("-1", False), ("file:///tmp/a.mp4", False),
    ("0.mp4", False),
])
def test_is_stream(text, expected):
    from posetrack.video import is_stream

    assert is_stream(text) is expected


def test_camera_that_does_not_exist_is_one_clear_error():
    with pytest.raises(PosetrackError, match="camera 97: cannot open"):
        open_frames("97")


def test_http_stream_gives_every_frame_without_a_known_length(tmp_path, http_folder):
    write_video(tmp_path / "clip.avi", 9, "MJPG")
    url = http_folder(tmp_path) + "/clip.avi"
    with open_frames(url) as source:
        assert source.live and source.total is None and source.name == "clip"
        with pytest.raises(TypeError, match="live source"):
            len(source)
        got = [(index, square_x(image)) for index, image in source]
        assert got == [(i, 4 + 4 * i) for i in range(9)]
        assert source.capture_time(8) is not None and source.file_name(3) == "clip/000003.jpg"
    with open_frames(url).select(3, max_frames=2) as source:  # ranges work on streams too
        assert [index for index, _ in source] == [3, 4]
    assert not reader_threads()


def test_url_without_a_video_is_one_clear_error(tmp_path, http_folder):
    (tmp_path / "notes.txt").write_text("not a video")
    base = http_folder(tmp_path)
    with pytest.raises(PosetrackError, match="notes.txt: (cannot open|opened, but no frame)"):
        open_frames(base + "/notes.txt")
    with pytest.raises(PosetrackError, match="missing.avi: cannot open"):
        open_frames(base + "/missing.avi")


# ---------------------------------------------------------------------------------------------
# Writing videos


def _codec(path):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
        return stream.codec_context.name, stream.pix_fmt, (stream.width, stream.height), frames


@pytest.mark.parametrize("suffix, codec", [(".mp4", "h264"), (".webm", "vp9"), (".mkv", "h264"),
                                           (".avi", "mpeg4")])
def test_writer_codec_follows_the_extension(tmp_path, suffix, codec):
    from posetrack.video import VideoWriter

    out = tmp_path / f"overlay{suffix}"
    with VideoWriter(out, 10, (W, H)) as writer:
        for i in range(6):
            writer.write(frame_image(i))
    name, pix_fmt, size, frames = _codec(out)
    assert (name, pix_fmt, size, len(frames)) == (codec, "yuv420p", (W, H), 6)
    assert [square_x(f) for f in frames] == [4 + 4 * i for i in range(6)]  # in order, none lost
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left


def test_every_overlay_extension_has_a_codec():
    from posetrack.fileio import OUTPUT_SUFFIXES
    from posetrack.video import VIDEO_CODECS

    assert set(VIDEO_CODECS) == set(OUTPUT_SUFFIXES["overlay"])


def test_mp4_has_its_index_first_so_browsers_play_it_while_loading(tmp_path):
    from posetrack.video import VideoWriter

    out = tmp_path / "overlay.mp4"
    with VideoWriter(out, 25, (W, H)) as writer:
        for i in range(5):
            writer.write(frame_image(i))
    head = out.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")


def test_odd_frame_size_is_padded_to_even(tmp_path):
    from posetrack.video import VideoWriter

    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 10, (W + 1, H + 1)) as writer:
        writer.write(frame_image(0, (W + 1, H + 1)))
    assert _codec(out)[2] == (W + 2, H + 2)


def test_writer_failures_leave_nothing(tmp_path):
    from posetrack.video import VideoWriter

    with pytest.raises(PosetrackError, match="unknown extension '.gif' for the overlay output; use .mp4, .webm"):
        with VideoWriter(tmp_path / "a.gif", 10, (W, H)):
            pass
    with pytest.raises(PosetrackError, match="no frames to write"):
        with VideoWriter(tmp_path / "b.mp4", 10, (W, H)):
            pass
    (tmp_path / "c.mp4").write_bytes(b"older")
    with pytest.raises(RuntimeError, match="stop"):
        with VideoWriter(tmp_path / "c.mp4", 10, (W, H)) as writer:
            writer.write(frame_image(0))
            raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4"]
    assert (tmp_path / "c.mp4").read_bytes() == b"older"


def test_no_display_is_named(monkeypatch):
    import sys

    from posetrack.video import display_problem

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        assert "no display here" in display_problem()
    monkeypatch.setenv("DISPLAY", ":0")
    assert display_problem() is None


CHROMIUM = next(filter(None, map(__import__("shutil").which, ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium) to play videos in")
@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_overlay_plays_in_a_browser(tmp_path, suffix):
    import re
    import subprocess

    from posetrack.video import VideoWriter

    with VideoWriter(tmp_path / f"overlay{suffix}", 10, (W, H)) as writer:
        for i in range(8):
            writer.write(frame_image(i))
    page = tmp_path / "play.html"
    page.write_text(f"""<!DOCTYPE html><html><body><video id="v" src="overlay{suffix}" muted></video>
<pre id="out"></pre><script>
const v = document.getElementById('v'), out = document.getElementById('out');
v.addEventListener('loadeddata', () => {{ out.textContent += 'loaded ' + v.videoWidth + 'x' + v.videoHeight + ';'; v.play(); }});
let end = false;  // 'ended' does not always fire for WebM in headless Chromium: watch the time
v.addEventListener('timeupdate', () => {{ if (!end && v.currentTime >= v.duration - 0.01) {{
  end = true; out.textContent += 'played to ' + v.currentTime.toFixed(1) + ';'; }} }});
v.addEventListener('error', () => {{ out.textContent += 'error ' + v.error.code + ';'; }});
</script></body></html>""")
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=10000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    shown = re.search(r'<pre id="out">([^<]*)', done.stdout).group(1)
    assert shown == f"loaded {W}x{H};played to 0.8;", shown  # decoded and played to the end

"""Frame sources and sinks: a video file, a folder of frame images, a camera or a stream URL,
decoded ahead in a background thread; overlay videos (H.264 / VP9 through PyAV) and a live window.

:func:`open_frames` opens any kind and checks it up front (the path exists, the video opens and
its first frame decodes, the folder holds images of one size, the camera or URL gives a frame),
so a bad input fails before any work is done. A camera (``"0"``) or a URL FFmpeg opens
(``rtsp://``, ``http(s)://``, ...) is a *live* source: its length is unknown (``source.total`` is
None) and it ends when the stream does or the consumer stops. Any source can be cut to a frame
range (``start``, ``end``, ``max_frames``); frame indices stay those of the whole input. :func:`frames_for_posetrack` opens a PoseTrack frame folder in the order of a
PoseTrack annotation file, so outputs line up with the ground-truth frames.

Iterating a source yields ``(index, image)`` pairs, ``image`` a (H, W, 3) uint8 BGR array. The
frames are decoded in a reader thread that stays at most ``queue_size`` frames ahead of the
consumer (decoding overlaps with the network work of the frame before). The thread stops when
the iteration ends, breaks, or raises (KeyboardInterrupt included), and on :meth:`close` or at the
end of a ``with`` block; an error in the reader thread is raised again in the consumer.

Videos that end early: ``len(source)`` is the frame count the container states. A damaged or cut
file can decode fewer frames; decoding then stops at the first frame that cannot be read (a
warning names its index) and the remaining frames are not yielded, so frame ``i`` is always the
``i``-th frame of the file and never a later one. ``source.frames_read`` tells how many frames
the latest iteration yielded. A damaged frame that the decoder conceals (FFmpeg repairs what it
can and logs the damage) is passed through as decoded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import PosetrackError
from .fileio import check_outputs, publish, temp_file

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
# A folder of frames has no frame rate of its own; 25 fps is the PAL video rate and close to the
# 25-30 fps of the PoseTrack source videos. Only overlay videos and time stamps use it.
DEFAULT_FOLDER_FPS = 25.0
# Frames decoded ahead of the consumer: enough to hide decode jitter, small enough that a 1080p
# stream holds about 50 MB in the queue.
DEFAULT_QUEUE_SIZE = 8
_JOIN_TIMEOUT_S = 10.0
# URL schemes handed to FFmpeg as a stream (OpenCV's FFmpeg backend opens them).
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "hls")


class FrameSource:
    """Frames of one clip, decoded ahead in a background thread. Use :func:`open_frames`.

    Attributes:
        path: the video file or frame folder (a ``Path``), or the camera index / URL (a ``str``).
        name: a short name for messages and output file names (file stem, folder name,
            ``camera0``, the URL's file stem).
        fps: frames per second (the video's; a folder's is given when opening, default 25).
        size: (width, height) of every frame, pixels.
        file_names: one name per frame of the whole input, as output files name the frames: for a
            folder the image paths (relative to ``root`` when given, else ``<folder name>/<file
            name>``), for a video synthetic names ``<video stem>/000123.jpg`` (0-based frame index).
            Empty for a live source; use :meth:`file_name`.
        live: a camera or a stream: no known length, ends when the stream does.
        start, stop: the frame range iterated, ``stop`` exclusive (None: to the end).
        frames_read: how many frames the latest (or current) iteration has yielded; after a full
            iteration a value below ``total`` means the video ended early.
        queue_size: how many frames the reader thread may decode ahead.
    """

    live = False

    def __init__(self, path, fps: float, size: tuple[int, int], file_names: list[str],
                 queue_size: int = DEFAULT_QUEUE_SIZE, name: str | None = None):
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.path = path
        self.name = name or Path(path).name
        self.fps = float(fps)
        self.size = size
        self.file_names = file_names
        self.start, self.stop = 0, None
        self.frames_read = 0
        self.queue_size = queue_size
        self._readers: set[_ReadAhead] = set()

    @property
    def total(self) -> int | None:
        """How many frames a full iteration yields (the range within the stated frame count);
        None for a live source without an end in its range."""
        stop = self.stop
        if not self.live:
            stop = len(self.file_names) if stop is None else min(stop, len(self.file_names))
        return None if stop is None else max(0, stop - self.start)

    def __len__(self) -> int:
        """``total``; a live source has no length (TypeError)."""
        total = self.total
        if total is None:
            raise TypeError(f"{self.name} is a live source: its length is not known")
        return total

    def file_name(self, index: int) -> str:
        """The name of frame ``index`` (an index of the whole input) in output files."""
        if index < len(self.file_names):
            return self.file_names[index]
        return f"{self.name}/{index:06d}.jpg"

    def select(self, start: int = 0, end: int | None = None, max_frames: int | None = None) -> "FrameSource":
        """Iterate frames ``start`` to ``end`` (exclusive), at most ``max_frames`` of them.

        Frame indices stay those of the whole input. Returns the source itself.

        Raises:
            PosetrackError: a negative start, an end not after the start, ``max_frames`` below 1,
                or a start past the last frame of an input of known length.
        """
        if start < 0:
            raise PosetrackError(f"--start must be 0 or more, got {start}")
        if end is not None and end <= start:
            raise PosetrackError(f"--end ({end}) must be after --start ({start}); the range is "
                                 "start <= frame < end")
        if max_frames is not None:
            if max_frames < 1:
                raise PosetrackError(f"--max-frames must be at least 1, got {max_frames}")
            end = start + max_frames if end is None else min(end, start + max_frames)
        if not self.live and start >= len(self.file_names):
            raise PosetrackError(f"{self.path}: --start {start} is past the last frame "
                                 f"(it has {len(self.file_names)} frames, 0-{len(self.file_names) - 1})")
        self.start, self.stop = start, end
        return self

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        reader = _ReadAhead(lambda: self._decode(self.start), self.queue_size,
                            name=f"posetrack-decode:{self.name}")
        self._readers.add(reader)
        self.frames_read = 0
        try:
            for index, image in enumerate(reader, self.start):
                if self.stop is not None and index >= self.stop:
                    break
                self.frames_read += 1
                yield index, image
        finally:
            reader.close()
            self._readers.discard(reader)

    def close(self) -> None:
        """Stop any reader thread still running (an iteration abandoned without being closed)."""
        for reader in list(self._readers):
            reader.close()
        self._readers.clear()

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.size
        frames = "live" if self.total is None else f"{self.total} frames"
        return f"{type(self).__name__}({str(self.path)!r}, {frames}, {w}x{h}, {self.fps:g} fps)"

    def _decode(self, start: int) -> Iterator[np.ndarray]:
        """Yield the frames in order from frame ``start``; runs in the reader thread."""
        raise NotImplementedError


class VideoFrames(FrameSource):
    """Frames of a video file, decoded with OpenCV (see the module docstring on early ends)."""

    def _decode(self, start: int) -> Iterator[np.ndarray]:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            if not capture.isOpened():
                raise PosetrackError(f"{self.path}: cannot open the video any more")
            index = 0
            while index < start and capture.grab():  # skipped frames are not converted to BGR
                index += 1
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                _check_size(self.path, image, self.size, f"frame {index}")
                yield image
                index += 1
            if index < len(self.file_names):
                log.warning("%s: the video says it has %d frames, but frame %d could not be decoded; "
                            "stopping there, %d frames read", self.path, len(self.file_names), index, index)
        finally:
            capture.release()


class FolderFrames(FrameSource):
    """Frames stored as image files, read in the order given."""

    def __init__(self, path: Path, image_paths: list[Path], file_names: list[str], fps: float,
                 size: tuple[int, int], queue_size: int = DEFAULT_QUEUE_SIZE):
        super().__init__(path, fps, size, file_names, queue_size)
        self.image_paths = image_paths

    def _decode(self, start: int) -> Iterator[np.ndarray]:
        for index, image_path in enumerate(self.image_paths[start:], start):
            image = _read_image(image_path)
            _check_size(image_path, image, self.size, f"frame {index}")
            yield image


class StreamFrames(FrameSource):
    """Frames of a camera or a stream URL (OpenCV, FFmpeg backend), read as they arrive.

    The capture opened (and its first frame read) by :func:`open_frames` is used by the first
    iteration; a later iteration opens the source again. The stream ends at the first frame that
    cannot be read (the stream closed, the camera unplugged). ``capture_time(index)`` is the Unix
    time at which frame ``index`` was read, for the latest frames.
    """

    live = True
    _KEEP_TIMES = 1024  # capture times kept for this many latest frames

    def __init__(self, target, capture, first: np.ndarray, fps: float, name: str,
                 queue_size: int = DEFAULT_QUEUE_SIZE):
        super().__init__(target, fps, (first.shape[1], first.shape[0]), [], queue_size, name)
        self._opened = (capture, first, time.time())
        self._times: dict[int, float] = {}

    def capture_time(self, index: int) -> float | None:
        return self._times.get(index)

    def _decode(self, start: int) -> Iterator[np.ndarray]:
        capture, first, first_time = self._opened or (None, None, None)
        self._opened = None
        if capture is None:
            capture, first = _open_stream(self.path)
            first_time = time.time()
        try:
            index, image, read_at = 0, first, first_time
            while True:
                if index >= start:
                    self._times[index] = read_at
                    self._times.pop(index - self._KEEP_TIMES, None)
                    _check_size(self.path, image, self.size, f"frame {index}")
                    yield image
                index += 1
                ok, image = capture.read()
                read_at = time.time()
                if not ok or image is None:
                    log.info("%s: the stream ended after %d frames", self.name, index)
                    return
        finally:
            capture.release()

    def close(self) -> None:
        super().close()
        if self._opened is not None:  # opened but never iterated
            self._opened[0].release()
            self._opened = None


def is_stream(path) -> bool:
    """Whether INPUT names a camera (a non-negative integer such as ``"0"``) or a URL FFmpeg
    opens (``rtsp://``, ``http(s)://``, ...) rather than a file or folder."""
    text = str(path)
    if text.isdigit():
        return True
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in STREAM_SCHEMES


def open_frames(path, *, fps: float | None = None, root=None,
                queue_size: int = DEFAULT_QUEUE_SIZE) -> FrameSource:
    """Open a video file, a folder of frame images, a camera or a stream URL.

    Args:
        path: a video file OpenCV can read; or a folder of images (.jpg, .jpeg, .png, .bmp, .tif,
            .tiff, .webp; other files and subfolders are ignored), read in natural name order
            (``frame2.png`` before ``frame10.png``; zero-padded names sort the same either way);
            or a camera index (``0``, ``"0"``); or a URL (see :func:`is_stream`).
        fps: a folder's frame rate (default 25, ``DEFAULT_FOLDER_FPS``). For a video or stream,
            overrides the rate it states, which is used otherwise.
        root: for a folder, ``file_names`` are the image paths relative to this folder (e.g. the
            PoseTrack data root, giving ``images/val/<seq>/000000.jpg``); default
            ``<folder name>/<file name>``.
        queue_size: frames decoded ahead of the consumer.

    Raises:
        PosetrackError: the path is missing; the video, camera or URL cannot be opened or no frame
            of it decodes; the folder holds no images; an image cannot be read; the images differ
            in size.
    """
    if fps is not None and not (fps > 0 and np.isfinite(fps)):
        raise PosetrackError(f"fps must be a positive number, got {fps}")
    if isinstance(path, int) or (isinstance(path, str) and is_stream(path)):
        return _stream_source(str(path), fps, queue_size)
    path = Path(path)
    if path.is_dir():
        images = sorted((p for p in path.iterdir() if _is_image(p)), key=lambda p: _natural_key(p.name))
        if not images:
            videos = [p.name for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS]
            listed = ", ".join(sorted(videos)[:3]) + (", ..." if len(videos) > 3 else "")
            hint = (f"; it holds videos ({listed}): open one of them, or use `posetrack batch` "
                    "for a folder of clips") if videos else ""
            raise PosetrackError(f"{path}: no frame images ({', '.join(IMAGE_EXTENSIONS)}) in this folder{hint}")
        return _folder_source(path, images, _folder_names(path, images, root), fps, queue_size)
    if path.is_file():
        return _open_video(path, fps, queue_size)
    raise PosetrackError(f"{path}: no such file or folder (INPUT is a video file, a folder of "
                         "frames, a camera index such as 0, or a stream URL)")


def frames_for_posetrack(folder, annotations, *, fps: float | None = None,
                         queue_size: int = DEFAULT_QUEUE_SIZE) -> FolderFrames:
    """Open a PoseTrack frame folder in the frame order of a PoseTrack annotation file.

    Each entry of ``annotations.images`` is matched to the image of the folder with the same base
    name (``images/val/003418_mpii_test/000042.jpg`` -> ``<folder>/000042.jpg``), so frame ``i``
    of the source is image ``i`` of the file, and ``file_names`` are the file's own ``file_name``
    strings (what an output must repeat for the evaluator to pair it with the ground truth).

    Args:
        folder: the folder of one sequence's frames.
        annotations: a ``PoseTrackVideo`` (``formats.read_posetrack``) or the path of the file.

    Raises:
        PosetrackError: the folder and the file have different numbers of frames (both named), an
            image the file lists is not in the folder, two entries share a base name, or any error
            of :func:`open_frames`.
    """
    from .formats import read_posetrack

    folder = Path(folder)
    if isinstance(annotations, (str, os.PathLike)):
        label = str(annotations)
        annotations = read_posetrack(annotations)
    else:
        label = "the annotation file"
    if not folder.is_dir():
        raise PosetrackError(f"{folder}: no such folder")
    on_disk = {p.name: p for p in folder.iterdir() if _is_image(p)}
    wanted = [Path(image.file_name.replace("\\", "/")).name for image in annotations.images]
    if len(on_disk) != len(wanted):
        raise PosetrackError(f"{folder} holds {len(on_disk)} frame images but {label} lists "
                             f"{len(wanted)} frames; they must be the same frames")
    seen = set()
    for image, name in zip(annotations.images, wanted):
        if name in seen:
            raise PosetrackError(f"{label}: two frames share the file name {name!r}, so they cannot "
                                 f"be matched to the images of {folder}")
        seen.add(name)
        if name not in on_disk:
            raise PosetrackError(f"{label} lists frame {image.file_name!r}, but {folder} has no "
                                 f"image named {name!r}")
    names = [image.file_name for image in annotations.images]
    return _folder_source(folder, [on_disk[n] for n in wanted], names, fps, queue_size)


# ---------------------------------------------------------------------------------------------
# Opening


def _open_video(path: Path, fps: float | None, queue_size: int) -> VideoFrames:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise PosetrackError(f"{path}: cannot open as a video (not a video file, damaged, or a "
                                 "format this OpenCV build cannot read)")
        ok, first = capture.read()
        if not ok or first is None:
            raise PosetrackError(f"{path}: no frame of the video can be decoded (damaged file?)")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:  # some containers do not state it: count by decoding
            count = 1
            while capture.grab():
                count += 1
            log.info("%s: the container does not state its frame count; %d frames decoded", path, count)
        stated_fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    if fps is None:
        if stated_fps > 0 and np.isfinite(stated_fps) and stated_fps <= 1000:
            fps = stated_fps
        else:
            fps = DEFAULT_FOLDER_FPS
            log.warning("%s: the video states no usable frame rate (%s); assuming %g fps",
                        path, stated_fps, fps)
    size = (first.shape[1], first.shape[0])
    names = [f"{path.stem}/{i:06d}.jpg" for i in range(count)]
    return VideoFrames(path, fps, size, names, queue_size)


def _open_stream(target: str):
    """-> (an open cv2.VideoCapture, its first frame) for a camera index or a URL."""
    import cv2

    what = f"camera {target}" if target.isdigit() else target
    capture = cv2.VideoCapture(int(target)) if target.isdigit() else cv2.VideoCapture(target, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        hint = ("no such camera, or it is in use" if target.isdigit() else
                "unreachable, refused, or not a stream FFmpeg can read")
        raise PosetrackError(f"{what}: cannot open ({hint})")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        hint = ("" if target.isdigit() else "; over HTTP an MP4 whose index is at the end of the file "
                "needs a server that answers range requests (or write it with the index first, "
                "e.g. ffmpeg -movflags +faststart)")
        raise PosetrackError(f"{what}: opened, but no frame could be read{hint}")
    return capture, first


def _stream_source(target: str, fps: float | None, queue_size: int) -> StreamFrames:
    import cv2

    capture, first = _open_stream(target)
    if fps is None:
        stated = capture.get(cv2.CAP_PROP_FPS)
        fps = stated if 0 < stated <= 1000 and np.isfinite(stated) else DEFAULT_FOLDER_FPS
        if fps != stated:
            log.info("%s: the stream states no usable frame rate (%s); assuming %g fps", target, stated, fps)
    if target.isdigit():
        name = f"camera{target}"
    else:
        tail = target.split("://", 1)[1].split("?", 1)[0].rstrip("/")
        name = Path(tail).stem if "/" in tail else tail.split(":")[0]
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "stream"
    return StreamFrames(target, capture, first, fps, name, queue_size)


def _folder_source(folder: Path, images: list[Path], names: list[str], fps: float | None,
                   queue_size: int) -> FolderFrames:
    sizes = [_image_size(p) for p in images]
    first = sizes[0]
    for image_path, size in zip(images, sizes):
        if size != first:
            raise PosetrackError(
                f"{image_path}: image is {size[0]}x{size[1]}, but the frames before it "
                f"({images[0].name} ...) are {first[0]}x{first[1]}; all frames of a folder must "
                "have the same size")
    return FolderFrames(folder, images, names, fps or DEFAULT_FOLDER_FPS, first, queue_size)


def _folder_names(folder: Path, images: list[Path], root) -> list[str]:
    if root is None:
        return [f"{folder.name}/{p.name}" for p in images]
    root = Path(root)
    try:
        return [p.resolve().relative_to(root.resolve()).as_posix() for p in images]
    except ValueError:
        raise PosetrackError(f"{folder} is not inside the root folder {root}") from None


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def _natural_key(name: str):
    """'frame10.png' -> ('frame', 10, '.png'): numbers compare as numbers."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", name) if part]


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) as OpenCV will decode it, from the file header where Pillow can read it
    (no full decode), else by decoding the image."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # Pillow is optional: decode instead
        image = _read_image(path)
        return image.shape[1], image.shape[0]
    try:
        with Image.open(path) as image:
            width, height = image.size
            # OpenCV applies the EXIF orientation; a quarter turn swaps width and height.
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width
            return width, height
    except (UnidentifiedImageError, OSError, ValueError):
        image = _read_image(path)  # raises a clear error if OpenCV cannot read it either
        return image.shape[1], image.shape[0]


def _read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise PosetrackError(f"{path}: cannot read the image (damaged or not an image)")
    return image


def _check_size(path: Path, image: np.ndarray, size: tuple[int, int], what: str) -> None:
    if (image.shape[1], image.shape[0]) != tuple(size):
        raise PosetrackError(f"{path}: {what} is {image.shape[1]}x{image.shape[0]}, but the frames "
                             f"before it are {size[0]}x{size[1]}")


# ---------------------------------------------------------------------------------------------
# Writing videos, showing frames

# Extension -> (container format, encoder, encoder options). H.264 and VP9 in yuv420p are what
# browsers, phones and players decode; MPEG-4 Part 2 in AVI is for old tools only. libx264
# "veryfast" at CRF 23: see README "Overlay videos" for the speed and size of each preset.
VIDEO_CODECS = {
    ".mp4": ("mp4", "libx264", {"crf": "23", "preset": "veryfast"}),
    ".m4v": ("mp4", "libx264", {"crf": "23", "preset": "veryfast"}),
    ".mov": ("mov", "libx264", {"crf": "23", "preset": "veryfast"}),
    ".mkv": ("matroska", "libx264", {"crf": "23", "preset": "veryfast"}),
    ".webm": ("webm", "libvpx-vp9", {"crf": "33", "b": "0", "deadline": "realtime", "cpu-used": "8",
                                     "row-mt": "1"}),
    ".avi": ("avi", "mpeg4", {"qscale": "3"}),
}
# The index at the front of the file, so a browser starts playing before the whole file is in.
_CONTAINER_OPTIONS = {"mp4": {"movflags": "+faststart"}, "mov": {"movflags": "+faststart"}}


class VideoWriter:
    """Write a video frame by frame with PyAV (FFmpeg), atomically: to a hidden temporary file
    beside ``out_path``, renamed to ``out_path`` when the ``with`` block ends without an error; on
    an error the temporary file is removed and an existing ``out_path`` is left as it was.

    The codec follows the extension (``VIDEO_CODECS``): H.264 for .mp4/.m4v/.mov/.mkv, VP9 for
    .webm, MPEG-4 Part 2 for .avi; all yuv420p, which needs an even width and height, so a frame
    of odd size gets one edge row or column repeated at the bottom or right.

    Args:
        out_path: the video to write.
        fps: frames per second.
        size: (width, height) of every frame.
    """

    def __init__(self, out_path, fps: float, size: tuple[int, int]):
        self.out_path = Path(out_path)
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1]))
        self.frames_written = 0
        self.codec = None
        self._container = None
        self._stream = None
        self._tmp: str | None = None

    def __enter__(self) -> "VideoWriter":
        import av

        check_outputs([(self.out_path, "overlay")])  # the extensions of VIDEO_CODECS
        container_format, self.codec, options = VIDEO_CODECS[self.out_path.suffix.lower()]
        fd, self._tmp = temp_file(self.out_path)
        os.close(fd)
        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            self._container = av.open(self._tmp, mode="w", format=container_format,
                                      options=_CONTAINER_OPTIONS.get(container_format, {}))
            self._stream = self._container.add_stream(self.codec, rate=rate, options=dict(options))
            self._stream.width, self._stream.height = (v + v % 2 for v in self.size)
            self._stream.pix_fmt = "yuv420p"
        except (av.FFmpegError, ValueError) as err:
            self._discard()
            raise PosetrackError(f"{self.out_path}: cannot write a video here with {self.codec} "
                                 f"({err})") from None
        self._time_base = 1 / rate
        return self

    def write(self, image_bgr: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame of the writer's size."""
        import av

        if self._stream is None:
            raise RuntimeError("write() outside the writer's with block")
        if image_bgr.shape != (self.size[1], self.size[0], 3) or image_bgr.dtype != np.uint8:
            raise ValueError(f"frame must be ({self.size[1]}, {self.size[0]}, 3) uint8, "
                             f"got {image_bgr.shape} {image_bgr.dtype}")
        pad_y, pad_x = self.size[1] % 2, self.size[0] % 2
        if pad_x or pad_y:
            image_bgr = np.pad(image_bgr, ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        frame.pts, frame.time_base = self.frames_written, self._time_base
        self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        if self.frames_written == 0:
            self._discard()
            raise PosetrackError(f"{self.out_path}: no frames to write, so no video was written")
        try:
            self._container.mux(self._stream.encode(None))  # the frames the encoder still holds
            self._container.close()
        except BaseException:
            self._discard()
            raise
        self._container = self._stream = None
        publish(self._tmp, self.out_path)

    def _discard(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = self._stream = None
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)


def display_problem() -> str | None:
    """Why no window can be shown here, in one line, or None when one can."""
    import sys

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display here (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    return None


class FrameWindow:
    """A window showing frames as they come (OpenCV HighGUI); q or Esc in it asks to stop.

    Use :func:`display_problem` first: where there is no display, OpenCV aborts the process.
    ``show`` returns False once the viewer asked to stop (or closed the window).
    """

    def __init__(self, title: str, size: tuple[int, int]):
        import cv2

        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.resizeWindow(title, *_fit_on_screen(size))
        except cv2.error as err:  # an OpenCV built without a GUI (opencv-python-headless)
            raise PosetrackError(f"--show: this OpenCV cannot open windows ({str(err).strip().splitlines()[-1]})") from None

    def show(self, image_bgr: np.ndarray) -> bool:
        import cv2

        cv2.imshow(self.title, image_bgr)
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        return not (closed or key in (ord("q"), 27))

    def close(self) -> None:
        import cv2

        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


def _fit_on_screen(size: tuple[int, int], longest: int = 1280) -> tuple[int, int]:
    """The window size: the frame's, scaled down so its longest side is at most ``longest``."""
    scale = min(1.0, longest / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


# ---------------------------------------------------------------------------------------------
# The reader thread

_ITEM, _END, _ERROR = "item", "end", "error"


class _ReadAhead:
    """Run a generator in a daemon thread, handing its items over through a bounded queue.

    Iterating yields the items; an exception of the generator is raised here, in the consumer.
    :meth:`close` makes the thread stop at its next hand-over and waits for it (puts time out
    every 50 ms to look at the stop flag, so a full queue never blocks the thread forever).
    """

    def __init__(self, produce: Callable[[], Iterator], maxsize: int, name: str):
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(produce,), name=name, daemon=True)
        self._thread.start()

    def _run(self, produce) -> None:
        try:
            items = produce()
            try:
                for item in items:
                    if not self._put((_ITEM, item)):
                        return
            finally:
                items.close()
        except BaseException as err:  # handed to the consumer, which raises it
            self._put((_ERROR, err))
        else:
            self._put((_END, None))

    def _put(self, message) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        while True:
            try:
                kind, value = self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the frame reader thread stopped without a word") from None
                continue
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("the frame reader thread %s did not stop within %g s",
                            self._thread.name, _JOIN_TIMEOUT_S)


def count_frames(path) -> int:
    """A clip's frame count as its container or folder states it, without decoding any frame
    (for ordering work; 0 when it cannot be opened). ``open_frames`` gives the exact count."""
    path = Path(path)
    if path.is_dir():
        return sum(1 for p in path.iterdir() if _is_image(p))
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0) if capture.isOpened() else 0
    finally:
        capture.release()

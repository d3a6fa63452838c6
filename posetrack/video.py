"""Frame sources: a video file or a folder of frame images, decoded ahead in a background thread.

:func:`open_frames` opens either kind and checks it up front (the path exists, the video opens and
its first frame decodes, the folder holds images of one size), so a bad input fails before any
work is done. :func:`frames_for_posetrack` opens a PoseTrack frame folder in the order of a
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

import logging
import os
import queue
import re
import threading
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import PosetrackError

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


class FrameSource:
    """Frames of one clip, decoded ahead in a background thread. Use :func:`open_frames`.

    Attributes:
        path: the video file or frame folder.
        fps: frames per second (the video's; a folder's is given when opening, default 25).
        size: (width, height) of every frame, pixels.
        file_names: one name per frame, as output files name the frames: for a folder the image
            paths (relative to ``root`` when given, else ``<folder name>/<file name>``), for a video
            synthetic names ``<video stem>/000123.jpg`` (0-based frame index).
        frames_read: how many frames the latest (or current) iteration has yielded; after a full
            iteration a value below ``len(source)`` means the video ended early.
        queue_size: how many frames the reader thread may decode ahead.
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], file_names: list[str],
                 queue_size: int = DEFAULT_QUEUE_SIZE):
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.path = path
        self.fps = float(fps)
        self.size = size
        self.file_names = file_names
        self.frames_read = 0
        self.queue_size = queue_size
        self._readers: set[_ReadAhead] = set()

    def __len__(self) -> int:
        """The number of frames: a folder's image count, a video's container frame count."""
        return len(self.file_names)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        reader = _ReadAhead(self._decode, self.queue_size, name=f"posetrack-decode:{self.path.name}")
        self._readers.add(reader)
        self.frames_read = 0
        try:
            for index, image in enumerate(reader):
                self.frames_read = index + 1
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
        return f"{type(self).__name__}({str(self.path)!r}, {len(self)} frames, {w}x{h}, {self.fps:g} fps)"

    def _decode(self) -> Iterator[np.ndarray]:
        """Yield the frames in order; runs in the reader thread."""
        raise NotImplementedError


class VideoFrames(FrameSource):
    """Frames of a video file, decoded with OpenCV (see the module docstring on early ends)."""

    def _decode(self) -> Iterator[np.ndarray]:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            if not capture.isOpened():
                raise PosetrackError(f"{self.path}: cannot open the video any more")
            index = 0
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                _check_size(self.path, image, self.size, f"frame {index}")
                yield image
                index += 1
            if index < len(self):
                log.warning("%s: the video says it has %d frames, but frame %d could not be decoded; "
                            "stopping there, %d frames read", self.path, len(self), index, index)
        finally:
            capture.release()


class FolderFrames(FrameSource):
    """Frames stored as image files, read in the order given."""

    def __init__(self, path: Path, image_paths: list[Path], file_names: list[str], fps: float,
                 size: tuple[int, int], queue_size: int = DEFAULT_QUEUE_SIZE):
        super().__init__(path, fps, size, file_names, queue_size)
        self.image_paths = image_paths

    def _decode(self) -> Iterator[np.ndarray]:
        for index, image_path in enumerate(self.image_paths):
            image = _read_image(image_path)
            _check_size(image_path, image, self.size, f"frame {index}")
            yield image


def open_frames(path, *, fps: float | None = None, root=None,
                queue_size: int = DEFAULT_QUEUE_SIZE) -> FrameSource:
    """Open a video file or a folder of frame images.

    Args:
        path: a video file OpenCV can read, or a folder of images (.jpg, .jpeg, .png, .bmp, .tif,
            .tiff, .webp; other files and subfolders are ignored), read in natural name order
            (``frame2.png`` before ``frame10.png``; zero-padded names sort the same either way).
        fps: a folder's frame rate (default 25, ``DEFAULT_FOLDER_FPS``). For a video, overrides
            the rate the file states, which is used otherwise.
        root: for a folder, ``file_names`` are the image paths relative to this folder (e.g. the
            PoseTrack data root, giving ``images/val/<seq>/000000.jpg``); default
            ``<folder name>/<file name>``.
        queue_size: frames decoded ahead of the consumer.

    Raises:
        PosetrackError: the path is missing; the video cannot be opened or no frame of it decodes;
            the folder holds no images; an image cannot be read; the images differ in size.
    """
    path = Path(path)
    if fps is not None and not (fps > 0 and np.isfinite(fps)):
        raise PosetrackError(f"fps must be a positive number, got {fps}")
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
    raise PosetrackError(f"{path}: no such file or folder")


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

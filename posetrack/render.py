"""Overlay rendering: skeletons, boxes and track ids drawn on frames, and overlay videos.

:func:`draw_poses` is pure (it returns a new image). Every track id has one colour, the same in
every frame and every video (:func:`track_color`); people without a track id (-1) are grey.
Line widths, joint radii and label fonts grow with the image (2 px limbs at 480x270, 4 px at
1920x1080), so overlays stay readable at both sizes.

:func:`render_video` writes an overlay video of a frame source and a PoseTrack file, through
:class:`~posetrack.video.VideoWriter` (H.264 in .mp4, VP9 in .webm; written to a temporary file
beside the output, renamed into place only when the video is complete).
"""

from __future__ import annotations

import colorsys
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import PosetrackError
from .fileio import check_outputs
from .formats import PoseTrackVideo, read_posetrack
from .frame import NO_TRACK, Poses
from .joints import POSETRACK17, JointLayout

log = logging.getLogger(__name__)

UNTRACKED_COLOR = (160, 160, 160)  # BGR, people with track id -1
_GOLDEN = 0.6180339887498949
_OUTLINE = (0, 0, 0)
_MAX_COORD = 1e5  # keeps far-off coordinates inside OpenCV's integer range


def track_color(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of a track id, the same on every frame and in every run.

    Hues step by the golden ratio of the colour wheel, so ids close in number (the ones alive at
    the same time) get far-apart hues; the saturation and brightness alternate in a short cycle so
    ids whose hues come close again differ in shade. Id -1 (no track) is grey.
    """
    track_id = int(track_id)
    if track_id < 0:
        return UNTRACKED_COLOR
    hue = (track_id * _GOLDEN) % 1.0
    saturation = (0.85, 0.6, 1.0)[track_id % 3]
    value = (1.0, 0.9)[(track_id // 3) % 2]
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return int(round(b * 255)), int(round(g * 255)), int(round(r * 255))


def draw_poses(image_bgr: np.ndarray, poses: Poses, *, min_joint_score: float | None = None,
               layout: JointLayout = POSETRACK17, boxes: bool = True, labels: bool = True) -> np.ndarray:
    """Draw every person of ``poses`` on a copy of ``image_bgr``.

    Per person, in the colour of its track id: the box (``boxes``), the skeleton edges of
    ``layout`` between joints that are both drawn, the joints (dots with a dark rim), and the
    track id on a label at the box's top-left corner (``labels``; not for untracked people).

    Args:
        image_bgr: (H, W, 3) uint8. Not modified.
        poses: the people of this frame; their joints in ``layout`` order.
        min_joint_score: joints scoring below it are not drawn, nor their edges. Higher: only
            confident joints, fewer wrong limbs, more gaps; None draws every present joint.
            Absent joints (NaN) are never drawn; a joint without a score (NaN) always is.
        layout: the joint layout, for the skeleton edges.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    import cv2

    image_bgr = np.asarray(image_bgr)
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"image_bgr must be (H, W, 3) uint8, got {image_bgr.shape} {image_bgr.dtype}")
    if len(poses) and poses.num_joints != layout.num_joints:
        raise ValueError(f"poses have {poses.num_joints} joints, layout {layout.name} has {layout.num_joints}")
    out = image_bgr.copy()
    height, width = out.shape[:2]
    short_side = min(height, width)
    limb_width = max(2, round(short_side / 300))  # 2 px up to 720p, 4 px at 1080p
    box_width = max(1, limb_width - 1)  # boxes a little thinner than limbs, so limbs stand out
    radius = limb_width + 1
    font_scale = max(0.4, short_side / 720)
    font_thickness = max(1, round(font_scale * 1.3))

    shown = poses.visible
    if min_joint_score is not None:
        shown &= ~(poses.keypoint_scores < min_joint_score)  # NaN scores compare False: kept
    points = np.clip(np.nan_to_num(poses.keypoints_xy), -_MAX_COORD, _MAX_COORD).round().astype(np.int64)

    for p in range(len(poses)):
        color = track_color(poses.track_ids[p])
        box = poses.boxes_xyxy[p]
        if boxes and np.isfinite(box).all():
            x1, y1, x2, y2 = np.clip(box, -_MAX_COORD, _MAX_COORD).round().astype(int)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, box_width, cv2.LINE_8)  # axis-aligned: crisp
        for a, b in layout.skeleton:
            if shown[p, a] and shown[p, b]:
                cv2.line(out, tuple(points[p, a]), tuple(points[p, b]), color, limb_width, cv2.LINE_AA)
        for j in np.flatnonzero(shown[p]):
            cv2.circle(out, tuple(points[p, j]), radius, color, -1, cv2.LINE_AA)
            cv2.circle(out, tuple(points[p, j]), radius, _OUTLINE, 1, cv2.LINE_AA)
        if labels and poses.track_ids[p] != NO_TRACK:
            anchor = _label_anchor(box, poses.keypoints_xy[p][shown[p]])
            if anchor is not None:
                _draw_label(out, str(int(poses.track_ids[p])), anchor, color, font_scale, font_thickness)
    return out


def _label_anchor(box: np.ndarray, keypoints: np.ndarray):
    """The top-left corner of the person: of the box, else of the drawn joints; None if neither."""
    if np.isfinite(box).all():
        return float(box[0]), float(box[1])
    if len(keypoints):
        return float(keypoints[:, 0].min()), float(keypoints[:, 1].min())
    return None


def _draw_label(image, text, anchor, color, font_scale, font_thickness) -> None:
    """A filled tag in the track colour holding the id, above the anchor (below if no room),
    kept inside the image."""
    import cv2

    height, width = image.shape[:2]
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, font_thickness)
    pad = max(2, text_h // 4)
    tag_w, tag_h = text_w + 2 * pad, text_h + baseline + 2 * pad
    x = int(np.clip(anchor[0], 0, max(0, width - tag_w)))
    y = int(np.clip(anchor[1], -_MAX_COORD, _MAX_COORD)) - tag_h
    if y < 0:  # no room above the box: put the tag just inside its top edge
        y = int(np.clip(anchor[1], 0, max(0, height - tag_h)))
    cv2.rectangle(image, (x, y), (x + tag_w, y + tag_h), color, -1)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(image, text, (x + pad, y + pad + text_h), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink,
                font_thickness, cv2.LINE_AA)


def render_video(frames, tracks: PoseTrackVideo | Sequence[Poses], out_path, *,
                 min_joint_score: float | None = None, progress: bool = True) -> int:
    """Write an overlay video: every frame of ``frames`` with its people drawn (:func:`draw_poses`).

    Frames pair with the frames of ``tracks`` by order: frame ``i`` of the source gets the people
    of image ``i`` of the file. ``tracks`` may have fewer frames than the source (a run stopped
    early, or tracks of the start of a clip): the remaining frames are written without overlay,
    with a warning. More frames in ``tracks`` than in the source is an error: they cannot belong
    to this clip. If the video ends early (fewer frames decode than it states), the video holds
    the frames decoded and a warning says which frames' tracks were not drawn.

    Args:
        frames: a :class:`~posetrack.video.FrameSource`.
        tracks: a PoseTrack file's contents, or one ``Poses`` per frame (POSETRACK17 layout).
        out_path: the video to write; the extension chooses the codec (see
            :class:`~posetrack.video.VideoWriter`: .mp4 H.264, .webm VP9).
        min_joint_score: see :func:`draw_poses`.
        progress: show a progress bar on stderr.

    Returns:
        The number of frames written.
    """
    from tqdm import tqdm

    from .video import VideoWriter

    poses = tracks.poses if isinstance(tracks, PoseTrackVideo) else list(tracks)
    if len(poses) > len(frames):
        raise PosetrackError(f"the tracks have {len(poses)} frames but {frames.path} has {len(frames)}; "
                             "they are not tracks of this clip")
    if len(poses) < len(frames):
        log.warning("the tracks have %d frames, %s has %d: frames %d-%d are written without overlay",
                    len(poses), frames.path, len(frames), len(poses), len(frames) - 1)
    if isinstance(tracks, PoseTrackVideo):
        _warn_size_mismatch(tracks, frames)
    with VideoWriter(out_path, frames.fps, frames.size) as writer, \
            tqdm(total=len(frames), unit="frame", desc="render", disable=not progress) as bar, \
            frames:
        for index, image in frames:
            if index < len(poses):
                image = draw_poses(image, poses[index], min_joint_score=min_joint_score)
            writer.write(image)
            bar.update()
    if writer.frames_written < len(poses):
        log.warning("%s: only %d frames decoded, so the tracks of frames %d-%d were not drawn",
                    frames.path, writer.frames_written, writer.frames_written, len(poses) - 1)
    return writer.frames_written


def render_overlay(input_path, tracks_path, out_path, *, min_joint_score: float | None = None,
                   smoothing=None, progress: bool = True) -> int:
    """``posetrack render``: draw a PoseTrack 2018 (or 2017) file over a video or frame folder.

    A video pairs with the file's frames by order (:func:`render_video`). A frame folder pairs
    with them by file name when the file names every frame (a PoseTrack sequence and its GT or
    tracks, see :func:`~posetrack.video.frames_for_posetrack`), else by order.

    ``smoothing`` (a ``SmoothingConfig``) smooths the keypoints over time before drawing, at the
    frame rate of the input.

    Returns:
        The number of frames written to ``out_path``.
    """
    from .video import frames_for_posetrack, open_frames

    check_outputs([(out_path, "overlay")], inputs=[input_path, tracks_path])
    tracks = read_posetrack(tracks_path)
    if Path(input_path).is_dir() and tracks.images and all(i.file_name for i in tracks.images):
        frames = frames_for_posetrack(input_path, tracks_path)
    else:
        frames = open_frames(input_path)
    if smoothing is not None:
        from .smoothing import smooth_tracks

        tracks = smooth_tracks(tracks, smoothing, frames.fps)
    return render_video(frames, tracks, out_path, min_joint_score=min_joint_score, progress=progress)


def _warn_size_mismatch(tracks: PoseTrackVideo, frames) -> None:
    """Warn once when the file states an image size other than the frames' (wrong clip?)."""
    for image in tracks.images:
        stated = (image.extra.get("width"), image.extra.get("height"))
        if None not in stated and tuple(stated) != tuple(frames.size):
            log.warning("the tracks file says its images are %sx%s but the frames of %s are %dx%d",
                        stated[0], stated[1], frames.path, *frames.size)
            return

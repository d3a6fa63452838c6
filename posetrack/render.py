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
    track id on a tag at the box's top-left corner (``labels``; not for untracked people). Tags
    are drawn last and placed so that none covers another or leaves the image
    (:func:`place_labels`); a tag moved away from its box gets a thin leader line to it.

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

    tags = []  # (person, text, region), drawn last so that no limb covers a tag
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
            region = _label_region(box, poses.keypoints_xy[p][shown[p]])
            if region is not None:
                tags.append((p, str(int(poses.track_ids[p])), region))
    if tags:
        sizes, pads = [], []
        for _, text, _ in tags:
            (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                                                         font_thickness)
            pad = max(2, text_h // 4)
            sizes.append((text_w + 2 * pad, text_h + baseline + 2 * pad))
            pads.append((pad, text_h))
        regions = np.array([region for _, _, region in tags], np.float64)
        corners = place_labels(regions, np.array(sizes), width, height)
        for (p, text, region), (x, y), (w, h), (pad, text_h) in zip(tags, corners, sizes, pads):
            color = track_color(poses.track_ids[p])
            if not _touches(x, y, w, h, region):  # moved away: a thin leader to the person
                cv2.line(out, _nearest_point(region, x + w / 2, y + h / 2), (int(x + w // 2), int(y + h // 2)),
                         color, 1, cv2.LINE_AA)
            _draw_tag(out, text, (int(x), int(y)), (w, h), pad, text_h, color, font_scale, font_thickness)
    return out


def _label_region(box: np.ndarray, keypoints: np.ndarray):
    """The person's box (x1, y1, x2, y2), else the extent of the drawn joints; None if neither."""
    if np.isfinite(box).all():
        return tuple(np.clip(box, -_MAX_COORD, _MAX_COORD).tolist())
    if len(keypoints):
        return (*keypoints.min(axis=0).tolist(), *keypoints.max(axis=0).tolist())
    return None


def place_labels(regions_xyxy: np.ndarray, sizes_wh: np.ndarray, width: int, height: int) -> np.ndarray:
    """Top-left corners for one tag per person such that no two tags overlap and every tag lies
    inside the image (as long as the image has room for them all).

    Tags are placed one by one, the largest person first (the nearest, whose tag is the most
    expected at its box). Each tries, in order: above its box's top-left corner, just inside it,
    above and inside the top-right corner, then stacked further above and below those; the first
    spot inside the image that overlaps no placed tag wins. Failing all, the free spot of a
    tag-sized grid nearest to the box is taken.

    Args:
        regions_xyxy: (N, 4) each person's box, pixels.
        sizes_wh: (N, 2) each tag's width and height, pixels (at most the image's).
        width, height: the image size.

    Returns:
        (N, 2) int64 top-left corners.
    """
    regions = np.asarray(regions_xyxy, np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes_wh, np.int64).reshape(-1, 2)
    corners = np.zeros((len(regions), 2), np.int64)
    placed = []  # (x1, y1, x2, y2) of placed tags, exclusive ends
    areas = (regions[:, 2] - regions[:, 0]) * (regions[:, 3] - regions[:, 1])
    for i in np.argsort(-areas, kind="stable"):
        w, h = (int(v) for v in np.minimum(sizes[i], [width, height]))
        x1, y1, x2, _ = regions[i]
        spots = []
        for k in range(8):
            for x in (x1, x2 - w):
                spots += [(x, y1 - h - k * h), (x, y1 + k * h)]
        spot = next((c for c in (_inside(x, y, w, h, width, height) for x, y in spots)
                     if not _overlaps(c, w, h, placed)), None)
        if spot is None:
            grid = [(gx, gy) for gy in range(0, height - h + 1, h) for gx in range(0, width - w + 1, max(1, w // 2))]
            grid.sort(key=lambda c: (c[0] - x1) ** 2 + (c[1] - y1) ** 2)
            spot = next((c for c in grid if not _overlaps(c, w, h, placed)), _inside(x1, y1 - h, w, h, width, height))
        corners[i] = spot
        placed.append((spot[0], spot[1], spot[0] + w, spot[1] + h))
    return corners


def _inside(x, y, w, h, width, height) -> tuple[int, int]:
    return int(np.clip(round(x), 0, max(0, width - w))), int(np.clip(round(y), 0, max(0, height - h)))


def _overlaps(corner, w, h, placed) -> bool:
    x, y = corner
    return any(x < px2 and px1 < x + w and y < py2 and py1 < y + h for px1, py1, px2, py2 in placed)


def _touches(x, y, w, h, region) -> bool:
    """The tag lies on or right next to the box's top edge."""
    x1, y1, x2, y2 = region
    return x < x2 + 2 and x1 - 2 < x + w and y - 2 <= y1 <= y + h + 2


def _nearest_point(region, x, y) -> tuple[int, int]:
    x1, y1, x2, y2 = region
    return int(np.clip(x, x1, x2)), int(np.clip(y, y1, y2))


def _draw_tag(image, text, corner, size, pad, text_h, color, font_scale, font_thickness) -> None:
    """A filled tag in the track colour holding the id, with a dark rim, text in black or white
    for contrast."""
    import cv2

    (x, y), (w, h) = corner, size
    cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), color, -1)
    cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), _OUTLINE, 1)
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

"""File formats: PoseTrack 2018 JSON (read/write), PoseTrack 2017 JSON (read), CSV (write), JSON
Lines (write, one object per frame as it is tracked) and COCO detection results (read). This is
the only module that knows their keys.

Every reader returns poses in the POSETRACK17 layout (see ``joints``), one ``Poses`` per image,
in the order the file lists its images. Absent joints (written as ``(0, 0, 0)`` in 2018 files)
have NaN coordinates; joints without a score have a NaN score.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import FormatError
from .fileio import atomic_write, read_json, write_json
from .frame import NO_TRACK, Detections, Poses
from .geometry import boxes_from_keypoints
from .joints import NUM_JOINTS, POSETRACK17

log = logging.getLogger(__name__)

MAX_TRACK_ID = 10000  # the official evaluator offsets ids by 10000 x sequence index

# PoseTrack 2017 point id -> POSETRACK17 slot. 2017 ids: 0 r_ankle, 1 r_knee, 2 r_hip, 3 l_hip,
# 4 l_knee, 5 l_ankle, 6 r_wrist, 7 r_elbow, 8 r_shoulder, 9 l_shoulder, 10 l_elbow, 11 l_wrist,
# 12 head_bottom (neck), 13 nose, 14 head_top.
SLOT_OF_2017_ID = (16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9, 1, 0, 2)


@dataclass
class ImageInfo:
    """One image (frame) entry of a PoseTrack file.

    Attributes:
        image_id: the image id (2018 files); None for 2017 files, which have none.
        file_name: path of the frame as the file names it.
        is_labeled: whether the frame carries ground truth (True when the file does not say).
        ignore_regions: polygons, each (K, 2) float64 pixels, whose joints are not evaluated.
        extra: other keys of the image entry (vid_id, nframes, frame_id, width, ...), kept so a
            file read and written again keeps them.
    """

    image_id: int | None
    file_name: str
    is_labeled: bool = True
    ignore_regions: tuple = ()
    extra: dict = field(default_factory=dict)


@dataclass
class PoseTrackVideo:
    """The contents of one PoseTrack file (one video sequence).

    Attributes:
        images: one entry per frame, in file order.
        poses: one ``Poses`` per frame (POSETRACK17 layout), aligned with ``images``.
        head_boxes_xyxy: one (N, 4) float32 array per frame, aligned with ``poses``; NaN rows
            where a person has no head box (predictions never have one).
        format: "posetrack18" or "posetrack17".
        info: the file's top-level ``info`` object (COCO's metadata key); ``posetrack run``
            stores its input, settings and per-stage timing there. Empty when the file has none.
    """

    images: list
    poses: list
    head_boxes_xyxy: list
    format: str = "posetrack18"
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if not (len(self.images) == len(self.poses) == len(self.head_boxes_xyxy)):
            raise ValueError("images, poses and head_boxes_xyxy must have the same length")

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class PoseTrackTable:
    """The contents of one PoseTrack file as flat arrays, one row per person (annotation), every
    number as the float64 the JSON holds (what the evaluator reads; ``PoseTrackVideo`` is the
    per-frame float32 view of the same file).

    Attributes:
        images: one entry per frame, in file order.
        frames: (N,) int64, the index in ``images`` of each person's frame; rows in file order.
        keypoints_xy: (N, 17, 2) float64, pixels (POSETRACK17 layout); NaN for an absent joint
            (``(0, 0, 0)`` in 2018 files, a missing point in 2017 files).
        keypoint_scores: (N, 17) float64; NaN where the file gives no score.
        track_ids: (N,) int64; -1 where the file gives none.
        boxes_xyxy: (N, 4) float64, pixels; NaN rows where the file gives no box.
        box_scores: (N,) float64; NaN where the file gives none.
        head_boxes_xyxy: (N, 4) float64, pixels (x2 = x + w as the official evaluator computes
            it); NaN rows where a person has no head box.
        format: "posetrack18" or "posetrack17".
        info: the file's top-level ``info`` object (see ``PoseTrackVideo``).
    """

    images: list
    frames: np.ndarray
    keypoints_xy: np.ndarray
    keypoint_scores: np.ndarray
    track_ids: np.ndarray
    boxes_xyxy: np.ndarray
    box_scores: np.ndarray
    head_boxes_xyxy: np.ndarray
    format: str = "posetrack18"
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def frame_slices(self) -> list:
        """One slice of rows per image, assuming rows are grouped by frame (as the readers sort them)."""
        ends = np.cumsum(np.bincount(self.frames, minlength=len(self.images)))
        starts = np.concatenate([[0], ends[:-1]])
        return [slice(int(a), int(b)) for a, b in zip(starts, ends)]


# ---------------------------------------------------------------------------------------------
# Reading


def read_posetrack(path) -> PoseTrackVideo:
    """Read a PoseTrack 2018 or 2017 JSON file (the format is detected from its keys)."""
    return video_from_table(read_posetrack_table(path))


def read_posetrack_table(path) -> PoseTrackTable:
    """Read a PoseTrack 2018 (PoseTrack21 too) or 2017 JSON file as float64 arrays, one row per
    person, grouped by frame in file order (the format is detected from its keys)."""
    data = read_json(path)
    if isinstance(data, dict) and "annolist" in data:
        return _parse_2017(path, data)
    if isinstance(data, dict) and "images" in data and "annotations" in data:
        return _parse_2018(path, data)
    raise FormatError(path, "not a PoseTrack file: expected 'images' and 'annotations' (2018) "
                            "or 'annolist' (2017) at the top level")


def video_from_table(table: PoseTrackTable) -> PoseTrackVideo:
    """The per-frame view: one float32 ``Poses`` per image; a person without a box gets the
    extent of its joints."""
    tight = boxes_from_keypoints(table.keypoints_xy, enlarge=0.0)
    boxes = np.where(np.isnan(table.boxes_xyxy).all(axis=1, keepdims=True), tight, table.boxes_xyxy)
    poses, heads = [], []
    for rows in table.frame_slices():
        poses.append(Poses(boxes[rows], table.box_scores[rows], table.keypoints_xy[rows],
                           table.keypoint_scores[rows], table.track_ids[rows])
                     if rows.stop > rows.start else Poses.empty())
        heads.append(table.head_boxes_xyxy[rows].astype(np.float32))
    return PoseTrackVideo(table.images, poses, heads, table.format, table.info)


def _parse_2018(path, data) -> PoseTrackTable:
    images_json, annotations_json = data["images"], data["annotations"]
    if not isinstance(images_json, list) or not isinstance(annotations_json, list):
        raise FormatError(path, "'images' and 'annotations' must be lists")
    images, row_of_id = [], {}
    for i, entry in enumerate(images_json):
        if not isinstance(entry, dict) or "id" not in entry:
            raise FormatError(path, f"images[{i}] has no 'id'")
        image_id = _int(path, f"images[{i}].id", entry["id"])
        if image_id in row_of_id:
            raise FormatError(path, f"image id {image_id} appears twice in 'images'")
        row_of_id[image_id] = i
        with _entry(path, f"images[{i}]"):
            regions = _regions_2018(path, i, entry.get("ignore_regions_x") or [],
                                    entry.get("ignore_regions_y") or [])
        known = {"id", "file_name", "is_labeled", "ignore_regions_x", "ignore_regions_y"}
        images.append(ImageInfo(
            image_id=image_id,
            file_name=str(entry.get("file_name", "")),
            is_labeled=bool(entry.get("is_labeled", True)),
            ignore_regions=regions,
            extra={k: v for k, v in entry.items() if k not in known},
        ))

    columns = _people_2018_batch(annotations_json, row_of_id)
    if columns is None:  # something unusual: read person by person, which names the problem
        columns = _people_2018_each(path, annotations_json, row_of_id)
    table = _table(images, columns, "posetrack18")
    info = data.get("info")
    table.info = info if isinstance(info, dict) else {}
    return table


def _table(images, columns, format) -> PoseTrackTable:
    """(frames, keypoints, scores, track ids, boxes, box scores, head boxes), rows in file order
    -> PoseTrackTable with rows grouped by frame (stable)."""
    frames = columns[0]
    order = np.argsort(frames, kind="stable")
    if np.any(order != np.arange(len(order))):
        columns = tuple(c[order] for c in columns)
    return PoseTrackTable(images, *columns, format=format)


def _people_2018_each(path, annotations_json, row_of_id):
    """-> the columns of ``_table``, reading one annotation at a time."""
    frames, people = [], []
    for a, ann in enumerate(annotations_json):
        if not isinstance(ann, dict) or "image_id" not in ann or "keypoints" not in ann:
            raise FormatError(path, f"annotations[{a}] needs 'image_id' and 'keypoints'")
        image_id = _int(path, f"annotations[{a}].image_id", ann["image_id"])
        if image_id not in row_of_id:
            raise FormatError(path, f"annotations[{a}] refers to image id {image_id}, "
                                    "which is not in 'images'")
        frames.append(row_of_id[image_id])
        with _entry(path, f"annotations[{a}]"):
            people.append(_person_2018(path, a, ann))
    return _columns(frames, people)


def _columns(frames, people):
    """Per-person tuples (box, box score, keypoints, scores, track id, head) -> the columns of
    ``_table``."""
    n = len(people)
    if not n:
        return (np.zeros(0, np.int64), np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS)),
                np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)))
    boxes, box_scores, keypoints, scores, track_ids, heads = zip(*people)
    return (np.array(frames, np.int64), np.stack(keypoints), np.stack(scores),
            np.array(track_ids, np.int64), np.stack(boxes), np.array(box_scores, np.float64),
            np.stack(heads))


def _people_2018_batch(annotations_json, row_of_id):
    """-> the columns of ``_table``, all annotations converted at once with numpy (large files
    read about 10x faster than person by person), or None when any annotation is unusual
    (missing keys, non-integer ids, ragged or non-numeric arrays); ``_people_2018_each`` then reads
    the file and names the problem. Both give identical results on files they both accept."""
    n = len(annotations_json)
    try:
        frames = np.array([row_of_id[_plain_int(ann["image_id"])] for ann in annotations_json], np.int64)
        triples = np.array([ann["keypoints"] for ann in annotations_json], np.float64)
        triples = triples.reshape(n, NUM_JOINTS, 3)
        scores = _optional_rows([ann.get("scores") or [] for ann in annotations_json], NUM_JOINTS)
        track_ids = np.array([_plain_int(NO_TRACK if ann.get("track_id") is None else ann["track_id"])
                              for ann in annotations_json], np.int64).reshape(n)
        boxes = _xywh_to_xyxy(_optional_rows([ann.get("bbox") for ann in annotations_json], 4))
        heads = _xywh_to_xyxy(_optional_rows([ann.get("bbox_head") for ann in annotations_json], 4))
        box_scores = np.array([np.nan if ann.get("score") is None else ann["score"]
                               for ann in annotations_json], np.float64).reshape(n)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    keypoints = triples[:, :, :2].copy()
    keypoints[(triples == 0).all(axis=2)] = np.nan  # (0, 0, 0) is the only "absent" marker
    return frames, keypoints, scores, track_ids, boxes, box_scores, heads


def _plain_int(value) -> int:
    if type(value) is not int:
        raise TypeError("not a plain integer")
    return value


def _optional_rows(values, size) -> np.ndarray:
    """A list of None / [] / `size` numbers -> (N, size) float64, NaN rows where absent."""
    out = np.full((len(values), size), np.nan, np.float64)
    given = [i for i, v in enumerate(values) if v is not None and not (isinstance(v, list) and not v)]
    if given:
        rows = np.array([values[i] for i in given], np.float64)
        if rows.shape != (len(given), size):
            raise ValueError(f"expected {size} values per row")
        out[given] = rows
    return out


def _xywh_to_xyxy(boxes) -> np.ndarray:
    """(N, 4) xywh -> xyxy (x2 = x + w, as the official evaluator computes it)."""
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def _person_2018(path, a, ann):
    """-> (box_xyxy, box_score, keypoints (17,2), scores (17,), track_id, head_xyxy)."""
    where = f"annotations[{a}] (image id {ann['image_id']})"
    flat = _numbers(path, where, "keypoints", ann["keypoints"])
    if flat.size != NUM_JOINTS * 3:
        raise FormatError(path, f"{where}: 'keypoints' has {flat.size} values, expected "
                                f"{NUM_JOINTS * 3} ({NUM_JOINTS} joints x (x, y, visibility))")
    triples = flat.reshape(NUM_JOINTS, 3)
    keypoints = triples[:, :2].copy()
    keypoints[(triples == 0).all(axis=1)] = np.nan  # (0, 0, 0) is the only "absent" marker
    scores = _numbers(path, where, "scores", ann.get("scores") or [])
    if scores.size == 0:
        scores = np.full(NUM_JOINTS, np.nan)
    elif scores.size != NUM_JOINTS:
        raise FormatError(path, f"{where}: 'scores' has {scores.size} values, expected {NUM_JOINTS}")
    track_id = ann.get("track_id")
    track_id = NO_TRACK if track_id is None else _int(path, f"{where}.track_id", track_id)
    box = _xywh_box(path, where, "bbox", ann.get("bbox"))
    head = _xywh_box(path, where, "bbox_head", ann.get("bbox_head"))
    score = ann.get("score")
    score = np.nan if score is None else float(_numbers(path, where, "score", [score])[0])
    return box, score, keypoints, scores, track_id, head


def _parse_2017(path, data) -> PoseTrackTable:
    annolist = data["annolist"]
    if not isinstance(annolist, list):
        raise FormatError(path, "'annolist' must be a list")
    images, frames, people = [], [], []
    for i, entry in enumerate(annolist):
        where = f"annolist[{i}]"
        if not isinstance(entry, dict) or "image" not in entry:
            raise FormatError(path, f"{where} has no 'image'")
        with _entry(path, where):
            name = _unwrap(_unwrap(entry["image"]).get("name", "")) if entry["image"] else ""
            regions = []
            for r, region in enumerate(entry.get("ignore_regions") or []):
                points = region.get("point", []) if isinstance(region, dict) else []
                xy = [(_unwrap(p["x"]), _unwrap(p["y"])) for p in points]
                regions.append(_numbers(path, f"{where}.ignore_regions[{r}]", "point", xy).reshape(-1, 2))
            is_labeled = entry.get("is_labeled")
            extra = {"imgnum": _unwrap(entry["imgnum"])} if "imgnum" in entry else {}
            images.append(ImageInfo(None, str(name), True if is_labeled is None else bool(_unwrap(is_labeled)),
                                    tuple(regions), extra))
        for r, rect in enumerate(entry.get("annorect") or []):
            frames.append(i)
            with _entry(path, f"{where}.annorect[{r}]"):
                people.append(_person_2017(path, f"{where}.annorect[{r}]", rect))
    return _table(images, _columns(frames, people), "posetrack17")


def _person_2017(path, where, rect):
    keypoints = np.full((NUM_JOINTS, 2), np.nan)
    scores = np.full(NUM_JOINTS, np.nan)
    annopoints = rect.get("annopoints") or []
    points = _unwrap(annopoints).get("point", []) if annopoints else []
    slots, values = [], []  # converted together: one array per person, not one per point
    for p in points or []:
        joint_id = _int(path, f"{where} point id", _unwrap(p.get("id")))
        if not 0 <= joint_id < len(SLOT_OF_2017_ID):
            raise FormatError(path, f"{where}: point id {joint_id} is not a PoseTrack 2017 joint (0-14)")
        slots.append(SLOT_OF_2017_ID[joint_id])
        values.append((_unwrap(p["x"]), _unwrap(p["y"]), _unwrap(p["score"]) if "score" in p else None))
    if slots:
        numbers = _numbers(path, where, "x/y/score", values).reshape(len(slots), 3)
        keypoints[slots] = numbers[:, :2]
        scores[slots] = numbers[:, 2]  # None (no score) became NaN
    track_id = rect.get("track_id")
    track_id = NO_TRACK if track_id is None else _int(path, f"{where}.track_id", _unwrap(track_id))
    if all(k in rect for k in ("x1", "y1", "x2", "y2")):
        head = _numbers(path, where, "x1/y1/x2/y2", [_unwrap(rect[k]) for k in ("x1", "y1", "x2", "y2")])
    else:
        head = np.full(4, np.nan)
    score = rect.get("score")
    score = np.nan if score is None else float(_unwrap(score))
    return np.full(4, np.nan), score, keypoints, scores, track_id, head


def _regions_2018(path, i, xs, ys):
    if len(xs) != len(ys):
        raise FormatError(path, f"images[{i}]: ignore_regions_x has {len(xs)} polygons, "
                                f"ignore_regions_y has {len(ys)}")
    regions = []
    for r, (x, y) in enumerate(zip(xs, ys)):
        if len(x) != len(y):
            raise FormatError(path, f"images[{i}]: ignore region {r} has {len(x)} x and {len(y)} y values")
        regions.append(_numbers(path, f"images[{i}]", f"ignore region {r}", [x, y]).T.copy())
    return tuple(regions)


@contextlib.contextmanager
def _entry(path, where):
    """Turn a type surprise inside one entry (a list where an object belongs, text where a
    number does, ...) into a FormatError naming the file and the entry."""
    try:
        yield
    except FormatError:
        raise
    except (TypeError, AttributeError, KeyError, ValueError, IndexError, OverflowError) as err:
        detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise FormatError(path, f"{where} does not have the expected structure ({detail})") from None


def _unwrap(value):
    """2017 files wrap scalars in one-element lists: [5] -> 5."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def _int(path, where, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not math.isfinite(value)) or value != int(value):
        raise FormatError(path, f"{where} must be an integer, got {value!r}")
    return int(value)


def _numbers(path, where, key, value) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise FormatError(path, f"{where}: '{key}' must hold numbers") from None
    return array.reshape(-1) if array.ndim <= 1 else array


def _xywh_box(path, where, key, value) -> np.ndarray:
    if value is None or (isinstance(value, list) and not value):
        return np.full(4, np.nan)
    box = _check_len(path, where, key, _numbers(path, where, key, value), 4)
    return _xywh_to_xyxy(box.reshape(1, 4))[0]


def _check_len(path, where, key, array, n):
    if array.size != n:
        raise FormatError(path, f"{where}: '{key}' has {array.size} values, expected {n}")
    return array


def _tight_box(keypoints) -> np.ndarray:
    """(J, 2) -> (4,) the extent of one person's present joints; NaN without any."""
    return boxes_from_keypoints(keypoints[None], enlarge=0.0)[0]


# ---------------------------------------------------------------------------------------------
# Checks


def check_track_ids(path, video: PoseTrackVideo, allow_unassigned: bool = False) -> None:
    """Raise FormatError unless every frame's track ids are unique integers in [0, 10000)."""
    if not video.poses:
        return
    ids = np.concatenate([poses.track_ids for poses in video.poses])
    frames = np.repeat(np.arange(len(video.poses)), [len(poses) for poses in video.poses])
    check_track_id_rows(path, video.images, frames, ids, allow_unassigned)


def check_track_id_rows(path, images, frames, ids, allow_unassigned: bool = False,
                        max_id: int | None = MAX_TRACK_ID) -> None:
    """:func:`check_track_ids` on one row per person: ``frames`` (N,) index into ``images``,
    ``ids`` (N,) track ids (a ``PoseTrackTable``'s ``frames`` and ``track_ids``); ``max_id``: the
    first id not allowed (None: no upper bound)."""
    if allow_unassigned:
        frames, ids = frames[ids != NO_TRACK], ids[ids != NO_TRACK]
    bad = np.flatnonzero((ids < 0) | (ids >= (max_id if max_id is not None else np.iinfo(np.int64).max)))
    order = np.lexsort((ids, frames))
    repeated = (frames[order][1:] == frames[order][:-1]) & (ids[order][1:] == ids[order][:-1])
    duplicate = order[1:][repeated]
    # report the first frame with a problem, as a frame-by-frame check would
    first_bad = frames[bad[0]] if bad.size else len(images)
    first_dup = frames[duplicate].min() if duplicate.size else len(images)
    if min(first_bad, first_dup) == len(images):
        return
    k = int(min(first_bad, first_dup))
    image = images[k]
    frame = image.file_name or image.image_id
    if first_bad <= first_dup:
        allowed = f"0..{max_id - 1}" if max_id is not None else "0 and above"
        raise FormatError(path, f"frame {frame}: track id {int(ids[bad[0]])} is outside {allowed}")
    in_frame = duplicate[frames[duplicate] == k]
    raise FormatError(path, f"frame {frame}: track id {int(ids[in_frame].min())} is used "
                            "by more than one person")


# ---------------------------------------------------------------------------------------------
# Writing


def _categories():
    return [{
        "supercategory": "person", "id": 1, "name": "person",
        "keypoints": list(POSETRACK17.joints),
        "skeleton": [[a + 1, b + 1] for a, b in POSETRACK17.skeleton],
    }]


def write_posetrack18(path, video: PoseTrackVideo) -> None:
    """Write a PoseTrack 2018 file the official evaluator reads, atomically.

    Track ids must be unique per frame and below 10000 (-1, "unassigned", is allowed so untracked
    poses can be stored). Absent joints are written as (0, 0, 0) with score 0; a person whose joint
    scores are all unknown gets ``"scores": []``. ``video.info``, when not empty, is written as
    the top-level ``info`` object (the evaluators read only images, annotations and categories).
    """
    check_track_ids(path, video, allow_unassigned=True)
    images, annotations = [], []
    for index, (image, poses, heads) in enumerate(zip(video.images, video.poses, video.head_boxes_xyxy)):
        image_id = index if image.image_id is None else image.image_id
        entry = {"id": image_id, "file_name": image.file_name, "is_labeled": image.is_labeled}
        entry.update(image.extra)
        if image.ignore_regions:
            entry["ignore_regions_x"] = [r[:, 0].round(2).tolist() for r in image.ignore_regions]
            entry["ignore_regions_y"] = [r[:, 1].round(2).tolist() for r in image.ignore_regions]
        images.append(entry)
        for person in range(len(poses)):
            annotations.append(_annotation_2018(image_id, len(annotations), poses[person], heads[person]))
    document = {"images": images, "annotations": annotations, "categories": _categories()}
    if video.info:
        document["info"] = video.info
    write_json(path, document)


def _annotation_2018(image_id, serial, person: Poses, head) -> dict:
    """One person as a 2018 annotation. Only finite numbers are written (strict JSON): a joint
    with a non-finite coordinate is absent, a non-finite score 0, a non-finite box left out."""
    keypoints = person.keypoints_xy[0].astype(np.float64)
    present = np.isfinite(keypoints).all(axis=1)
    triples = np.zeros((len(keypoints), 3), np.float64)
    triples[present, :2] = keypoints[present]
    triples[present, 2] = 1
    scores = person.keypoint_scores[0].astype(np.float64)
    box = person.boxes_xyxy[0].astype(np.float64)
    if not np.isfinite(box).all():
        box = _tight_box(np.where(present[:, None], keypoints, np.nan))
    ann = {
        "id": serial,
        "image_id": image_id,
        "category_id": 1,
        "track_id": int(person.track_ids[0]),
        "keypoints": triples.round(2).ravel().tolist(),
        "scores": [] if not np.isfinite(scores[present]).any() and present.any()
        else np.where(present & np.isfinite(scores), scores, 0.0).round(5).tolist(),
    }
    for key, xyxy in (("bbox", box), ("bbox_head", np.asarray(head, np.float64))):
        xywh = np.array([xyxy[0], xyxy[1], xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]])
        if np.isfinite(xywh).all():
            ann[key] = [round(float(v), 2) for v in xywh]
    if math.isfinite(person.box_scores[0]):
        ann["score"] = round(float(person.box_scores[0]), 5)
    return ann


CSV_LAYOUTS = ("people", "joints")


def write_csv(path, video: PoseTrackVideo, layout: str = "people") -> None:
    """Write tracks as CSV, atomically.

    layout "people": one row per person per frame: frame, image_id, track_id, box (x1, y1, x2, y2),
    box_score, then x, y, score for each of the 17 joints (empty cells for an absent joint).
    layout "joints": one row per present joint: frame, image_id, track_id, joint, x, y, score.
    """
    if layout not in CSV_LAYOUTS:
        raise ValueError(f"layout must be one of {CSV_LAYOUTS}, got {layout!r}")
    names = POSETRACK17.joints
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if layout == "people":
            writer.writerow(["frame", "image_id", "track_id", "x1", "y1", "x2", "y2", "box_score"]
                            + [f"{n}_{c}" for n in names for c in ("x", "y", "score")])
        else:
            writer.writerow(["frame", "image_id", "track_id", "joint", "x", "y", "score"])
        for frame, (image, poses) in enumerate(zip(video.images, video.poses)):
            image_id = frame if image.image_id is None else image.image_id
            for p in range(len(poses)):
                head = [frame, image_id, int(poses.track_ids[p])]
                xy, scores = poses.keypoints_xy[p], poses.keypoint_scores[p]
                if layout == "people":
                    cells = [_cell(v) for v in poses.boxes_xyxy[p]] + [_cell(poses.box_scores[p])]
                    for j in range(len(names)):
                        cells += ["", "", ""] if np.isnan(xy[j]).any() else \
                            [_cell(xy[j, 0]), _cell(xy[j, 1]), _cell(scores[j], 5)]
                    writer.writerow(head + cells)
                else:
                    for j in np.flatnonzero(~np.isnan(xy).any(axis=1)):
                        writer.writerow(head + [names[j], _cell(xy[j, 0]), _cell(xy[j, 1]),
                                                _cell(scores[j], 5)])


def _cell(value, digits: int = 2) -> str:
    return "" if not math.isfinite(value) else f"{float(value):.{digits}f}"


TRACK_FORMATS = ("posetrack18", "csv", "csv-joints", "jsonl")
STDOUT = "-"  # as an output path: standard output (JSON Lines only)


def tracks_format(path, format: str | None = None) -> str:
    """The format of a tracks output: ``format`` if given, else from the extension (.json,
    .csv, .jsonl; ``-``, standard output, is JSON Lines).

    Raises:
        FormatError: no format given and the extension names none; standard output with a format
            other than JSON Lines.
    """
    if str(path) == STDOUT:
        if format not in (None, "jsonl"):
            raise FormatError("--out -", f"standard output takes JSON Lines only, not {format}")
        return "jsonl"
    format = format or {".json": "posetrack18", ".csv": "csv", ".jsonl": "jsonl"}.get(Path(path).suffix.lower())
    if format not in TRACK_FORMATS:
        raise FormatError(path, "cannot tell the output format from the extension; use .json, "
                                ".csv or .jsonl, or name it (posetrack18, csv, csv-joints, jsonl)")
    return format


def frame_indices(video: PoseTrackVideo) -> list[int]:
    """The index in the input video of each image of ``video``: the ``frame_id`` that ``posetrack
    run`` wrote (a run over a frame range starts past 0; its files have ``info.frame_range``),
    else the image's position in the file (other tools' ``frame_id`` means something else, e.g.
    PoseTrack's 1SSSSSSFFFF ids)."""
    if not video.info.get("frame_range"):
        return list(range(len(video.images)))
    return [int(image.extra.get("frame_id", k)) for k, image in enumerate(video.images)]


def write_tracks(path, video: PoseTrackVideo, format: str | None = None) -> str:
    """Write ``video`` in the format named, or chosen by the extension (.json, .csv, .jsonl).

    Returns the format used: "posetrack18", "csv" (people layout), "csv-joints" or "jsonl"
    (frame indices and times from the images' ``frame_id`` and the ``info`` fps when present).
    """
    format = tracks_format(path, format)
    if format == "posetrack18":
        write_posetrack18(path, video)
    elif format == "jsonl":
        fps = video.info.get("fps") if isinstance(video.info.get("fps"), (int, float)) else None
        with JsonLinesWriter(path) as writer:
            for frame, poses in zip(frame_indices(video), video.poses):
                writer.write(frame, None if fps is None else frame / fps, poses)
    else:
        write_csv(path, video, "joints" if format == "csv-joints" else "people")
    return format


# ---------------------------------------------------------------------------------------------
# JSON Lines


def jsonl_record(frame: int, time_s: float | None, poses: Poses, wall_time: float | None = None) -> dict:
    """One frame's JSON Lines object (the schema is in the README, "Output files").

    ``{"frame", "time", ["wall_time",] "people": [{"track_id", "box_xywh", "box_score",
    "keypoints": [[x, y, score] or null per joint]}]}``; numbers unknown (NaN) are null.
    """
    record = {"frame": int(frame), "time": None if time_s is None else round(float(time_s), 4)}
    if wall_time is not None:
        record["wall_time"] = round(float(wall_time), 3)
    people = []
    for p in range(len(poses)):
        x1, y1, x2, y2 = (float(v) for v in poses.boxes_xyxy[p])
        box = None if any(math.isnan(v) for v in (x1, y1, x2, y2)) else \
            [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]
        keypoints = [None if np.isnan(xy).any() else
                     [round(float(xy[0]), 2), round(float(xy[1]), 2), _json_number(score, 4)]
                     for xy, score in zip(poses.keypoints_xy[p], poses.keypoint_scores[p])]
        people.append({"track_id": int(poses.track_ids[p]), "box_xywh": box,
                       "box_score": _json_number(poses.box_scores[p], 4), "keypoints": keypoints})
    record["people"] = people
    return record


def _json_number(value, digits: int):
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


class JsonLinesWriter:
    """Write one JSON object per frame, each line written and flushed as soon as it is given, so
    another program can follow the file (or standard output, path ``-``) while it grows.

    With ``in_place`` (the default), unlike the other outputs, the file is written under its own
    name, not renamed at the end: a stopped run leaves every complete line it wrote. Without it,
    the lines go to a temporary file renamed into place when the ``with`` block ends without an
    error (and removed on an error). Use as a context manager.
    """

    def __init__(self, path, in_place: bool = True):
        self.path = str(path)
        self.in_place = in_place or self.path == STDOUT
        self.lines_written = 0
        self._handle = None
        self._atomic = None

    def __enter__(self) -> "JsonLinesWriter":
        if self.path == STDOUT:
            self._handle = sys.stdout
        elif not self.in_place:
            self._atomic = atomic_write(self.path, "w", encoding="utf-8")
            self._handle = self._atomic.__enter__()
        else:
            folder = Path(self.path).parent
            if not folder.is_dir():
                raise FormatError(self.path, f"the output folder {folder} does not exist")
            self._handle = open(self.path, "w", encoding="utf-8")
        return self

    def write(self, frame: int, time_s: float | None, poses: Poses, wall_time: float | None = None) -> None:
        self._handle.write(json.dumps(jsonl_record(frame, time_s, poses, wall_time),
                                      separators=(",", ":"), allow_nan=False) + "\n")
        self._handle.flush()
        self.lines_written += 1

    def __exit__(self, *exc) -> None:
        handle, self._handle = self._handle, None
        if self._atomic is not None:
            self._atomic.__exit__(*exc)
        elif handle is not None and handle is not sys.stdout:
            handle.close()


# ---------------------------------------------------------------------------------------------
# Detections (COCO detection results)


# A detections file may have up to this many bad entries (or this fraction of its entries, if
# more) skipped with one warning; more than that and the file is refused: it is broken or not
# what it claims to be.
MAX_SKIPPED_ENTRIES = 3
MAX_SKIPPED_FRACTION = 0.01


def read_detections(path, person_category: int = 1) -> dict[int, Detections]:
    """Read a COCO detection-results JSON: a list of {image_id, category_id, bbox [x, y, w, h],
    score}. Returns the person boxes grouped by image id.

    Every entry is checked and a problem names the file and the entry:

    * not an object, no ``image_id``/``bbox``/``score``, an ``image_id`` that is not an integer,
      a ``bbox`` that is not 4 numbers: the file is refused (not a detections file);
    * a box that is not finite or has no positive width and height, a score that is not a finite
      number in [0, 1]: the entry is skipped, with one warning counting them, when there are few
      (at most ``MAX_SKIPPED_ENTRIES`` or ``MAX_SKIPPED_FRACTION`` of the entries); more and
      the file is refused;
    * entries of other categories than ``person_category`` are skipped with one warning naming
      the categories (an entry without ``category_id`` counts as a person).
    """
    data = read_json(path)
    if not isinstance(data, list):
        raise FormatError(path, "expected a JSON list of {image_id, category_id, bbox, score}")
    grouped: dict[int, list] = {}
    bad: list[str] = []
    other_categories: dict = {}
    for i, det in enumerate(data):
        if not isinstance(det, dict) or not {"image_id", "bbox", "score"} <= det.keys():
            raise FormatError(path, f"entry {i} needs 'image_id', 'bbox' and 'score'")
        category = det.get("category_id", person_category)
        if category != person_category:
            key = category if isinstance(category, (int, float, str)) and not isinstance(category, bool) \
                else repr(category)
            other_categories[key] = other_categories.get(key, 0) + 1
            continue
        image_id = _int(path, f"entry {i} image_id", det["image_id"])
        box = _xywh_box(path, f"entry {i}", "bbox", det["bbox"])
        if isinstance(det["score"], bool) or not isinstance(det["score"], (int, float)):
            raise FormatError(path, f"entry {i}: 'score' must be a number, got {det['score']!r}")
        score = float(det["score"])
        problem = _detection_problem(det["bbox"], box, score)
        if problem:
            bad.append(f"entry {i} (image id {image_id}): {problem}")
            continue
        grouped.setdefault(image_id, []).append((box, score))
    if bad:
        allowed = max(MAX_SKIPPED_ENTRIES, int(MAX_SKIPPED_FRACTION * len(data)))
        if len(bad) > allowed:
            raise FormatError(path, f"{len(bad)} of {len(data)} entries are not valid detections, "
                                    f"e.g. {bad[0]}")
        log.warning(
            "%s: skipped %d invalid entr%s of %d: %s%s", path, len(bad), "y" if len(bad) == 1 else "ies",
            len(data), "; ".join(bad[:3]), "; ..." if len(bad) > 3 else "")
    if other_categories:
        shown = ", ".join(f"{k} ({n})" for k, n in list(other_categories.items())[:5])
        log.warning(
            "%s: skipped %d entries whose category_id is not the person category %s: %s%s", path,
            sum(other_categories.values()), person_category, shown,
            ", ..." if len(other_categories) > 5 else "")
    return {
        image_id: Detections(np.stack([b for b, _ in rows]), np.array([s for _, s in rows]))
        for image_id, rows in grouped.items()
    }


def _detection_problem(bbox, box_xyxy, score) -> str:
    """Why one detection is unusable, or "" when it is fine."""
    if not np.isfinite(box_xyxy).all():
        return f"bbox {bbox} is not finite"
    if not (box_xyxy[2] > box_xyxy[0] and box_xyxy[3] > box_xyxy[1]):
        return f"bbox {bbox} has no positive width and height"
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        return f"score {score!r} is not in [0, 1]"
    return ""


def video_from_frames(file_names: Sequence[str], poses: Sequence[Poses],
                      image_ids: Sequence[int] | None = None) -> PoseTrackVideo:
    """Build a PoseTrackVideo for frames that have no PoseTrack image entries (e.g. a video)."""
    ids = list(range(len(file_names))) if image_ids is None else list(image_ids)
    images = [ImageInfo(i, name, True, (), {"frame_id": i, "nframes": len(file_names)})
              for i, name in zip(ids, file_names)]
    heads = [np.full((len(p), 4), np.nan, np.float32) for p in poses]
    return PoseTrackVideo(images, list(poses), heads)

"""Property-based tests of every file reader: whatever a file holds, a reader gives a valid result
or raises the project's own error (PosetrackError, one line naming the file), never another
exception. Also the writers: any valid frame data is written and reads back, or is refused.

Inputs are drawn three ways: arbitrary bytes, arbitrary JSON/YAML values, and files shaped like
the real format with values replaced by junk (wrong types, NaN, huge numbers, wrong lengths),
which reach deeper than random values. Example counts keep all of this under a minute in CI.
"""

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posetrack.errors import PosetrackError
from posetrack.formats import (PoseTrackVideo, read_detections, read_posetrack, read_posetrack_table,
                               video_from_frames, write_tracks)
from posetrack.frame import Detections, Poses

# the nested strategies' descriptions are long; hypothesis warns about their size
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------------------
# Strategies

finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
odd_numbers = st.one_of(st.floats(width=64), st.integers(-2**70, 2**70), st.just(-1), st.just(0))
scalars = st.one_of(st.none(), st.booleans(), odd_numbers, st.text(max_size=5))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=20)


def sometimes(good, junk=json_values):
    """Mostly the right kind of value, sometimes anything."""
    return st.one_of(good, good, good, junk)


def numbers(n):
    return st.lists(sometimes(finite, odd_numbers), min_size=n, max_size=n)


box = sometimes(numbers(4), st.lists(odd_numbers, max_size=6))
keypoints = sometimes(numbers(51), st.lists(odd_numbers, max_size=60))
scores = sometimes(numbers(17), st.lists(odd_numbers, max_size=20))
ids = sometimes(st.integers(0, 5), odd_numbers)


def optional(strategy):
    return st.one_of(st.just(None), strategy)


annotation_2018 = st.fixed_dictionaries(
    {"image_id": ids, "keypoints": keypoints},
    optional={"scores": scores, "track_id": ids, "bbox": box, "bbox_head": box, "score": sometimes(finite, odd_numbers),
              "category_id": ids})
image_2018 = st.fixed_dictionaries(
    {"id": ids}, optional={"file_name": sometimes(st.text(max_size=8)), "is_labeled": sometimes(st.booleans()),
                           "ignore_regions_x": st.lists(st.lists(odd_numbers, max_size=4), max_size=2),
                           "ignore_regions_y": st.lists(st.lists(odd_numbers, max_size=4), max_size=2)})
posetrack_2018 = st.fixed_dictionaries({
    "images": sometimes(st.lists(image_2018, max_size=5)),
    "annotations": sometimes(st.lists(annotation_2018, max_size=6))})

wrapped = lambda s: st.one_of(s, st.lists(s, min_size=1, max_size=1))  # noqa: E731  2017 wraps scalars
point_2017 = st.fixed_dictionaries({"id": wrapped(ids), "x": wrapped(sometimes(finite)), "y": wrapped(sometimes(finite))},
                                   optional={"score": wrapped(sometimes(finite))})
rect_2017 = st.fixed_dictionaries({}, optional={
    "annopoints": sometimes(st.lists(st.fixed_dictionaries({"point": sometimes(st.lists(point_2017, max_size=4))}),
                                     max_size=1)),
    "track_id": wrapped(ids), "x1": wrapped(sometimes(finite)), "y1": wrapped(finite),
    "x2": wrapped(finite), "y2": wrapped(finite), "score": wrapped(sometimes(finite))})
entry_2017 = st.fixed_dictionaries(
    {"image": sometimes(st.lists(st.fixed_dictionaries({"name": sometimes(st.text(max_size=6))}), max_size=1))},
    optional={"annorect": sometimes(st.lists(rect_2017, max_size=3)), "is_labeled": wrapped(sometimes(st.booleans())),
              "imgnum": wrapped(ids),
              "ignore_regions": st.lists(st.fixed_dictionaries({"point": st.lists(point_2017, max_size=3)}), max_size=1)})
posetrack_2017 = st.fixed_dictionaries({"annolist": sometimes(st.lists(entry_2017, max_size=4))})

detection = st.fixed_dictionaries(
    {"image_id": ids, "bbox": box, "score": sometimes(st.floats(0, 1), odd_numbers)},
    optional={"category_id": sometimes(st.just(1), ids)})
detections_file = st.lists(sometimes(detection), max_size=12)


def _write(data, suffix=".json") -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="fuzz-")
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    return Path(name)


def _json_file(data) -> Path:
    return _write(json.dumps(data))  # NaN and Infinity as Python writes them: also seen in the wild


def _reads_or_refuses(reader, path, check):
    try:
        result = reader(path)
    except PosetrackError as err:
        assert str(path) in str(err), f"the error does not name the file: {err}"
        return None
    finally:
        path.unlink()
    check(result)
    return result


# ---------------------------------------------------------------------------------------------
# PoseTrack 2018 / 2017


def _valid_video(video):
    assert isinstance(video, PoseTrackVideo)
    assert len(video.images) == len(video.poses) == len(video.head_boxes_xyxy)
    for poses in video.poses:
        assert isinstance(poses, Poses) and poses.num_joints == 17


@FUZZ
@given(st.one_of(posetrack_2018, posetrack_2017))
def test_posetrack_files_shaped_like_the_format(data):
    _reads_or_refuses(read_posetrack, _json_file(data), _valid_video)


@FUZZ
@given(st.one_of(posetrack_2018, posetrack_2017))
def test_posetrack_table_reader_of_the_evaluator(data):
    _reads_or_refuses(read_posetrack_table, _json_file(data), lambda table: None)


@FUZZ
@given(json_values)
def test_posetrack_reader_on_any_json(data):
    _reads_or_refuses(read_posetrack, _json_file(data), _valid_video)


@FUZZ
@given(st.binary(max_size=200))
def test_posetrack_reader_on_any_bytes(data):
    _reads_or_refuses(read_posetrack, _write(data), _valid_video)


# ---------------------------------------------------------------------------------------------
# COCO detections


def _valid_detections(by_image):
    for image_id, dets in by_image.items():
        assert isinstance(image_id, int) and isinstance(dets, Detections)
        assert np.isfinite(dets.boxes_xyxy).all() and np.isfinite(dets.scores).all()
        assert (dets.boxes_xyxy[:, 2] > dets.boxes_xyxy[:, 0]).all()
        assert (dets.boxes_xyxy[:, 3] > dets.boxes_xyxy[:, 1]).all()
        assert ((dets.scores >= 0) & (dets.scores <= 1)).all()


@FUZZ
@given(detections_file)
def test_detection_files_shaped_like_the_format(data):
    _reads_or_refuses(read_detections, _json_file(data), _valid_detections)


@FUZZ
@given(st.one_of(json_values, st.binary(max_size=100)))
def test_detection_reader_on_anything(data):
    path = _write(data) if isinstance(data, bytes) else _json_file(data)
    _reads_or_refuses(read_detections, path, _valid_detections)


# ---------------------------------------------------------------------------------------------
# YAML settings


yaml_like = st.dictionaries(
    st.sampled_from(["models", "detection", "flow", "pose", "pipeline", "tracker", "smoothing", "run", "junk"]),
    st.one_of(json_values, st.dictionaries(
        st.sampled_from(["memory_frames", "min_score", "method", "scale", "flip_test", "device", "enabled",
                         "max_batch", "unify_iou", "beta", "weights_dir", "nope"]), json_values, max_size=3)),
    max_size=4)


def _settings_or_refusal(path):
    from posetrack.config import pop_settings
    from posetrack.run import RENAMED_KEYS, RunSettings

    return pop_settings(RunSettings, {}, path, RENAMED_KEYS)


@FUZZ
@given(st.one_of(yaml_like, json_values))
def test_yaml_settings_of_any_shape(data):
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    _reads_or_refuses(_settings_or_refusal, _write(text, ".yaml"), lambda tree: None)


@FUZZ
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_yaml_settings_of_any_text(data):
    _reads_or_refuses(_settings_or_refusal, _write(data, ".yaml"), lambda tree: None)


# ---------------------------------------------------------------------------------------------
# Checkpoints

torch = pytest.importorskip("torch")

key_names = st.sampled_from(["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "final_layer.weight",
                             "backbone.conv1.weight", "keypoint_head.final_layer.weight",
                             "module.conv1.weight", "deconv_layers.0.weight", "x"])
tensors = st.builds(lambda shape: torch.zeros(shape), st.lists(st.integers(0, 3), max_size=4))
state_dicts = st.dictionaries(key_names, st.one_of(tensors, tensors, scalars), max_size=5)
checkpoints = st.one_of(
    state_dicts,
    st.fixed_dictionaries({"state_dict": state_dicts},
                          optional={"meta": st.one_of(json_values, st.fixed_dictionaries(
                              {"config": st.one_of(st.text(max_size=30), st.just("dataset_type = 'TopDownPoseTrack18Dataset'"))}))}),
    st.fixed_dictionaries({"model": st.one_of(state_dicts, json_values)}),
    json_values)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(checkpoints)
def test_checkpoints_of_any_content(content):
    from posetrack.posenet import load_posenet

    fd, name = tempfile.mkstemp(suffix=".pth", prefix="fuzz-")
    os.close(fd)
    torch.save(content, name)
    _reads_or_refuses(load_posenet, Path(name), lambda model: None)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.binary(max_size=300), st.integers(0, 2000))
def test_checkpoint_bytes_truncated_or_random(junk, cut):
    from posetrack.posenet import PoseNetConfig, SimpleBaseline, load_posenet

    fd, name = tempfile.mkstemp(suffix=".pth", prefix="fuzz-")
    os.close(fd)
    if cut % 2:  # a real (tiny) checkpoint, truncated or with junk appended
        torch.save({"final_layer.weight": torch.zeros(17, 256, 1, 1)}, name)
        raw = Path(name).read_bytes()
        Path(name).write_bytes(raw[:cut] + junk)
    else:
        Path(name).write_bytes(junk)
    assert SimpleBaseline and PoseNetConfig  # imported: the module loads
    _reads_or_refuses(load_posenet, Path(name), lambda model: None)


# ---------------------------------------------------------------------------------------------
# Writers: JSON and CSV of any valid frame data read back, or are refused


coordinate = st.one_of(st.floats(width=32), st.floats(-1e4, 1e4, width=32))


@st.composite
def frames_of_poses(draw):
    frames = []
    for _ in range(draw(st.integers(0, 3))):
        n = draw(st.integers(0, 3))
        xy = np.array(draw(st.lists(coordinate, min_size=n * 34, max_size=n * 34)), np.float32).reshape(n, 17, 2)
        sc = np.array(draw(st.lists(coordinate, min_size=n * 17, max_size=n * 17)), np.float32).reshape(n, 17)
        bx = np.array(draw(st.lists(coordinate, min_size=n * 4, max_size=n * 4)), np.float32).reshape(n, 4)
        bs = np.array(draw(st.lists(coordinate, min_size=n, max_size=n)), np.float32)
        tid = np.array(draw(st.lists(st.integers(-1, 12000), min_size=n, max_size=n, unique=True)), np.int64)
        frames.append(Poses(bx, bs, xy, sc, tid))
    return frames


@FUZZ
@given(frames_of_poses(), st.sampled_from(["posetrack18", "csv", "csv-joints"]))
def test_writers_write_what_reads_back_or_refuse(frames, format):
    video = video_from_frames([f"{k:06d}.jpg" for k in range(len(frames))], frames)
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / ("t.json" if format == "posetrack18" else "t.csv")
    try:
        write_tracks(path, video, format)
    except PosetrackError:
        assert not path.exists()
        return
    finally:
        leftovers = [p.name for p in folder.iterdir() if p != path]
        assert not leftovers, leftovers
    text = path.read_text()
    if format == "posetrack18":
        assert "NaN" not in text and "Infinity" not in text  # strict JSON, any reader takes it
        back = read_posetrack(path)
        assert [len(p) for p in back.poses] == [len(p) for p in frames]
    else:
        import csv

        rows = list(csv.reader(text.splitlines()))
        assert rows and all(len(r) == len(rows[0]) for r in rows)
        assert all(math.isfinite(float(c)) for r in rows[1:] for c in r[4:] if c and not c.isalpha()
                   and not c.replace("_", "").isalpha())
    path.unlink()
    folder.rmdir()

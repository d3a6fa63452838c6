import csv
import json
import os

import numpy as np
import pytest

from posetrack.errors import FormatError, PosetrackError
from posetrack.fileio import atomic_write
from posetrack.formats import (ImageInfo, PoseTrackVideo, read_detections, read_posetrack,
                               video_from_frames, write_csv, write_posetrack18, write_tracks)
from posetrack.frame import Poses
from posetrack.joints import POSETRACK17


def _video(num_frames=3, people=2, seed=0):
    rng = np.random.default_rng(seed)
    poses = []
    for k in range(num_frames):
        keypoints = rng.uniform(10, 500, (people, 17, 2)).astype(np.float32)
        keypoints[:, 3:5] = np.nan  # ears absent
        scores = rng.uniform(0.1, 1, (people, 17)).astype(np.float32)
        boxes = np.concatenate([np.nanmin(keypoints, 1), np.nanmax(keypoints, 1)], 1)
        poses.append(Poses(boxes, rng.uniform(size=people), keypoints, scores, np.arange(people) + 7 * k))
    return video_from_frames([f"clip/{k:06d}.jpg" for k in range(num_frames)], poses)


def test_posetrack18_round_trip(tmp_path):
    video = _video()
    path = tmp_path / "tracks.json"
    write_posetrack18(path, video)
    back = read_posetrack(path)
    assert back.format == "posetrack18" and len(back) == 3
    for a, b in zip(video.poses, back.poses):
        np.testing.assert_allclose(b.keypoints_xy, a.keypoints_xy, atol=0.006)  # 2 decimals
        np.testing.assert_allclose(b.keypoint_scores[:, [0, 1, 2, 5]], a.keypoint_scores[:, [0, 1, 2, 5]], atol=1e-5)
        assert (b.keypoint_scores[:, 3:5] == 0).all()  # absent joints are written with score 0
        assert b.track_ids.tolist() == a.track_ids.tolist()
        np.testing.assert_allclose(b.boxes_xyxy, a.boxes_xyxy, atol=0.02)
        np.testing.assert_allclose(b.box_scores, a.box_scores, atol=1e-5)
    assert [i.file_name for i in back.images] == [i.file_name for i in video.images]


def test_posetrack18_file_has_the_structure_of_the_official_files(tmp_path, shared_dir):
    gt = json.loads((shared_dir / "fixtures/poseval/jitter_scores/gt/023807_mpii_test.json").read_text())
    write_posetrack18(tmp_path / "ours.json", _video())
    ours = json.loads((tmp_path / "ours.json").read_text())
    assert set(gt) == set(ours)
    assert ours["categories"][0]["keypoints"] == gt["categories"][0]["keypoints"]
    ann = ours["annotations"][0]
    assert {"image_id", "track_id", "keypoints", "scores", "bbox", "category_id", "id"} <= set(ann)
    assert len(ann["keypoints"]) == 51 and len(ann["scores"]) == 17
    assert ann["keypoints"][9:15] == [0, 0, 0, 0, 0, 0]  # absent ears as (0, 0, 0)
    assert all(isinstance(a["track_id"], int) and 0 <= a["track_id"] < 10000 for a in ours["annotations"])
    assert {"id", "file_name", "is_labeled"} <= set(ours["images"][0])


def test_reads_official_2018_and_2017_files(shared_dir):
    gt18 = read_posetrack(shared_dir / "fixtures/poseval/real_gt_mmpose/gt/012834_mpii_test.json")
    assert len(gt18) == 1 and len(gt18.poses[0]) == 11
    assert len(gt18.images[0].ignore_regions) == 4 and gt18.images[0].ignore_regions[0].shape[1] == 2
    assert np.isnan(gt18.poses[0].keypoint_scores).all()  # GT has "scores": []
    assert not np.isnan(gt18.head_boxes_xyxy[0]).any()
    gt17 = read_posetrack(shared_dir / "fixtures/poseval/format2017_mixed/gt/027237_mpii_test.json")
    assert gt17.format == "posetrack17" and gt17.images[0].image_id is None
    labelled = [k for k, image in enumerate(gt17.images) if len(gt17.poses[k])]
    first = gt17.poses[labelled[0]]
    assert first.visible[:, 3:5].sum() == 0  # no ears in 2017 files
    # 2017 point id 13 is the nose, slot 0; id 0 the right ankle, slot 16
    raw = json.loads((shared_dir / "fixtures/poseval/format2017_mixed/gt/027237_mpii_test.json").read_text())
    points = raw["annolist"][labelled[0]]["annorect"][0]["annopoints"][0]["point"]
    by_id = {p["id"][0]: (p["x"][0], p["y"][0]) for p in points}
    np.testing.assert_allclose(first.keypoints_xy[0, 0], by_id[13], atol=1e-3)
    np.testing.assert_allclose(first.keypoints_xy[0, 16], by_id[0], atol=1e-3)


def _write(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _ann(**changes):
    ann = {"image_id": 1, "track_id": 0, "keypoints": [1.0] * 51, "scores": [0.5] * 17}
    ann.update(changes)
    return {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [ann]}


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ([1, 2], "not a PoseTrack file"),
    (_ann(keypoints=[1.0] * 48), "'keypoints' has 48 values, expected 51"),
    (_ann(scores=[0.1] * 5), "'scores' has 5 values, expected 17"),
    (_ann(image_id=5), "refers to image id 5, which is not in 'images'"),
    (_ann(track_id="a"), "track_id must be an integer"),
    (_ann(keypoints=["x"] * 51), "'keypoints' must hold numbers"),
])
def test_read_errors_name_the_file_and_problem(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(FormatError, match=message) as info:
        read_posetrack(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(PosetrackError, match="no such file"):
        read_posetrack(tmp_path / "nope.json")


@pytest.mark.parametrize("ids, message", [
    ([3, 3], "track id 3 is used by more than one person"),
    ([10000, 1], "track id 10000 is outside 0..9999"),
])
def test_writer_refuses_bad_track_ids_and_keeps_the_old_file(tmp_path, ids, message):
    video = _video(1)
    video.poses[0] = video.poses[0].replace(track_ids=ids)
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(FormatError, match=message):
        write_posetrack18(path, video)
    assert path.read_text() == "old"


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("complete old content")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write("partial")
            raise RuntimeError("crash while writing")
    assert path.read_text() == "complete old content"
    assert os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(PosetrackError, match="output folder .* does not exist"):
        with atomic_write(tmp_path / "missing" / "out.txt"):
            pass


def test_csv_layouts(tmp_path):
    video = _video(2, people=2)
    write_csv(tmp_path / "people.csv", video, "people")
    rows = list(csv.DictReader(open(tmp_path / "people.csv")))
    assert len(rows) == 4 and rows[0]["left_ear_x"] == "" and rows[0]["track_id"] == "0"
    assert float(rows[0]["nose_x"]) == pytest.approx(video.poses[0].keypoints_xy[0, 0, 0], abs=0.006)
    assert write_tracks(tmp_path / "joints.csv", video, "csv-joints") == "csv-joints"
    rows = list(csv.DictReader(open(tmp_path / "joints.csv")))
    assert len(rows) == 2 * 2 * 15  # ears absent
    assert {r["joint"] for r in rows} == set(POSETRACK17.joints) - {"left_ear", "right_ear"}
    with pytest.raises(FormatError, match="cannot tell the output format"):
        write_tracks(tmp_path / "x.txt", video)


def test_read_detections(tmp_path, shared_dir):
    dets = read_detections(shared_dir / "assets/detections/mmpose_demo.json")
    assert sorted(dets) == [0, 1, 2, 3, 4]
    assert all(d.boxes_xyxy.shape[1] == 4 and (d.boxes_xyxy[:, 2] > d.boxes_xyxy[:, 0]).all() for d in dets.values())
    path = _write(tmp_path, [{"image_id": 0, "category_id": 1, "bbox": [0, 0, 1], "score": 1}])
    with pytest.raises(FormatError, match="'bbox' has 3 values, expected 4"):
        read_detections(path)
    path = _write(tmp_path, [{"image_id": 0, "category_id": 2, "bbox": [0, 0, 1, 1], "score": 1}])
    assert read_detections(path) == {}


def test_outputs_get_normal_permissions_not_private_temp_ones(tmp_path):
    old = os.umask(0o022)
    try:
        write_posetrack18(tmp_path / "t.json", _video(1))
    finally:
        os.umask(old)
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o644

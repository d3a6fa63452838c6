"""The fast (batch) PoseTrack 2018 reader equals the person-by-person one; the id check."""

import json

import numpy as np
import pytest

from posetrack import formats
from posetrack.errors import FormatError
from posetrack.fileio import read_json

from evalcase import make_video, person_xy

def _both(path):
    data = read_json(path)
    row_of_id = {image["id"]: i for i, image in enumerate(data["images"])}
    fast = formats._people_2018_batch(data["annotations"], row_of_id)
    slow = formats._people_2018_each(path, data["annotations"], row_of_id)
    return fast, slow


def _assert_same(fast, slow):
    assert fast is not None
    assert len(fast) == len(slow) == 7
    for x, y in zip(fast, slow):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def test_batch_reader_equals_person_by_person_reader(tmp_path):
    people = [(0, person_xy(100, 100)), (3, person_xy(300, 100))]
    path = tmp_path / "v.json"
    formats.write_posetrack18(path, make_video([people, [], people[:1]], scores=0.7))
    data = json.loads(path.read_text())
    ann = data["annotations"]
    ann[0]["scores"] = []  # no scores
    ann[1].pop("bbox", None)  # box from the joints
    ann[1]["score"] = 0.25
    ann[2]["keypoints"][:3] = [5.0, 6.0, 0]  # visibility 0, real coordinates
    ann.insert(0, ann.pop())  # annotations out of image order
    path.write_text(json.dumps(data))
    fast, slow = _both(path)
    _assert_same(fast, slow)
    assert [len(p) for p in formats.read_posetrack(path).poses] == [2, 0, 1]


def test_reader_keeps_every_json_number_as_float64(tmp_path):
    """Values that collapse in float32 stay apart (the official evaluator keeps float64)."""
    path = tmp_path / "v.json"
    formats.write_posetrack18(path, make_video([[(0, person_xy(100, 100)), (1, person_xy(300, 100))]]))
    data = json.loads(path.read_text())
    score = 0.7
    data["annotations"][0]["scores"] = [score] * 17
    data["annotations"][1]["scores"] = [score + 2.0 ** -35] * 17
    data["annotations"][0]["keypoints"][0] = 100.00000001
    data["annotations"][0]["bbox_head"] = [10.000000001, 20.1, 30.3, 40.7]
    path.write_text(json.dumps(data))
    table = formats.read_posetrack_table(path)
    assert table.keypoint_scores.dtype == np.float64
    assert table.keypoint_scores[1, 0] - table.keypoint_scores[0, 0] == 2.0 ** -35
    assert table.keypoints_xy[0, 0, 0] == 100.00000001
    assert table.head_boxes_xyxy[0, 0] == 10.000000001
    assert table.head_boxes_xyxy[0, 2] == 10.000000001 + 30.3  # x2 = x + w in float64


def test_batch_reader_defers_unusual_files_to_the_careful_reader(tmp_path):
    path = tmp_path / "v.json"
    formats.write_posetrack18(path, make_video([[(0, person_xy(100, 100))]]))
    data = json.loads(path.read_text())
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    path.write_text(json.dumps(data))
    row_of_id = {0: 0}
    assert formats._people_2018_batch(data["annotations"], row_of_id) is None
    with pytest.raises(FormatError, match="'keypoints' has 48 values"):
        formats.read_posetrack(path)


@pytest.mark.parametrize("frames, message", [
    ([[0, 1], [2, 2]], "track id 2 is used by more than one person"),
    ([[0, 10000], [1, 1]], "track id 10000 is outside 0..9999"),   # the first bad frame is reported
    ([[0, 1], [5, -1, 5]], "track id -1 is outside"),             # range before duplicates
    ([[3, 1, 3, 1]], "track id 1 is used"),                       # the smallest duplicate
])
def test_check_track_ids(frames, message):
    video = make_video([[(i, person_xy(0, 0)) for i in ids] for ids in frames])
    with pytest.raises(FormatError, match=message):
        formats.check_track_ids("f.json", video)


def test_check_track_ids_accepts_good_and_unassigned_ids():
    formats.check_track_ids("f.json", make_video([[(0, person_xy(0, 0)), (9999, person_xy(0, 0))], []]))
    formats.check_track_ids("f.json", make_video([[(-1, person_xy(0, 0)), (-1, person_xy(0, 0))]]),
                            allow_unassigned=True)

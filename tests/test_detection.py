import json
import time

import numpy as np
import pytest

from posetrack import weights
from posetrack.detection import DetectorConfig, PrecomputedDetections, YoloDetector, _import_yolo
from posetrack.errors import PosetrackError
from posetrack.frame import Detections

COCO_FIRST = ["person", "bicycle", "car"]


def _rng_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# YOLO, with models built from ultralytics' YAML (random weights, no download)


def _save_yolo(path, dominant_class: int | None, names=None):
    """Build yolo11n from its YAML and save it; every anchor's class scores are constant:
    ``dominant_class`` at sigmoid(2) = 0.88, all others at sigmoid(-10) (None: untouched)."""
    import torch

    torch.manual_seed(0)
    yolo = _import_yolo()("yolo11n.yaml")  # builds from the packaged YAML; no weights are fetched
    model = yolo.model
    model.names = names if names is not None else {
        i: (COCO_FIRST[i] if i < len(COCO_FIRST) else f"class{i}") for i in range(80)}
    if dominant_class is not None:
        head = model.model[-1]
        with torch.no_grad():
            for branch in head.cv3:
                conv = branch[-1]
                conv.weight.zero_()
                conv.bias.fill_(-10.0)
                conv.bias[dominant_class] = 2.0
    yolo.save(str(path))
    return path


@pytest.fixture(scope="module")
def yolo_files(tmp_path_factory):
    pytest.importorskip("ultralytics")
    folder = tmp_path_factory.mktemp("yolo")
    return {
        "person": _save_yolo(folder / "person.pt", 0),
        "car": _save_yolo(folder / "car.pt", 2),
        "unnamed": _save_yolo(folder / "unnamed.pt", 0, names={i: str(i) for i in range(80)}),
    }


SMALL = DetectorConfig(image_size=64)  # keep the random network quick on a CPU


def test_yolo_person_boxes_types_and_shapes(yolo_files):
    detector = YoloDetector(str(yolo_files["person"]), SMALL)
    image = _rng_image(90, 120)
    found = detector(image)
    assert isinstance(found, Detections)
    assert found.boxes_xyxy.dtype == np.float32 and found.boxes_xyxy.shape == (len(found), 4)
    assert len(found) > 0
    assert np.allclose(found.scores, 1 / (1 + np.exp(-2.0)), atol=1e-3)  # the class score set above
    boxes = found.boxes_xyxy
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 120).all()  # full-frame pixels, clipped
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= 90).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    assert (np.diff(found.scores) <= 0).all()  # highest score first


def test_yolo_keeps_persons_only(yolo_files):
    image = _rng_image(90, 120)
    raw = _import_yolo()(str(yolo_files["car"])).predict(image, imgsz=64, conf=0.25, verbose=False)[0]
    assert len(raw.boxes) > 0 and set(raw.boxes.cls.tolist()) == {2.0}  # the model sees cars
    assert len(YoloDetector(str(yolo_files["car"]), SMALL)(image)) == 0


def test_yolo_batch_equals_single_frames(yolo_files):
    detector = YoloDetector(str(yolo_files["person"]), SMALL)
    images = [_rng_image(90, 120, 1), _rng_image(90, 120, 2)]
    batch = detector.detect_batch(images)
    assert len(batch) == 2 and detector.detect_batch([]) == []
    for image, found in zip(images, batch):
        single = detector(image)
        assert np.allclose(found.boxes_xyxy, single.boxes_xyxy, atol=1e-3)


def test_yolo_max_detections_and_threshold(yolo_files):
    image = _rng_image(90, 120)
    assert len(YoloDetector(str(yolo_files["person"]), DetectorConfig(image_size=64, max_detections=2))(image)) <= 2
    # every score is 0.88: a threshold above it leaves nothing
    assert len(YoloDetector(str(yolo_files["person"]), DetectorConfig(image_size=64, min_score=0.9, weak_min_score=0.9))(image)) == 0


def test_yolo_without_person_class_needs_it_named(yolo_files):
    with pytest.raises(PosetrackError, match="no class named 'person'.*set person_class"):
        YoloDetector(str(yolo_files["unnamed"]), SMALL)
    detector = YoloDetector(str(yolo_files["unnamed"]), DetectorConfig(image_size=64, person_class="0"))
    assert detector.person_index == 0


def test_importing_ultralytics_leaves_pil_and_torch_alone(tmp_path, yolo_files):
    import torch
    from PIL import Image, UnidentifiedImageError

    _import_yolo()
    not_an_image = tmp_path / "broken.png"
    not_an_image.write_bytes(b"not a png")
    # ultralytics' own patch would raise ModuleNotFoundError (pi_heif) here
    with pytest.raises(UnidentifiedImageError):
        Image.open(not_an_image)
    assert torch.save.__module__.startswith("torch")


def test_yolo_rejects_a_bad_image(yolo_files):
    detector = YoloDetector(str(yolo_files["person"]), SMALL)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        detector(np.zeros((10, 10), np.uint8))


def test_yolo_bad_checkpoint_names_the_file(tmp_path):
    pytest.importorskip("ultralytics")
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(PosetrackError, match="broken.pt: cannot load it as an ultralytics YOLO checkpoint"):
        YoloDetector(str(path), SMALL)


def test_uncached_detector_offline_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    start = time.monotonic()
    with pytest.raises(PosetrackError) as err:
        YoloDetector("yolo11n", weights_dir=tmp_path)
    assert time.monotonic() - start < 2
    text = str(err.value)
    info = weights.known_models()["yolo11n"]
    assert info.url in text and str(tmp_path / "yolo11n.pt") in text and "--weights-dir" in text


@pytest.mark.parametrize("spec, message", [
    ("yolo11q", "Did you mean 'yolo11n'?"),                     # unknown name: closest match
    ("raft-small", "is a flow model, not a detector model"),   # a known name of another kind
])
def test_bad_detector_names(spec, message, tmp_path):
    with pytest.raises(PosetrackError, match=message):
        YoloDetector(spec, weights_dir=tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"min_score": 1.5}, r"min_score must be a number in \[0, 1\], got 1.5"),
    ({"nms_iou": -0.1}, "nms_iou must be a number in"),
    ({"image_size": 100}, "multiple of 32"),
    ({"max_detections": 0}, "max_detections"),
])
def test_detector_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectorConfig(**kwargs)


# ---------------------------------------------------------------------------------------------
# Precomputed detections


def _write_results(path, rows):
    path.write_text(json.dumps([{"image_id": i, "category_id": c, "bbox": b, "score": s}
                                for i, c, b, s in rows]))
    return path


@pytest.fixture()
def results_file(tmp_path):
    return _write_results(tmp_path / "dets.json", [
        (0, 1, [10, 20, 30, 40], 0.9),
        (0, 1, [0, 0, 5, 5], 0.3),
        (0, 3, [1, 1, 1, 1], 0.99),     # not a person: skipped
        (2, 1, [100, 100, 10, 10], 0.5),
        (2, 1, [50, 50, 10, 10], 0.7),  # listed after a lower score: output is sorted
    ])


def test_precomputed_lookup_by_frame(results_file):
    dets = PrecomputedDetections.from_file(results_file)
    frame0 = dets(None, 0)
    assert np.allclose(frame0.boxes_xyxy, [[10, 20, 40, 60], [0, 0, 5, 5]])
    assert np.allclose(frame0.scores, [0.9, 0.3])
    assert len(dets(None, 1)) == 0          # a frame without entries: no people
    assert len(dets(None, 99)) == 0         # past the last entry: no people either
    assert np.allclose(dets(None, 2).scores, [0.7, 0.5])
    assert dets.image_ids == [0, 2]
    assert [len(d) for d in dets.detect_batch(None, [0, 1, 2])] == [2, 0, 2]


@pytest.mark.parametrize("min_score, counts", [
    (0.0, [2, 0, 2]),
    (0.5, [1, 0, 2]),   # 0.5 itself is kept
    (0.95, [0, 0, 0]),
])
def test_precomputed_min_score(results_file, min_score, counts):
    dets = PrecomputedDetections.from_file(results_file, min_score=min_score)
    assert [len(dets(None, i)) for i in range(3)] == counts


def test_precomputed_with_image_ids(results_file):
    dets = PrecomputedDetections.from_file(results_file, image_ids=[2, 0])  # frame 0 is image 2
    assert np.allclose(dets(None, 0).scores, [0.7, 0.5])
    assert np.allclose(dets(None, 1).scores, [0.9, 0.3])
    with pytest.raises(PosetrackError, match="frame 2 has no image id"):
        dets(None, 2)


def test_precomputed_needs_the_frame_id(results_file):
    with pytest.raises(TypeError, match="frame_id"):
        PrecomputedDetections.from_file(results_file)(np.zeros((4, 4, 3), np.uint8))


def test_precomputed_bad_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"image_id": 0}))
    with pytest.raises(PosetrackError, match="bad.json"):
        PrecomputedDetections.from_file(path)


def test_precomputed_sample_asset(shared_dir):
    path = shared_dir / "assets" / "detections" / "mmpose_demo.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    dets = PrecomputedDetections.from_file(path, min_score=0.5)
    counts = [len(dets(None, i)) for i in range(5)]
    # assets README: 4-9 boxes >= 0.5 per frame, mean 7.8
    assert min(counts) == 4 and max(counts) == 9 and sum(counts) == 39


def test_yolo_leaves_torch_and_opencv_thread_counts_alone(yolo_files):
    """ultralytics sets torch's threads to cpu_count - 1 when it picks the CPU, and OpenCV's to 0
    on import; the pose network and the flow would then run on fewer threads."""
    import os

    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    wanted = 3 if (os.cpu_count() or 2) - 1 == 2 else 2  # a count ultralytics would not pick
    torch.set_num_threads(wanted)
    cv2.setNumThreads(2)
    try:
        detector = YoloDetector(str(yolo_files["person"]), SMALL)  # a fresh predictor
        detector(_rng_image(64, 64))
        assert torch.get_num_threads() == wanted
        assert cv2.getNumThreads() == 2
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


# ---------------------------------------------------------------------------------------------
# Bad detection files: refused with the entry named, or a few bad entries skipped with a count


def _entries(n, **override):
    rows = [{"image_id": k % 5, "category_id": 1, "bbox": [10 + k, 20, 30, 40], "score": 0.5}
            for k in range(n)]
    for index, changes in override.items():
        rows[int(index[1:])].update(changes)
    return rows


@pytest.mark.parametrize("bad, problem", [
    ({"bbox": [10, 20, -30, 40]}, "no positive width and height"),  # negative width
    ({"bbox": [10, 20, 30, 0]}, "no positive width and height"),  # zero height
    ({"bbox": [10, float("nan"), 30, 40]}, "not finite"),
    ({"bbox": [10, 20, float("inf"), 40]}, "not finite"),
    ({"score": float("nan")}, r"score nan is not in \[0, 1\]"),
    ({"score": 1.5}, r"score 1.5 is not in \[0, 1\]"),
    ({"score": -0.1}, r"score -0.1 is not in \[0, 1\]"),
])
def test_a_few_bad_entries_are_skipped_with_one_counted_warning(tmp_path, caplog, bad, problem):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(_entries(10, e3=bad)))
    with caplog.at_level("WARNING"):
        dets = PrecomputedDetections.from_file(path)
    assert sum(len(dets.get(i)) for i in range(5)) == 9  # the bad one skipped, the rest kept
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "skipped 1 invalid entry of 10" in warnings[0]
    assert str(path) in warnings[0] and "entry 3 (image id 3)" in warnings[0]
    assert __import__("re").search(problem, warnings[0])


def test_many_bad_entries_refuse_the_file(tmp_path):
    # the user's case: every 3rd score NaN; dropping a third of the boxes silently is wrong
    rows = _entries(30)
    for row in rows[::3]:
        row["score"] = float("nan")
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(PosetrackError, match=r"dets.json: 10 of 30 entries are not valid detections, "
                                             r"e.g. entry 0 \(image id 0\): score nan"):
        PrecomputedDetections.from_file(path)


@pytest.mark.parametrize("entry, message", [
    ({"image_id": 0, "bbox": [1, 2, 3, 4]}, "entry 0 needs 'image_id', 'bbox' and 'score'"),
    ({"image_id": 0.5, "bbox": [1, 2, 3, 4], "score": 0.5}, "entry 0 image_id must be an integer"),
    ({"image_id": "0", "bbox": [1, 2, 3, 4], "score": 0.5}, "entry 0 image_id must be an integer"),
    ({"image_id": 0, "bbox": [1, 2, 3], "score": 0.5}, "'bbox' has 3 values, expected 4"),
    ({"image_id": 0, "bbox": ["a", 2, 3, 4], "score": 0.5}, "'bbox' must hold numbers"),
    ({"image_id": 0, "bbox": [1, 2, 3, 4], "score": "high"}, "'score' must be a number"),
    ([1, 2], "entry 0 needs"),
])
def test_malformed_entries_refuse_the_file(tmp_path, entry, message):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(PosetrackError, match=message):
        PrecomputedDetections.from_file(path)


def test_other_categories_are_reported(tmp_path, caplog):
    rows = _entries(4) + [{"image_id": 0, "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.9}] * 2
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(rows))
    with caplog.at_level("WARNING"):
        dets = PrecomputedDetections.from_file(path)
    assert sum(len(dets.get(i)) for i in range(5)) == 4
    assert any("skipped 2 entries whose category_id is not the person category 1: 3 (2)"
               in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# Image ids that are not frames of the clip


def test_image_ids_beyond_the_clip_are_named(tmp_path):
    path = _write_results(tmp_path / "dets.json", [(k, 1, [1, 1, 5, 5], 0.9) for k in range(12)])
    dets = PrecomputedDetections.from_file(path)
    dets.check_frames(12, "clip.mp4")  # exactly the clip: fine
    with pytest.raises(PosetrackError, match=r"dets.json: image ids 5, 6, 7, 8, 9 \(and 2 more\) "
                                             r"are not among the frame indices 0-4 of clip.mp4"):
        dets.check_frames(5, "clip.mp4")


def test_a_file_of_another_clip_is_refused(tmp_path):
    path = _write_results(tmp_path / "dets.json", [(1000 + k, 1, [1, 1, 5, 5], 0.9) for k in range(3)])
    with pytest.raises(PosetrackError, match="none of its image ids is a frame of clip.mp4 .*another clip"):
        PrecomputedDetections.from_file(path).check_frames(100, "clip.mp4")
    # by annotation image ids: the ids of another sequence do not match
    dets = PrecomputedDetections.from_file(path, image_ids=[1, 2, 3])
    with pytest.raises(PosetrackError, match="none of its image ids .*image ids of seq"):
        dets.check_frames(3, "seq")
    PrecomputedDetections.from_file(path, image_ids=[1000, 1001, 1002]).check_frames(3, "seq")


def test_an_empty_file_means_no_people(tmp_path):
    path = tmp_path / "dets.json"
    path.write_text("[]")
    PrecomputedDetections.from_file(path).check_frames(10)


# ---------------------------------------------------------------------------------------------
# Bounded work: max_detections applies to precomputed boxes


def test_max_detections_keeps_the_highest_scores(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.random(100_000)
    xy = rng.random((100_000, 2)) * 1000
    rows = [{"image_id": 0, "bbox": [x, y, 20, 40], "score": s} for (x, y), s in zip(xy.tolist(), scores.tolist())]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(rows))
    dets = PrecomputedDetections.from_file(path, max_detections=10)
    frame = dets(None, 0)
    assert len(frame) == 10
    np.testing.assert_allclose(frame.scores, np.sort(scores)[::-1][:10], rtol=1e-6)
    assert len(PrecomputedDetections.from_file(path, max_detections=None)(None, 0)) == 100_000

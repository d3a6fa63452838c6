"""HTML pages: the numbers behind them, their structure (self-contained: every image embedded,
nothing fetched), and, where Chromium is installed, that a real browser renders them."""

import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack.cli import main
from posetrack.formats import ImageInfo, PoseTrackVideo, write_posetrack18
from posetrack.frame import Poses
from posetrack.report import TrackStats, eval_page, runs, still_frames, track_presence

W, H = 120, 80


def people(ids, x0=10):
    n = len(ids)
    boxes = np.array([[x0 + 25 * i, 10, x0 + 25 * i + 20, 70] for i in range(n)], np.float32).reshape(n, 4)
    xy = np.repeat(boxes[:, None, :2], 17, axis=1) + np.linspace(1, 18, 17)[None, :, None]
    return Poses(boxes, np.full(n, 0.9), xy.astype(np.float32), np.full((n, 17), 0.8), np.array(ids, np.int64))


@pytest.mark.parametrize("frames, expected", [
    ([], []),  # never present
    ([4], [(4, 1)]),  # one frame
    ([3, 4, 5, 9], [(3, 3), (9, 1)]),  # lost and found again
    ([0, 2, 4], [(0, 1), (2, 1), (4, 1)]),  # every other frame
])
def test_runs(frames, expected):
    assert runs(np.array(frames)) == expected


def test_presence_and_stats():
    poses = [people([0, 1]), people([0]), people([-1]), people([1, 2]), Poses.empty()]
    presence = track_presence(poses)
    assert {k: v.tolist() for k, v in presence.items()} == {0: [0, 1], 1: [0, 3], 2: [3]}
    stats = TrackStats.of(PoseTrackVideo([ImageInfo(i, f"c/{i}.jpg") for i in range(5)], poses,
                                         [np.zeros((len(p), 4)) for p in poses]))
    assert stats.people_per_frame.tolist() == [2, 1, 1, 2, 0]  # the untracked person counts
    assert stats.lengths == {0: 2, 1: 2, 2: 1} and stats.fragments == {0: 1, 1: 2, 2: 1}
    assert still_frames(stats, 3) == [0, 2, 3]  # spread over the frames with people
    assert still_frames(stats, 2) == [0, 3]  # frame 0 is the most crowded (a tie with 3)
    assert still_frames(stats, 1) == [0]


class Page(HTMLParser):
    """What a page holds: section titles, images (decoded), external references, tables."""

    def __init__(self, text):
        super().__init__()
        self.headings, self.images, self.external, self.tables, self._in = [], [], [], 0, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._in = tag
        if tag == "table":
            self.tables += 1
        for key in ("src", "href"):
            value = attrs.get(key)
            if value and not value.startswith("data:"):
                self.external.append(value)
        if tag == "img":
            kind, data = attrs["src"].split(",", 1)
            self.images.append((kind, base64.b64decode(data), attrs.get("alt")))

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in in ("h1", "h2"):
            self.headings.append(data.strip())


def _tracks_file(tmp_path, frames=8):
    poses = [people([0, 1] if k < 5 else [0, 2]) for k in range(frames)]
    images = [ImageInfo(k, f"clip/{k:06d}.jpg", extra={"frame_id": k}) for k in range(frames)]
    info = {"fps": 10, "input": "clip.avi", "frame_range": [0, None],
            "stage_ms_per_frame": {"decode": 1.0, "detect": 2.0, "flow": 3.0, "pose": 40.0, "match": 0.5},
            "settings": {"tracker": {"memory_frames": 8}, "smoothing": {"enabled": False}}}
    write_posetrack18(tmp_path / "tracks.json", PoseTrackVideo(images, poses, [np.full((2, 4), np.nan)] * frames,
                                                               info=info))
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for k in range(frames):
        writer.write(np.full((H, W, 3), 30 * k % 255, np.uint8))
    writer.release()
    return tmp_path / "tracks.json"


def test_tracks_page(tmp_path):
    tracks = _tracks_file(tmp_path)
    result = CliRunner().invoke(main, ["report", str(tracks), "--video", str(tmp_path / "clip.avi"),
                                       "--out", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output
    assert "8 frames, 3 track ids" in result.output
    page = Page((tmp_path / "report.html").read_text())
    assert page.headings == ["Tracks: tracks.json", "Summary", "Timeline", "Track lengths and people per frame",
                             "Time per frame", "Settings", "Frames with the overlay"]
    assert page.external == []  # self-contained
    plots = [data for kind, data, _ in page.images if kind == "data:image/png;base64"]
    stills = [data for kind, data, _ in page.images if kind == "data:image/jpeg;base64"]
    assert len(plots) == 3 and all(p.startswith(b"\x89PNG") for p in plots)
    assert len(stills) == 4
    still = cv2.imdecode(np.frombuffer(stills[0], np.uint8), cv2.IMREAD_COLOR)
    assert still.shape == (H, W, 3) and len(np.unique(still.reshape(-1, 3), axis=0)) > 3  # overlay drawn
    text = (tmp_path / "report.html").read_text()
    assert "memory_frames" in text and "40.0" in text and "tracks lost and found again" in text


def test_tracks_page_without_video_or_metadata(tmp_path):
    poses = [people([3]), Poses.empty()]
    write_posetrack18(tmp_path / "t.json", PoseTrackVideo([ImageInfo(k, f"c/{k}.jpg") for k in range(2)],
                                                          poses, [np.full((len(p), 4), np.nan) for p in poses]))
    result = CliRunner().invoke(main, ["report", str(tmp_path / "t.json"), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = Page((tmp_path / "r.html").read_text())
    assert page.headings == ["Tracks: t.json", "Summary", "Timeline", "Track lengths and people per frame"]


def test_report_never_overwrites_its_input(tmp_path):
    tracks = _tracks_file(tmp_path).rename(tmp_path / "tracks.html")  # a JSON file under a page's name
    before = tracks.read_bytes()
    result = CliRunner().invoke(main, ["report", str(tracks), "--out", str(tracks)])
    assert result.exit_code == 1 and "would overwrite the input" in result.output
    assert tracks.read_bytes() == before
    result = CliRunner().invoke(main, ["report", str(tracks), "--out", str(tmp_path / "page.txt")])
    assert result.exit_code == 1 and "unknown extension '.txt' for the page output" in result.output


def _results(hota=False):
    joints = ["right_ankle", "right_knee", "head_top"]
    results = {
        "ap": {"head": 80.0, "total": 70.0}, "mota": {"head": 60.0, "total": 55.5},
        "motp": {"total": 80.0}, "precision": {"total": 90.0}, "recall": {"total": 75.0},
        "per_joint": {"ap": dict(zip(joints, [60.0, 70.0, 80.0])), "mota": dict(zip(joints, [-5.0, 50.0, None]))},
        "counts": {j: {"misses": 3, "switches": 1, "false_positives": 2, "objects": 20, "detections": 19}
                   for j in joints},
        "evaluated_frames": 12,
        "per_sequence": {"seq_b": {"ap": {"total": 71.0}, "mota": {"total": 50.0}, "precision": {"total": 1.0},
                                   "recall": {"total": 2.0}, "counts": None},
                         "seq_a": {"ap": {"total": 69.0}, "mota": None, "precision": None, "recall": None,
                                   "counts": None}},
    }
    if hota:  # the layout of eval --json's "hota"
        measures = ("HOTA", "DetA", "AssA")
        results["hota"] = {
            "total": dict(zip(measures, (48.25, 50.0, 47.0))),
            "per_joint": {m: dict(zip(joints, (40.0 + i, 50.0 + i, 60.0 + i))) for i, m in enumerate(measures)},
            "counts": {"TP": {"total": [5, 4, 3], "per_joint": {j: [1, 1, 1] for j in joints}}},
            "alphas": [0.05, 0.1, 0.15], "evaluated_frames": 12,
            "per_sequence": {"seq_a": {"total": {"HOTA": 33.3}}, "seq_b": {"total": {"HOTA": 66.7}}}}
    return results


def test_eval_page():
    page_text = eval_page(_results(), title="eval")
    page = Page(page_text)
    assert page.headings == ["eval", "Summary", "By joint group", "Per joint", "Errors", "Per sequence (2)"]
    assert page.external == [] and len(page.images) == 2
    assert page_text.index("seq_a") < page_text.index("seq_b")
    assert "HOTA" not in page_text
    with_hota = eval_page(_results(hota=True), title="eval")
    assert "HOTA" in Page(with_hota).headings and "48.2" in with_hota
    hota_table = with_hota[with_hota.index("<h2>HOTA</h2>"):with_hota.index("Per sequence")]
    assert "<th>DetA</th>" in hota_table and "<td>right_knee</td>" in hota_table
    assert "alphas" not in hota_table and "TP" not in hota_table  # totals and joints only
    assert "<th>HOTA</th>" in with_hota[with_hota.index("Per sequence"):] and "66.7" in with_hota


def test_eval_html_from_the_command(tmp_path, shared_dir):
    case = shared_dir / "fixtures" / "poseval" / "mixed_four_seqs"
    result = CliRunner().invoke(main, ["eval", "--gt", str(case / "gt"), "--pred", str(case / "pred"),
                                       "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = Page((tmp_path / "r.html").read_text())
    assert "Per sequence (4)" in page.headings and len(page.images) == 2
    # report FILE with the results JSON makes the same page
    result = CliRunner().invoke(main, ["report", str(tmp_path / "r.json"), "--out", str(tmp_path / "s.html")])
    assert result.exit_code == 0, result.output
    assert "Errors" in Page((tmp_path / "s.html").read_text()).headings


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium) to render pages")
def test_pages_render_in_headless_chromium(tmp_path):
    tracks = _tracks_file(tmp_path)
    CliRunner().invoke(main, ["report", str(tracks), "--video", str(tmp_path / "clip.avi"),
                              "--out", str(tmp_path / "tracks.html")])
    (tmp_path / "eval.html").write_text(eval_page(_results(hota=True), title="eval"))
    for name in ("tracks", "eval"):
        shot = tmp_path / f"{name}.png"
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1200,1600", f"--screenshot={shot}", (tmp_path / f"{name}.html").as_uri()],
                       capture_output=True, timeout=120, check=True)
        image = cv2.imread(str(shot))
        assert image is not None and image.shape[:2] == (1600, 1200)
        # the plots are there: many colours, not a blank or an error page
        assert len(np.unique(image.reshape(-1, 3)[::7], axis=0)) > 50


def test_plots_number_frames_as_the_input_does():
    """A run over --start 5 wrote frames 5, 6: the timeline and stills use those numbers."""
    poses = [people([0]), people([0])]
    images = [ImageInfo(k, f"c/{k:06d}.jpg", extra={"frame_id": k}) for k in (5, 6)]
    video = PoseTrackVideo(images, poses, [np.zeros((1, 4))] * 2, info={"frame_range": [5, None]})
    assert TrackStats.of(video).frame_numbers.tolist() == [5, 6]
    video.info = {}  # another tool's file: frame_id means something else, positions count
    assert TrackStats.of(video).frame_numbers.tolist() == [0, 1]


def test_eval_html_shows_hota_when_computed(tmp_path, shared_dir):
    case = shared_dir / "fixtures" / "hota" / "jitter_missing"
    result = CliRunner().invoke(main, ["eval", "--gt", str(case / "gt"), "--pred", str(case / "pred"),
                                       "--metric", "all", "--json", str(tmp_path / "r.json"),
                                       "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    hota = json.loads((tmp_path / "r.json").read_text())["hota"]
    text = (tmp_path / "r.html").read_text()
    assert "HOTA" in Page(text).headings
    assert f"<tr><td>HOTA</td><td class=\"n\">{hota['total']['HOTA']:.1f}</td></tr>" in text
    assert "<th>DetA</th>" in text and "<th>AssA</th>" in text
    assert text[text.index("Per sequence"):].count("<th>HOTA</th>") == 1

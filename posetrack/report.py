"""HTML pages to look at: a tracks file (``posetrack report``) and evaluation results
(``posetrack eval --html``).

Each page is one self-contained HTML file: styles inline, plots drawn with matplotlib and embedded
as base64 PNG, stills as base64 JPEG; nothing is fetched from anywhere, so it opens offline and
can be mailed or archived as it is. The numbers behind the plots are pure numpy functions
(:func:`track_presence`, :func:`runs`), testable without drawing anything.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import PosetrackError
from .fileio import atomic_write
from .formats import PoseTrackVideo, frame_indices, read_posetrack

STILLS = 4  # frames drawn with their overlay on a tracks page
_STILL_WIDTH = 640  # pixels; stills are scaled down to this width
_EVAL_KEYS = ("ap", "mota", "evaluated_frames")  # the top-level keys of `eval --json` results


# ---------------------------------------------------------------------------------------------
# Numbers


def track_presence(poses) -> dict[int, np.ndarray]:
    """Track id -> the sorted frame positions (0-based, in file order) where it is present.
    People without a track id (-1) are left out."""
    if not poses:
        return {}
    ids = np.concatenate([p.track_ids for p in poses]).astype(np.int64)
    frames = np.repeat(np.arange(len(poses)), [len(p) for p in poses])
    keep = ids >= 0
    ids, frames = ids[keep], frames[keep]
    order = np.lexsort((frames, ids))
    ids, frames = ids[order], frames[order]
    bounds = np.flatnonzero(np.diff(ids)) + 1
    return {int(group[0]): np.unique(f) for group, f in zip(np.split(ids, bounds), np.split(frames, bounds))
            if len(group)}


def runs(frames: np.ndarray) -> list[tuple[int, int]]:
    """Sorted frame positions -> the (first frame, length) of each run of consecutive frames.
    ``[3, 4, 5, 9]`` -> ``[(3, 3), (9, 1)]``; a track with more than one run was lost and found."""
    frames = np.asarray(frames, np.int64)
    if frames.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    return [(int(r[0]), len(r)) for r in np.split(frames, breaks)]


@dataclass
class TrackStats:
    """What a tracks page shows, computed once."""

    presence: dict  # track id -> frame positions
    people_per_frame: np.ndarray  # (F,) int, every person of a frame, with or without an id
    lengths: dict  # track id -> frames present
    fragments: dict  # track id -> runs of consecutive frames
    frame_numbers: np.ndarray  # (F,) int, each position's frame index in the input (plot axes)

    @classmethod
    def of(cls, video: PoseTrackVideo) -> "TrackStats":
        presence = track_presence(video.poses)
        return cls(presence, np.array([len(p) for p in video.poses], np.int64),
                   {i: len(f) for i, f in presence.items()},
                   {i: len(runs(f)) for i, f in presence.items()},
                   np.array(frame_indices(video), np.int64))


# ---------------------------------------------------------------------------------------------
# Tracks page


def write_tracks_report(tracks_path, out_path, video_path=None, stills: int = STILLS) -> TrackStats:
    """``posetrack report TRACKS``: write the HTML page of a PoseTrack tracks file.

    Args:
        tracks_path: a PoseTrack 2018 (or 2017) file, e.g. the output of ``posetrack run``, whose
            ``info`` (settings, per-stage timing) is shown when present.
        out_path: the .html file to write (atomically).
        video_path: the video or frame folder the tracks belong to: a few frames are drawn with
            their overlay. Frames pair as ``posetrack render`` pairs them.
        stills: how many frames to draw.
    """
    video = read_posetrack(tracks_path)
    stats = TrackStats.of(video)
    images = _stills(video, video_path, stats, stills) if video_path is not None else []
    page = tracks_page(video, stats, title=Path(tracks_path).name, stills=images)
    _write_page(out_path, page)
    return stats


def tracks_page(video: PoseTrackVideo, stats: TrackStats, *, title: str, stills=()) -> str:
    """The HTML of a tracks page. ``stills``: (caption, JPEG bytes) pairs."""
    info = video.info or {}
    lengths = np.array(list(stats.lengths.values()), np.int64)
    fragmented = sum(1 for n in stats.fragments.values() if n > 1)
    fps = info.get("fps")
    summary = [
        ("frames", len(video)),
        ("people (all frames)", int(stats.people_per_frame.sum())),
        ("people per frame", f"mean {stats.people_per_frame.mean():.1f}, max {stats.people_per_frame.max()}"
         if len(video) else "-"),
        ("track ids", len(stats.presence)),
        ("track length (frames)", f"median {np.median(lengths):g}, longest {lengths.max()}, "
                                  f"{int((lengths <= 2).sum())} of 1-2 frames" if lengths.size else "-"),
        ("tracks lost and found again", f"{fragmented} (present in more than one run of frames)"),
    ]
    for key, label in (("input", "input"), ("date_created", "written"), ("device", "device"),
                       ("seconds", "run time (s)"), ("stopped", "stopped by")):
        if info.get(key) is not None:
            summary.append((label, info[key]))
    if fps:
        summary.append(("frames per second (video)", f"{fps:g}"))
    if len(video) and stats.frame_numbers[0] != 0:
        summary.append(("frames of the input", f"{stats.frame_numbers[0]}-{stats.frame_numbers[-1]}"))
    parts = [_section("Summary", _table(["", ""], summary, header=False))]
    parts.append(_section("Timeline", _paragraph(
        "One row per track id, ordered by first appearance; a bar wherever the id is present. "
        "Gaps in a row are frames where the person was lost; a row that ends as another begins "
        "near it may be one person whose id switched.") + _image(_timeline_png(stats, len(video)), "timeline")))
    parts.append(_section("Track lengths and people per frame",
                          _image(_lengths_png(stats), "track lengths and people per frame")))
    timing = info.get("stage_ms_per_frame")
    if isinstance(timing, dict) and timing:
        rows = [(stage, f"{ms:.1f}") for stage, ms in timing.items()]
        total = sum(v for v in timing.values() if isinstance(v, (int, float)))
        rows.append(("all stages", f"{total:.1f}"))
        parts.append(_section("Time per frame", _image(_timing_png(timing), "time per stage")
                              + _table(["stage", "ms per frame"], rows)))
    settings = info.get("settings")
    if isinstance(settings, dict) and settings:
        parts.append(_section("Settings", "".join(
            f"<h3>{html.escape(str(name))}</h3>" + (_table(["setting", "value"], sorted(values.items()))
                                                     if isinstance(values, dict) else
                                                     _paragraph("off" if values is None else str(values)))
            for name, values in settings.items())))
    if stills:
        figures = "".join(f'<figure><img alt="{html.escape(caption)}" src="data:image/jpeg;base64,'
                          f'{base64.b64encode(jpeg).decode()}"><figcaption>{html.escape(caption)}'
                          "</figcaption></figure>" for caption, jpeg in stills)
        parts.append(_section("Frames with the overlay", f'<div class="stills">{figures}</div>'))
    return _page(f"Tracks: {title}", parts)


def still_frames(stats: TrackStats, count: int) -> list[int]:
    """Which frame positions to draw: ``count`` frames spread evenly over those with people (over
    all frames when none has people), the most crowded frame among them."""
    frames = np.flatnonzero(stats.people_per_frame > 0)
    if frames.size == 0:
        frames = np.arange(len(stats.people_per_frame))
    if frames.size == 0 or count < 1:
        return []
    chosen = sorted({int(f) for f in frames[np.linspace(0, frames.size - 1, count).round().astype(int)]})
    crowded = int(np.argmax(stats.people_per_frame))
    if crowded not in chosen:  # the nearest spread frame gives way to the most crowded one
        chosen[min(range(len(chosen)), key=lambda i: abs(chosen[i] - crowded))] = crowded
    return sorted(set(chosen))


def _stills(video: PoseTrackVideo, video_path, stats: TrackStats, count: int) -> list[tuple[str, bytes]]:
    """(caption, JPEG) for the chosen frames, drawn with the overlay."""
    import cv2

    from .render import draw_poses
    from .video import frames_for_posetrack, open_frames

    wanted = still_frames(stats, count)
    if Path(video_path).is_dir() and video.images and all(i.file_name for i in video.images):
        source = frames_for_posetrack(video_path, video)
        index_of = list(range(len(video)))
    else:
        source = open_frames(video_path)
        index_of = frame_indices(video)  # a run over a frame range starts past frame 0
    position_of = {index_of[k]: k for k in wanted}
    out = []
    with source:
        source.select(min(position_of), max(position_of) + 1)
        for index, image in source:
            k = position_of.get(index)
            if k is None:
                continue
            drawn = draw_poses(image, video.poses[k])
            scale = min(1.0, _STILL_WIDTH / drawn.shape[1])
            if scale < 1:
                drawn = cv2.resize(drawn, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, 85])
            ids = sorted(int(i) for i in video.poses[k].track_ids if i >= 0)
            out.append((f"frame {index}: {len(video.poses[k])} people, ids {', '.join(map(str, ids)) or '-'}",
                        jpeg.tobytes()))
    if len(out) < len(position_of):
        raise PosetrackError(f"{video_path}: has fewer frames than the tracks file; is it the clip "
                             "the tracks belong to?")
    return out


# ---------------------------------------------------------------------------------------------
# Evaluation page


def is_eval_results(data) -> bool:
    """Whether ``data`` is the results dict of ``posetrack eval --json``."""
    return isinstance(data, dict) and all(k in data for k in _EVAL_KEYS)


def write_eval_report(results: dict, out_path, title: str = "PoseTrack evaluation") -> None:
    """Write the HTML page of ``posetrack eval`` results (the dict ``eval --json`` writes)."""
    _write_page(out_path, eval_page(results, title=title))


def eval_page(results: dict, *, title: str) -> str:
    """The HTML of an evaluation page: totals, per-joint AP and MOTA as bars, error counts per
    joint, HOTA when the results have it, and the per-sequence table when they have one."""
    if not is_eval_results(results):
        raise PosetrackError("not the results of posetrack eval (expected the keys "
                             f"{', '.join(_EVAL_KEYS)})")
    total = _total
    summary = [("AP (mAP, PCKh@0.5)", _pct(total(results.get("ap")))),
               ("MOTA", _pct(total(results.get("mota")))),
               ("MOTP", _pct(total(results.get("motp")))),
               ("precision", _pct(total(results.get("precision")))),
               ("recall", _pct(total(results.get("recall")))),
               ("evaluated frames", results.get("evaluated_frames"))]
    hota = results.get("hota")
    if hota is not None:
        summary.insert(2, ("HOTA", _pct(_hota_total(hota))))
    parts = [_section("Summary", _table(["", ""], summary, header=False))]
    groups = [g for g in (results.get("ap") or {}) if g != "total"]
    if groups:
        rows = [(name, *(_pct((results.get(key) or {}).get(g)) for g in [*groups, "total"]))
                for name, key in (("AP", "ap"), ("MOTA", "mota"))]
        parts.append(_section("By joint group", _table(["", *groups, "total"], rows)))
    per_joint = results.get("per_joint") or {}
    parts.append(_section("Per joint", _paragraph(
        "AP and MOTA of each of the 15 evaluated joints, in percent (MOTA can be negative).")
        + _image(_per_joint_png(per_joint), "per-joint AP and MOTA")))
    counts = results.get("counts")
    if counts:
        rows = [(joint, c["misses"], c["switches"], c["false_positives"], c["objects"])
                for joint, c in counts.items()]
        sums = [sum(r[i] for r in rows) for i in range(1, 5)]
        parts.append(_section("Errors", _image(_counts_png(counts), "error counts per joint")
                              + _table(["joint", "misses", "id switches", "false positives", "objects"],
                                       rows + [("all joints", *sums)])))
    else:
        parts.append(_section("Errors", _paragraph("Tracking is not defined for these results "
                                                   "(no sequence has two evaluated frames).")))
    if hota is not None:
        parts.append(_section("HOTA", _hota_section(hota)))
    sequences = results.get("per_sequence")
    if sequences:
        hota_of = (hota.get("per_sequence") if isinstance(hota, dict) else None) or {}
        rows = []
        for name, s in sorted(sequences.items()):
            c = s.get("counts") or {}
            row = [name, _pct(total(s.get("ap"))), _pct(total(s.get("mota"))),
                   _pct(total(s.get("precision"))), _pct(total(s.get("recall"))),
                   *(sum(j[k] for j in c.values()) if c else "-"
                     for k in ("misses", "switches", "false_positives"))]
            if hota_of:
                row.append(_pct(_hota_total(hota_of.get(name))))
            rows.append(row)
        parts.append(_section(f"Per sequence ({len(rows)})", _table(
            ["sequence", "AP", "MOTA", "precision", "recall", "misses", "id switches",
             "false positives"] + (["HOTA"] if hota_of else []), rows)))
    return _page(title, parts)


def _hota_section(hota) -> str:
    """HOTA's totals (HOTA, DetA, AssA, ...) and its per-joint numbers as a table, when the
    results have the layout of ``eval --json``'s "hota"; any other layout as a flat table."""
    totals = hota.get("total") if isinstance(hota, dict) else None
    per_joint = hota.get("per_joint") if isinstance(hota, dict) else None
    if not (isinstance(totals, dict) and isinstance(per_joint, dict)):
        return _table(["measure", "value"], _flatten(hota))
    measures = list(totals)
    joints = list(next(iter(per_joint.values()), {}))
    rows = [(joint, *(_pct((per_joint.get(m) or {}).get(joint)) for m in measures)) for joint in joints]
    rows.append(("total", *(_pct(totals[m]) for m in measures)))
    note = _paragraph("Keypoint HOTA (PoseTrack21), percent, averaged over the localisation "
                      "thresholds.")
    return note + _table(["joint", *measures], rows)


def _total(group):
    return group.get("total") if isinstance(group, dict) else None


def _hota_total(hota):
    if isinstance(hota, (int, float)):
        return hota
    if isinstance(hota, dict):
        for key in ("total", "hota", "HOTA"):
            value = hota.get(key)
            if isinstance(value, (int, float)):
                return value
            if isinstance(value, dict):
                return _hota_total(value)
    return None


def _flatten(value, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts -> (dotted key, formatted value) rows."""
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, (list, tuple)):
        return [(prefix, ", ".join(_pct(v) if isinstance(v, float) else str(v) for v in value))]
    return [(prefix or "value", _pct(value) if isinstance(value, float) else str(value))]


def _pct(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}" if isinstance(value, (int, float)) else str(value)


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib's object interface: no pyplot, no global state)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _rgb(track_id: int):
    from .render import track_color

    b, g, r = track_color(track_id)
    return r / 255, g / 255, b / 255


def _timeline_png(stats: TrackStats, frames: int) -> bytes:
    ids = sorted(stats.presence, key=lambda i: (stats.presence[i][0], i))
    rows = max(len(ids), 1)
    figure = _figure(10, min(1.2 + 0.16 * rows, 40))
    ax = figure.add_subplot()
    numbers = stats.frame_numbers
    for row, track_id in enumerate(ids):
        ax.broken_barh([(numbers[start] - 0.5, length) for start, length in runs(stats.presence[track_id])],
                       (row - 0.4, 0.8), facecolors=[_rgb(track_id)], edgecolor="none")
    first = int(numbers[0]) if frames else 0
    ax.set_xlim(first - 0.5, first + max(frames, 1) - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    step = max(1, math.ceil(rows / 60))  # at most about 60 labels
    ax.set_yticks(range(0, len(ids), step), [str(ids[r]) for r in range(0, len(ids), step)], fontsize=7)
    ax.set_xlabel("frame")
    ax.set_ylabel("track id")
    ax.grid(axis="x", alpha=0.3)
    if not ids:
        ax.text(0.5, 0.5, "no tracked people", transform=ax.transAxes, ha="center", va="center")
    return _png(figure)


def _lengths_png(stats: TrackStats) -> bytes:
    from matplotlib.ticker import MaxNLocator

    figure = _figure(10, 3.2)
    left, right = figure.subplots(1, 2)
    lengths = np.array(list(stats.lengths.values()))
    if lengths.size:
        left.hist(lengths, bins=min(30, max(1, int(lengths.max()))), color="#4c72b0")
    left.set_xlabel("frames a track id is present")
    left.set_ylabel("track ids")
    left.set_title("Track lengths")
    right.plot(stats.frame_numbers, stats.people_per_frame, color="#dd8452", linewidth=1.2,
               drawstyle="steps-mid")
    for ax in (left, right):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("frame")
    right.set_ylabel("people")
    right.set_ylim(bottom=0)
    right.set_title("People per frame")
    right.grid(alpha=0.3)
    return _png(figure)


def _timing_png(timing: dict) -> bytes:
    figure = _figure(7, 0.4 + 0.35 * len(timing))
    ax = figure.add_subplot()
    stages = list(timing)
    ax.barh(stages, [timing[s] for s in stages], color="#55a868")
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per frame")
    for y, stage in enumerate(stages):
        ax.text(timing[stage], y, f" {timing[stage]:.1f}", va="center", fontsize=8)
    return _png(figure)


def _per_joint_png(per_joint: dict) -> bytes:
    ap = per_joint.get("ap") or {}
    mota = per_joint.get("mota") or {}
    joints = list(ap or mota)
    figure = _figure(10, 3.6)
    ax = figure.add_subplot()
    x = np.arange(len(joints))
    width = 0.4

    def as_numbers(values):
        return [np.nan if values.get(j) is None else values[j] for j in joints]
    ax.bar(x - width / 2, as_numbers(ap), width, label="AP", color="#4c72b0")
    if mota:
        ax.bar(x + width / 2, as_numbers(mota), width, label="MOTA", color="#c44e52")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [j.replace("_", " ") for j in joints], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("percent")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(figure)


def _counts_png(counts: dict) -> bytes:
    joints = list(counts)
    figure = _figure(10, 3.4)
    ax = figure.add_subplot()
    bottom = np.zeros(len(joints))
    for key, label, color in (("misses", "misses", "#8172b3"), ("switches", "id switches", "#c44e52"),
                              ("false_positives", "false positives", "#ccb974")):
        values = np.array([counts[j][key] for j in joints], float)
        ax.bar(joints, values, bottom=bottom, label=label, color=color)
        bottom += values
    ax.set_xticks(range(len(joints)), [j.replace("_", " ") for j in joints], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("count")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(figure)


# ---------------------------------------------------------------------------------------------
# HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
h3 { font-size: 1em; margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; }
.stills { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #ccc; }
figcaption { font-size: .85em; color: #555; }
"""


def _page(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(sections) + "\n</body>\n</html>\n")


def _section(title: str, body: str) -> str:
    return f"<section>\n<h2>{html.escape(title)}</h2>\n{body}\n</section>"


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _image(png: bytes, alt: str) -> str:
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(head, rows, header: bool = True) -> str:
    def cell(value, tag="td"):
        numeric = isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value))
        css = ' class="n"' if numeric and tag == "td" else ""
        return f"<{tag}{css}>{html.escape(_text(value))}</{tag}>"
    lines = ["<table>"]
    if header:
        lines.append("<tr>" + "".join(cell(h, "th") for h in head) + "</tr>")
    lines += ["<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows]
    lines.append("</table>")
    return "\n".join(lines)


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _write_page(out_path, page: str) -> None:
    with atomic_write(out_path, "w", encoding="utf-8") as handle:
        handle.write(page)

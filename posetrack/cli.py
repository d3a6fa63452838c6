"""The command-line interface: parse options, build configs, call one library function.

Exit codes, each with one line on stderr (never a traceback for a user's mistake):

* 0: success;
* 1: bad input or settings (``PosetrackError``: a file, a value, an output that cannot be written);
* 2: a usage error (unknown option, missing argument, a value of the wrong type), as click and
  POSIX tools do; the line ends with the command's ``--help`` hint;
* 130: interrupted (Ctrl-C); outputs being written are discarded, existing files kept.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .errors import PosetrackError

EXIT_INTERRUPTED = 130


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PosetrackError as err:
            raise click.ClickException(str(err)) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """click's main, with every error as one line (see the module docstring)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as err:
            hint = ""
            if err.ctx is not None:
                hint = f"; see '{err.ctx.command_path} {max(err.ctx.help_option_names, key=len)}'"
            _fail(f"{err.format_message().rstrip('.')}{hint}", err.exit_code)
        except click.ClickException as err:
            _fail(err.format_message(), err.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _fail("interrupted; outputs in progress were discarded", EXIT_INTERRUPTED)
        except BrokenPipeError:  # output piped into `head` and the like
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int):
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def _quiet() -> bool:
    """Whether -q was given: no progress bars and no summaries, only warnings and errors."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("quiet"))


def _say(text: str, err: bool = False) -> None:
    """Print a summary line unless -q (on standard error with ``err``)."""
    if not _quiet():
        click.echo(text, err=err)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more detail (debug level).")
@click.option("-q", "--quiet", is_flag=True,
              help="Only warnings and errors: no progress bars, no summaries.")
@click.version_option(package_name="posetrack")
@click.pass_context
def main(ctx, verbose: bool, quiet: bool) -> None:
    """Multi-person pose tracking in video, and PoseTrack evaluation.

    Exit codes: 0 success, 1 bad input or settings, 2 usage error, 130 interrupted.
    """
    ctx.obj = {"quiet": quiet}
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")


# ---------------------------------------------------------------------------------------------
# posetrack track

from .config import GroupedCommand, config_options, pop_config  # noqa: E402
from .smoothing import SmoothingConfig  # noqa: E402
from .tracker import TrackerConfig  # noqa: E402


@main.command(cls=GroupedCommand)
@click.argument("poses", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output tracks file (.json: PoseTrack 2018, .csv: one row per person and frame).")
@click.option("--frames", type=click.Path(exists=True),
              help="The video or frame folder the poses come from; its optical flow (OpenCV DIS) "
                   "moves each track's joints into the next frame before matching. Without it "
                   "the tracker assumes no motion.")
@click.option("--format", "out_format", type=click.Choice(["posetrack18", "csv", "csv-joints"]),
              help="Output format; default: from the extension of --out.")
@config_options(TrackerConfig, group="Tracker settings")
def track(poses, out_path, frames, out_format, **options):
    """Re-run tracking alone on poses already computed.

    POSES is a PoseTrack 2018 (or 2017) file; its track ids, if any, are ignored and replaced.
    """
    from .fileio import check_outputs
    from .formats import read_posetrack, write_tracks
    from .retrack import flows_between_frames, retrack

    config = pop_config(TrackerConfig, options)
    check_outputs([(out_path, "file" if out_format else "tracks")], inputs=[poses, frames])
    video = read_posetrack(poses)
    flows = None
    if frames:
        from .flow import make_flow
        from .video import open_frames

        source = open_frames(frames)
        if len(source) != len(video):
            raise PosetrackError(f"{frames}: has {len(source)} frames but {poses} has {len(video)}")
        flows = flows_between_frames(source, make_flow("dis"))
    tracked = retrack(video, config, flows)
    write_tracks(out_path, tracked, out_format)
    num_tracks = len({int(i) for p in tracked.poses for i in p.track_ids})
    num_people = sum(len(p) for p in tracked.poses)
    _say(f"{len(tracked)} frames, {num_people} poses, {num_tracks} tracks -> {out_path}")


@main.command(cls=GroupedCommand)
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.argument("tracks", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The overlay video to write (.mp4, .avi, .mov, .mkv or .m4v).")
@click.option("--min-joint-score", type=float, default=None,
              help="Hide joints scoring below this (and their limbs). Higher: only confident "
                   "joints, fewer wrong limbs, more gaps. Default: draw every joint the file has.")
@config_options(SmoothingConfig, group="Smoothing settings")
def render(input_path: str, tracks: str, out_path: str, min_joint_score: float | None,
           **options) -> None:
    """Draw the tracks of TRACKS (PoseTrack 2018 JSON) over INPUT (a video or a frame folder).

    Skeletons, boxes and track ids are drawn with one colour per track id. Frames pair by order
    (for a frame folder: by file name when TRACKS names every frame).
    """
    from .render import render_overlay

    smoothing = pop_config(SmoothingConfig, options)
    smoothing = smoothing if smoothing.enabled else None
    written = render_overlay(input_path, tracks, out_path, min_joint_score=min_joint_score,
                             smoothing=smoothing, progress=not _quiet())
    _say(f"wrote {out_path} ({written} frames)")


# ---------------------------------------------------------------------------------------------
# posetrack weights

_WEIGHTS_DIR_OPTION = click.option(
    "--weights-dir", type=click.Path(file_okay=False), default=None,
    help="The weights cache folder. Default: $POSETRACK_WEIGHTS_DIR, else ~/.cache/posetrack/weights "
         "(under $XDG_CACHE_HOME when set).")


@main.group("weights")
def weights_group() -> None:
    """The known model weights: list them, download them into the cache."""


@weights_group.command("list")
@_WEIGHTS_DIR_OPTION
def weights_list(weights_dir: str | None) -> None:
    """Show every known model: name, kind, size, hash, whether it is cached, and its URL."""
    from .weights import cache_dir, list_models

    rows = [("NAME", "KIND", "SIZE", "SHA256", "CACHED", "URL")]
    for status in list_models(weights_dir):
        info = status.info
        rows.append((info.name, info.kind, info.size_text, info.hash_text,
                     "yes" if status.cached else "no", info.url))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    click.echo(f"\nweights folder: {cache_dir(weights_dir)}")


_MIRROR_OPTION = click.option(
    "--weights-mirror", metavar="URL", default=None,
    help="Base URL of a mirror holding the weights files under their published names, tried "
         "before the publisher (for when its host is down). Default: $POSETRACK_WEIGHTS_MIRROR.")


@weights_group.command("download")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@_WEIGHTS_DIR_OPTION
@_MIRROR_OPTION
@click.option("--force", is_flag=True, help="Download again even if the file is cached.")
def weights_download(names: tuple[str, ...], weights_dir: str | None, weights_mirror: str | None,
                     force: bool) -> None:
    """Download known models into the weights folder and check their hashes.

    A file already cached is checked against its published hash instead. Every NAME is tried
    and reported on its own line; the exit code is 1 if any failed.
    """
    from .weights import cache_dir, download, model_info, verify

    failed = 0
    for name in names:
        try:
            info = model_info(name)
            path = cache_dir(weights_dir) / info.file
            if path.is_file() and not force:
                digest = verify(path, info.name)
                checked = "hash ok" if info.sha256 or info.sha256_prefix else f"no published hash, sha256 {digest}"
                _say(f"{info.name}: already cached at {path} ({checked})")
                continue
            path = download(info.name, weights_dir, force=force, mirror=weights_mirror,
                            progress=not _quiet())
            _say(f"{info.name}: {path}")
        except PosetrackError as err:
            failed += 1
            click.echo(f"Error: {' '.join(str(err).split())}", err=True)
    if failed:
        sys.exit(1)


@main.command("eval")
@click.option("--gt", "gt_path", required=True, type=click.Path(),
              help="Ground-truth folder (one PoseTrack21, 2018 or 2017 JSON per sequence), or one file.")
@click.option("--pred", "pred_path", required=True, type=click.Path(),
              help="Predictions: a folder with a file of the same name per GT file, or one file.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Also write the numbers (percent) to this JSON file.")
@click.option("--per-sequence", is_flag=True,
              help="Add each sequence's numbers to the JSON (HOTA's under hota.per_sequence).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write an HTML page of the results (per-joint AP and MOTA as bars, error "
                   "counts, the per-sequence table); self-contained, opens offline.")
@click.option("--metric", type=click.Choice(["poseval", "hota", "all"]), default="poseval", show_default=True,
              help="poseval: mAP and MOTA at PCKh@0.5 (PoseTrack 2017/2018 papers). hota: "
                   "PoseTrack21's keypoint HOTA, detection (DetA) and association (AssA) apart over "
                   "19 thresholds, so tracker changes show in AssA. all: both, one read of the files.")
@click.option("--keep-last-frame", is_flag=True,
              help="Count the last evaluated frame of each sequence in MOTA (the official tool "
                   "leaves it out). Not comparable with published numbers.")
@click.option("--real-empty-frames", is_flag=True,
              help="Count the real misses / false positives of a frame without predictions (or "
                   "without GT left) instead of the official one placeholder miss and false positive "
                   "per joint. Not comparable with published numbers.")
def eval_command(gt_path: str, pred_path: str, json_path: str | None, per_sequence: bool,
                 html_path: str | None, metric: str, keep_last_frame: bool,
                 real_empty_frames: bool) -> None:
    """Score predictions against PoseTrack ground truth: mAP and MOTA as the official poseval,
    keypoint HOTA as the PoseTrack21 kit."""
    from .evaluation import EvalOptions, evaluate
    from .evaluation.report import format_table, result_to_json
    from .fileio import check_outputs, write_json

    check_outputs([(json_path, "results"), (html_path, "page")], inputs=[gt_path, pred_path])
    metrics = ("poseval", "hota") if metric == "all" else (metric,)
    if html_path and "poseval" not in metrics:
        raise PosetrackError("--html shows poseval's AP and MOTA (and HOTA beside them): use --metric all")
    options = EvalOptions(drop_last_frame=not keep_last_frame,
                          empty_frame_placeholders=not real_empty_frames)
    result = evaluate(gt_path, pred_path, options, metrics=metrics)
    click.echo(format_table(result))
    if json_path:
        write_json(json_path, result_to_json(result, per_sequence), indent=2)
        _say(f"results written to {json_path}")
    if html_path:
        from .report import write_eval_report

        write_eval_report(result_to_json(result, per_sequence=True), html_path,
                          title=f"PoseTrack evaluation: {pred_path}")
        _say(f"page written to {html_path}")


@main.command("report")
@click.argument("results", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--video", "video_path", type=click.Path(exists=True),
              help="The video or frame folder the tracks belong to: a few frames are shown with "
                   "their overlay.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The HTML page to write (self-contained: opens offline).")
def report_command(results: str, video_path: str | None, out_path: str) -> None:
    """Write an HTML page about FILE: a PoseTrack tracks file (timeline of the track ids, track
    lengths, people per frame, the run's settings and time per stage, frames with the overlay),
    or the results JSON of `posetrack eval --json` (the page of `eval --html`)."""
    from .fileio import check_outputs, read_json
    from .report import is_eval_results, write_eval_report, write_tracks_report

    check_outputs([(out_path, "page")], inputs=[results, video_path])
    data = read_json(results)
    if is_eval_results(data):
        if video_path:
            raise PosetrackError("--video goes with a tracks file, not with evaluation results")
        write_eval_report(data, out_path, title=f"PoseTrack evaluation: {Path(results).name}")
        _say(f"page written to {out_path}")
        return
    stats = write_tracks_report(results, out_path, video_path)
    _say(f"{len(stats.people_per_frame)} frames, {len(stats.presence)} track ids; "
         f"page written to {out_path}")


# ---------------------------------------------------------------------------------------------
# posetrack export-onnx


@main.command("export-onnx")
@click.argument("checkpoint")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write.")
@click.option("--input-size", default=None, metavar="HxW",
              help="Crop size, e.g. 256x192 or 384x288. Default: from the checkpoint's file name, "
                   "else 256x192.")
@click.option("--batch", default="dynamic", show_default=True,
              help="'dynamic' (all boxes of a frame in one run) or a fixed batch size, e.g. 1.")
@click.option("--joints", type=click.Choice(["coco17", "posetrack17"]), default=None,
              help="The checkpoint's joint order. Default: the dataset an mmpose checkpoint "
                   "names in its meta, else posetrack17 when the file name says posetrack, else coco17.")
@click.option("--weights-dir", type=click.Path(file_okay=False), default=None,
              help="The weights cache folder, for a registered model name.")
def export_onnx_command(checkpoint: str, out_path: str, input_size: str | None, batch: str,
                        joints: str | None, weights_dir: str | None) -> None:
    """Write a SimpleBaseline CHECKPOINT (a file or a registered name) to ONNX.

    The file runs on the ONNX Runtime backend: pass it wherever a pose model is asked for.
    """
    from .fileio import check_outputs
    from .pose import resolve_weights
    from .posenet import export_onnx, load_posenet

    try:  # export_onnx creates the folder
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PosetrackError(f"{out_path}: cannot create its folder ({err.strerror or err})") from None
    check_outputs([(out_path, "onnx")], inputs=[checkpoint])

    size = None
    if input_size is not None:
        parts = input_size.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise click.BadParameter(f"expected HxW such as 256x192, got {input_size!r}",
                                     param_hint="--input-size")
        size = (int(parts[0]), int(parts[1]))
    if batch == "dynamic":
        batch_size = None
    elif batch.isdigit() and int(batch) > 0:
        batch_size = int(batch)
    else:
        raise click.BadParameter(f"expected 'dynamic' or a positive integer, got {batch!r}",
                                 param_hint="--batch")
    model = load_posenet(resolve_weights(checkpoint, weights_dir), input_size_hw=size,
                         joint_layout=joints)
    export_onnx(model, out_path, batch_size=batch_size)
    config = model.config
    _say(f"wrote {out_path}: SimpleBaseline ResNet-{config.depth}, {config.num_joints} "
               f"joints ({config.joint_layout}), input {config.input_size_hw[0]}x"
               f"{config.input_size_hw[1]}, batch {batch}")


# ---------------------------------------------------------------------------------------------
# posetrack quantize-onnx


@main.command("quantize-onnx")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The int8 .onnx file to write (never the input).")
@click.option("--calibration", required=True, type=click.Path(exists=True),
              help="A video or frame folder like the footage the model will see; crops cut "
                   "from it calibrate the int8 activation ranges.")
@click.option("--detections", type=click.Path(exists=True, dir_okay=False), default=None,
              help="COCO detection results for --calibration (image_id = frame index); "
                   "without it the detector finds the people.")
@click.option("--detector", default="yolo11n", show_default=True,
              help="Detector for --calibration when --detections is not given.")
@click.option("--crops", type=click.IntRange(1, 100000), default=256, show_default=True,
              help="Calibration crops (each box and its mirror image count as two). More: "
                   "steadier activation ranges, slower calibration (about 0.1 s per crop for "
                   "a ResNet-50 on a CPU).")
@click.option("--every", type=click.IntRange(1, 100000), default=10, show_default=True,
              help="Use every N-th frame, so the crops come from more of the clip.")
@click.option("--weights-dir", type=click.Path(file_okay=False), default=None,
              help="The weights cache folder, for a registered detector name.")
def quantize_onnx_command(model: str, out_path: str, calibration: str, detections: str | None,
                          detector: str, crops: int, every: int, weights_dir: str | None) -> None:
    """Write an int8 copy of an ONNX pose MODEL for faster runs on a CPU.

    Static quantisation with ONNX Runtime: int8 weights (per output channel), uint8
    activations calibrated on crops of real people from --calibration. See README "Speed" for
    the measured speed-up and accuracy cost.
    """
    from .pose import OnnxBackend, calibration_crops
    from .posenet import quantize_onnx
    from .video import open_frames

    from .fileio import check_outputs

    check_outputs([(out_path, "onnx")], inputs=[model, calibration, detections])
    size = OnnxBackend(model).input_size_hw
    if detections is not None:
        from .detection import PrecomputedDetections

        find = PrecomputedDetections.from_file(detections, min_score=0.25)
    else:
        from .detection import YoloDetector

        find = YoloDetector(detector, weights_dir=weights_dir)

    def frames():
        with open_frames(calibration) as source:
            for index, image in source:
                if index % every == 0:
                    yield image, find(image, index).boxes_xyxy

    written = quantize_onnx(model, out_path, calibration_crops(frames(), size, crops))
    click.echo(f"wrote {written}: int8 weights and activations, calibrated on up to {crops} "
               f"crops of {calibration}")


# ---------------------------------------------------------------------------------------------
# posetrack run / batch

from .cluster import RayConfig  # noqa: E402
from .config import dump_settings, pop_settings, renamed_options, settings_options  # noqa: E402
from .run import RENAMED_KEYS, RENAMED_OPTIONS, RunSettings  # noqa: E402


def _run_options(command):
    """The options run and batch share: every stage's settings (grouped in --help), --config,
    --print-config, --format, --progress."""
    options = [
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                     help="YAML file with any of the settings below, one section per stage "
                          "(e.g. tracker: {memory_frames: 5}); command-line options override "
                          "it. --print-config writes a complete one."),
        click.option("--print-config", is_flag=True,
                     help="Print the effective settings (defaults, --config file and options "
                          "merged) as YAML for --config, and stop."),
        click.option("--format", "out_format", type=click.Choice(["posetrack18", "csv", "csv-joints", "jsonl"]),
                     help="Output format; default: from the extension (.json, .csv, .jsonl)."),
        click.option("--start", type=click.IntRange(0), default=0,
                     help="First frame to track (0-based; frame indices in the output stay those "
                          "of the whole input). [default: 0]"),
        click.option("--end", type=click.IntRange(1), default=None,
                     help="Stop before this frame (start <= frame < end). [default: the end]"),
        click.option("--max-frames", type=click.IntRange(1), default=None,
                     help="Track at most this many frames (e.g. of a camera). [default: all]"),
        click.option("--progress/--no-progress", default=True, help="Show a progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    command = renamed_options(RunSettings, RENAMED_OPTIONS)(command)
    return settings_options(RunSettings)(command)


def _settings(options: dict) -> RunSettings:
    """The run settings from the --config file (if any) overridden by the options given; the
    used keys are removed from ``options``."""
    return pop_settings(RunSettings, options, options.pop("config_file", None), RENAMED_KEYS,
                        RENAMED_OPTIONS)


def _print_config(settings: RunSettings) -> None:
    click.echo("# posetrack run/batch settings; use with --config FILE", nl=True)
    click.echo(dump_settings(settings), nl=False)


@main.command(cls=GroupedCommand)
@click.argument("input_path", metavar="INPUT")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Tracks file: .json (PoseTrack 2018), .csv, or .jsonl (JSON Lines: one line per "
                   "frame, written as it is tracked); - writes JSON Lines to standard output.")
@click.option("--render", "render_path", type=click.Path(dir_okay=False),
              help="Also write an overlay video (skeletons, boxes, track ids) here: .mp4 (H.264) "
                   "or .webm (VP9), which browsers play.")
@click.option("--show", is_flag=True,
              help="Show the overlay in a window while tracking (q or Esc stops, keeping what was "
                   "tracked); where there is no display, one warning and no window.")
@click.option("--annotations", type=click.Path(exists=True, dir_okay=False),
              help="For a PoseTrack frame folder: its annotation file. The output then has the "
                   "same images (names, ids, count), so `posetrack eval` pairs it with it.")
@_run_options
def run(input_path, out_path, render_path, show, annotations, progress, out_format, start, end,
        max_frames, print_config, **options):
    """Track the people in INPUT: a video file, a folder of frames, a camera index (0) or a
    stream URL (rtsp://, http(s)://). Ctrl-C on a camera or stream stops and keeps what was
    tracked."""
    config_file = options.get("config_file")
    settings = _settings(options)
    if print_config:
        return _print_config(settings)
    from .fileio import check_outputs
    from .run import FrameRange, clip_outputs, load_models, run_clip

    # before the models load: a bad output path fails at once, not after minutes of work
    check_outputs(clip_outputs(out_path, render_path, out_format),
                  inputs=[input_path, annotations, settings.detection.detections, config_file,
                          settings.models.pose_model, settings.models.detector])
    models = load_models(settings)
    summary = run_clip(input_path, out_path, models, settings, annotations=annotations,
                       detections_file=settings.detection.detections, out_format=out_format,
                       render_path=render_path, progress=progress and not _quiet(),
                       frames=FrameRange(start, end, max_frames), show=show)
    to_stderr = out_path == "-"  # standard output holds the JSON Lines and nothing else
    for line in summary.lines():
        _say(line, err=to_stderr)
    if render_path:
        _say(f"overlay -> {render_path}", err=to_stderr)


@main.command(cls=GroupedCommand)
@click.argument("clips_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (created if missing): one <clip>.json per clip, usable as "
                   "`posetrack eval --pred`.")
@click.option("--annotations", type=click.Path(exists=True, file_okay=False),
              help="Folder of PoseTrack annotation files, one <clip>.json per frame-folder clip "
                   "(see run --annotations).")
@click.option("--render", "render_dir", type=click.Path(file_okay=False),
              help="Also write one overlay video per clip into this folder (created if missing): "
                   "<clip>.mp4, H.264.")
@click.option("--engine", type=click.Choice(["builtin", "ray"]), default="builtin", show_default=True,
              help="builtin: one clip after the other in this process. ray: clips spread over Ray "
                   "workers, one per GPU (or per --cpus-per-worker cores) of this machine or of "
                   "the cluster at --address (pip install 'posetrack[ray]').")
@config_options(RayConfig, prefix="ray__", group="Ray engine (--engine ray)")
@_run_options
def batch(clips_dir, out_dir, annotations, render_dir, progress, out_format, start, end, max_frames,
          print_config, engine, **options):
    """Track every video and frame folder in CLIPS_DIR; rerun to resume after a stop."""
    ray_config = pop_config(RayConfig, options, prefix="ray__")
    settings = _settings(options)
    if print_config:
        return _print_config(settings)
    if engine != "ray" and ray_config != RayConfig():
        raise PosetrackError("--address, --workers, --gpus-per-worker, --cpus-per-worker and "
                             "--retries are settings of --engine ray")
    from .run import FrameRange, check_batch_outputs, load_models, run_batch

    for folder in (out_dir, render_dir):
        try:
            if folder is not None:
                Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PosetrackError(f"{folder}: cannot create the output folder ({err.strerror or err})") from None
    check_batch_outputs(clips_dir, out_dir, settings.detection.detections, annotations,
                        out_format, render_dir)  # before the models load
    common = dict(annotations_dir=annotations, out_format=out_format,
                  progress=progress and not _quiet(), render_dir=render_dir,
                  frames=FrameRange(start, end, max_frames),
                  on_clip=lambda s: _say("\n".join(s.lines())))
    if engine == "ray":
        from .cluster import run_batch_ray

        report = run_batch_ray(clips_dir, out_dir, settings, ray_config, **common)
    else:
        report = run_batch(clips_dir, out_dir, load_models(settings), settings, **common)
    _say(f"batch: {len(report.done)} done, {len(report.skipped)} skipped (output already "
         f"there), {len(report.failed)} failed")
    for name, reason in report.failed:
        click.echo(f"  failed: {name}: {reason}", err=True)
    if report.failed:
        raise SystemExit(1)

"""The command-line interface: parse options, build configs, call one library function.

Library code raises PosetrackError for problems a user can fix; here it becomes one line on
stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import logging

import click

from .errors import PosetrackError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PosetrackError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more detail (debug level).")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.version_option(package_name="posetrack")
def main(verbose: bool, quiet: bool) -> None:
    """Multi-person pose tracking in video, and PoseTrack evaluation."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")


# ---------------------------------------------------------------------------------------------
# posetrack track

from .config import config_options, pop_config  # noqa: E402
from .tracker import TrackerConfig  # noqa: E402


@main.command()
@click.argument("poses", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output tracks file (.json: PoseTrack 2018, .csv: one row per person and frame).")
@click.option("--frames", type=click.Path(exists=True),
              help="The video or frame folder the poses come from; its optical flow (OpenCV DIS) "
                   "moves each track's joints into the next frame before matching. Without it "
                   "the tracker assumes no motion.")
@click.option("--format", "out_format", type=click.Choice(["posetrack18", "csv", "csv-joints"]),
              help="Output format; default: from the extension of --out.")
@config_options(TrackerConfig)
def track(poses, out_path, frames, out_format, **options):
    """Re-run tracking alone on poses already computed.

    POSES is a PoseTrack 2018 (or 2017) file; its track ids, if any, are ignored and replaced.
    """
    from .formats import read_posetrack, write_tracks
    from .retrack import flows_between_frames, retrack

    config = pop_config(TrackerConfig, options)
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
    click.echo(f"{len(tracked)} frames, {num_people} poses, {num_tracks} tracks -> {out_path}")


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.argument("tracks", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The overlay video to write (.mp4).")
@click.option("--min-joint-score", type=float, default=None,
              help="Hide joints scoring below this (and their limbs). Higher: only confident "
                   "joints, fewer wrong limbs, more gaps. Default: draw every joint the file has.")
def render(input_path: str, tracks: str, out_path: str, min_joint_score: float | None) -> None:
    """Draw the tracks of TRACKS (PoseTrack 2018 JSON) over INPUT (a video or a frame folder).

    Skeletons, boxes and track ids are drawn with one colour per track id. Frames pair by order
    (for a frame folder: by file name when TRACKS names every frame).
    """
    from .render import render_overlay

    written = render_overlay(input_path, tracks, out_path, min_joint_score=min_joint_score)
    click.echo(f"wrote {out_path} ({written} frames)")


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


@weights_group.command("download")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@_WEIGHTS_DIR_OPTION
@click.option("--force", is_flag=True, help="Download again even if the file is cached.")
def weights_download(names: tuple[str, ...], weights_dir: str | None, force: bool) -> None:
    """Download known models into the weights folder and check their hashes.

    A file already cached is checked against its published hash instead.
    """
    from .weights import cache_dir, download, model_info, verify

    for name in names:
        info = model_info(name)
        path = cache_dir(weights_dir) / info.file
        if path.is_file() and not force:
            digest = verify(path, info.name)
            checked = "hash ok" if info.sha256 or info.sha256_prefix else f"no published hash, sha256 {digest}"
            click.echo(f"{info.name}: already cached at {path} ({checked})")
            continue
        path = download(info.name, weights_dir, force=force)
        click.echo(f"{info.name}: {path}")


@main.command("eval")
@click.option("--gt", "gt_path", required=True, type=click.Path(),
              help="Ground-truth folder (one PoseTrack 2018 or 2017 JSON per sequence), or one file.")
@click.option("--pred", "pred_path", required=True, type=click.Path(),
              help="Predictions: a folder with a file of the same name per GT file, or one file.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Also write the numbers (percent) to this JSON file.")
@click.option("--per-sequence", is_flag=True, help="Add each sequence's numbers to the JSON.")
@click.option("--keep-last-frame", is_flag=True,
              help="Count the last evaluated frame of each sequence in MOTA (the official tool "
                   "leaves it out). Not comparable with published numbers.")
@click.option("--real-empty-frames", is_flag=True,
              help="Count the real misses / false positives of a frame without predictions (or "
                   "without GT left) instead of the official one placeholder miss and false positive "
                   "per joint. Not comparable with published numbers.")
def eval_command(gt_path: str, pred_path: str, json_path: str | None, per_sequence: bool,
                 keep_last_frame: bool, real_empty_frames: bool) -> None:
    """Score predictions against PoseTrack ground truth: mAP and MOTA as the official poseval."""
    from .evaluation import EvalOptions, evaluate
    from .evaluation.report import format_table, result_to_json
    from .fileio import write_json

    options = EvalOptions(drop_last_frame=not keep_last_frame,
                          empty_frame_placeholders=not real_empty_frames)
    result = evaluate(gt_path, pred_path, options)
    click.echo(format_table(result))
    if json_path:
        write_json(json_path, result_to_json(result, per_sequence), indent=2)
        click.echo(f"results written to {json_path}")

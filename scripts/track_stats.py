"""Track statistics of a tracks file, for clips without ground truth (e.g. the crowd clip).

    python scripts/track_stats.py tracks.json [--json out.json]

Prints: frames, mean people per frame, track ids, ids per visible person (ids / mean people per
frame: 1 when everybody keeps one id all clip long and nobody enters), tracks one frame long,
tracks of at most 5 frames, tracks of 100 frames or more. Fewer ids are only better when the
people per frame do not fall.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from posetrack.formats import read_posetrack


def track_stats(path) -> dict:
    video = read_posetrack(Path(path))
    lengths = Counter(int(t) for poses in video.poses for t in poses.track_ids)
    frames = len(video.poses)
    people = sum(len(p) for p in video.poses) / max(frames, 1)
    return {
        "frames": frames,
        "people_per_frame": round(people, 2),
        "tracks": len(lengths),
        "ids_per_person": round(len(lengths) / people, 2) if people else None,
        "one_frame_tracks": sum(n == 1 for n in lengths.values()),
        "tracks_up_to_5_frames": sum(n <= 5 for n in lengths.values()),
        "tracks_100_frames_or_more": sum(n >= 100 for n in lengths.values()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tracks", type=Path)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args(argv)
    stats = track_stats(args.tracks)
    print(", ".join(f"{k} {v}" for k, v in stats.items()))
    if args.json_out:
        args.json_out.write_text(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

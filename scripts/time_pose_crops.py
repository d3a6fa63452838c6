"""CPU time per crop of the pose network: SimpleBaseline ResNet-50 256x192 (torch, random
weights; and the same network exported to ONNX, on ONNX Runtime) and an ONNX model (ONNX
Runtime), at several batch sizes.

Times the network alone (normalised crops in, heatmaps out), after warm-up runs, as the median
of repeated runs (and the best run, a better guide on a machine shared with other jobs), and
prints milliseconds per crop. Flip test doubles the crops per person, so
per person it costs twice these numbers.

    python scripts/time_pose_crops.py [--onnx ../shared/assets/models/mobilenetv2_simplepose_coco17_256x192.onnx]
        [--batches 1 8] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from posetrack.pose import OnnxBackend, TorchBackend
from posetrack.posenet import PoseNetConfig, SimpleBaseline

DEFAULT_ONNX = (Path(__file__).resolve().parents[2] / "shared" / "assets" / "models"
                / "mobilenetv2_simplepose_coco17_256x192.onnx")


def ms_per_crop(run, batch: int, input_hw, warmup: int, repeats: int) -> tuple[float, float]:
    """(median, best) milliseconds per crop over ``repeats`` timed runs."""
    crops = torch.randn(batch, 3, *input_hw)
    for _ in range(warmup):
        run(crops)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(crops)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000 / batch, min(times) * 1000 / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, default=DEFAULT_ONNX)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and ONNX Runtime threads (default: their own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    torch.manual_seed(0)
    model = SimpleBaseline(PoseNetConfig(depth=50, input_size_hw=(256, 192)))
    backend = TorchBackend(model, device="cpu")
    for batch in args.batches:
        rows.append(("torch SimpleBaseline ResNet-50 256x192", batch,
                     ms_per_crop(backend, batch, (256, 192), args.warmup, args.repeats)))
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        print("(onnx not installed: ResNet-50 on ONNX Runtime skipped)")
    else:
        import tempfile

        from posetrack.posenet import export_onnx

        with tempfile.TemporaryDirectory() as folder:
            path = export_onnx(model, Path(folder) / "res50.onnx")
            exported = OnnxBackend(path, device="cpu", threads=args.threads)
            for batch in args.batches:
                rows.append(("onnxruntime SimpleBaseline ResNet-50 256x192 (exported)", batch,
                             ms_per_crop(exported, batch, (256, 192), args.warmup, args.repeats)))
    if args.onnx.is_file():
        onnx = OnnxBackend(args.onnx, device="cpu", threads=args.threads)
        name = f"onnxruntime {args.onnx.name} (batch fixed at {onnx.fixed_batch or 'dynamic'})"
        for batch in args.batches:
            rows.append((name, batch, ms_per_crop(onnx, batch, onnx.input_size_hw, args.warmup,
                                                  args.repeats)))
    else:
        print(f"(no ONNX model at {args.onnx}; skipped)")
    print(f"CPU threads: torch {torch.get_num_threads()}")
    width = max(len(r[0]) for r in rows)
    print(f"{'model':<{width}}  batch  ms/crop (median)  ms/crop (best)")
    for name, batch, (median, best) in rows:
        print(f"{name:<{width}}  {batch:>5}  {median:16.1f}  {best:14.1f}")


if __name__ == "__main__":
    main()

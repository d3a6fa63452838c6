#!/usr/bin/env bash
# The GPU check of issue 14, for the lent GPU machine (one H200; torch 2.11, torchvision 0.26,
# opencv-python-headless, onnxruntime, click, pyyaml, tqdm, scipy there; no network). Prepare it
# here first with `bash scripts/gpu_prepare.sh`, then run it there from the repository root with
# `.gpu` carried:
#
#   bash scripts/gpu_check.sh            (device tool: run, carry [".gpu"], timeout_s 420)
#
# It installs the carried wheels (ultralytics, motmetrics, lap, ...) into /tmp/site, runs the
# CUDA-only tests, then scripts/benchmark.py on the 720p crowd clip looped to FRAMES frames
# (default 500) with the paper's setting: SimpleBaseline ResNet-50 256x192 + flip test, RAFT-small
# at half resolution, YOLO11n (random weights: same time as trained ones) run and timed on every
# frame while the pose stage gets the clip's precomputed boxes (about 20 people per frame);
# --frame-batch K (default 8) against 1 in the same rounds; fp32 and bf16, bf16 also with captured
# CUDA graphs; the sampled flow against the full-size field; YOLO11n-pose + ByteTrack in the fp32
# run. Stage milliseconds, end-to-end fps and GPU memory go to $OUT as JSON (bench_*.json), the
# logs beside them, and a summary table is printed last. Each benchmark has its own time limit so
# the whole stays under 5 minutes.
#
# Locally, a tiny smoke test of the same commands on a CPU (no CUDA tests, small model):
#   PYTHON=.venv/bin/python DEVICE=cpu POSE=resnet18 FLOW=dis DETECTOR= FRAMES=4 WARMUP=1 PRECISIONS=fp32 OUT=/tmp/gc bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check_out}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
POSE=${POSE:-resnet50}
FLOW=${FLOW:-raft-small}
DETECTOR=${DETECTOR-yolo11n}
FRAMES=${FRAMES:-500}
WARMUP=${WARMUP:-20}
K=${K:-8}
PRECISIONS=${PRECISIONS:-fp32 bf16 bf16-graphs}
LIMIT=${LIMIT:-70}  # seconds per benchmark run
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false YOLO_CONFIG_DIR=/tmp/yolo-config

if ls .gpu/whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu/whl/*.whl || { echo "wheel install failed" >&2; exit 1; }
    export PYTHONPATH=$PWD:/tmp/site
else
    echo "no .gpu/whl: using the installed packages" >&2
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
VIDEO=.gpu/assets/openpose_video.avi
DETS=.gpu/assets/openpose_video.json
if [ ! -f "$VIDEO" ]; then VIDEO=../shared/assets/videos/openpose_video.avi; DETS=../shared/assets/detections/openpose_video.json; fi

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1 || true
  "$PY" -c "import torch, torchvision, numpy, cv2; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__, 'cuda', torch.cuda.is_available())"
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

if [ "$DEVICE" != cpu ]; then  # the tests that skip without CUDA
    timeout 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_pose_fast_paths.py tests/test_flow.py \
        -k "cuda or gpu or half" > "$OUT/gpu_tests.log" 2>&1
    echo "CUDA tests: exit $? ($(tail -1 "$OUT/gpu_tests.log"))"
fi

common=(--device "$DEVICE" --pose-model "$POSE" --flow "$FLOW" --flow-scale 0.5 --frames "$FRAMES"
        --warmup "$WARMUP" --repeats 1 --frame-batch "$K" --video "$VIDEO" --detections "$DETS")
[ -n "$DETECTOR" ] && common+=(--detector "$DETECTOR")
for setting in $PRECISIONS; do
    case $setting in
        fp32) extra=(--precision fp32 --variants k1,dense-flow --baselines yolo) ;;
        bf16) extra=(--precision bf16 --variants k1 --baselines none) ;;
        bf16-graphs) extra=(--precision bf16 --cuda-graphs --variants k1 --baselines none) ;;
        *) echo "unknown setting $setting" >&2; continue ;;
    esac
    timeout "$LIMIT" "$PY" scripts/benchmark.py "${common[@]}" "${extra[@]}" \
        --json "$OUT/bench_$setting.json" > "$OUT/bench_$setting.log" 2>&1
    echo "$setting: exit $?"
    tail -12 "$OUT/bench_$setting.log"
done

"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
rows = []
for path in sorted(Path(sys.argv[1]).glob("bench_*.json")):
    r = json.loads(path.read_text())
    stages = " ".join(f"{k} {v:.1f}" for k, v in r["stages_ms"].items())
    rows.append(f"{path.stem[6:]:<12} K={r['frame_batch']} fps {r['fps']:.2f} | {stages} | "
                f"GPU {r['memory']['gpu_peak_allocated_mb'] or 0:.0f} MB | boxes {r['pose_boxes_per_frame']:.1f}")
    for name, v in {**r["variants"], **r["baselines"]}.items():
        if "fps" in v:
            rows.append(f"    {name:<20} fps {v['fps']:.2f} (ours/it {v.get('ours_over_variant', v.get('ours_over_baseline', 0)):.2f})")
        else:
            rows.append(f"    {name:<20} {v}")
print("\n".join(rows) if rows else "no benchmark results")
PY

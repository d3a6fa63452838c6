#!/usr/bin/env bash
# Prepare what scripts/gpu_check.sh needs on the lent GPU machine, here, in the repository root:
# .gpu/whl (wheels of the packages that machine lacks: ultralytics, ultralytics-thop, motmetrics,
# xmltodict, lap; built for its Python 3.12 on x86-64) and .gpu/assets (the 720p crowd clip and its
# detections, which live in ../shared and do not travel). .gpu/ is git-ignored; name it in the
# device run's `carry`. About 5 MB.
#
#   bash scripts/gpu_prepare.sh [SHARED_ASSETS_DIR]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
assets=${1:-../shared/assets}
[ -f "$assets/videos/openpose_video.avi" ] || { echo "no $assets/videos/openpose_video.avi" >&2; exit 1; }
mkdir -p .gpu/whl .gpu/assets
install -m 0644 "$assets/videos/openpose_video.avi" "$assets/detections/openpose_video.json" .gpu/assets/
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .gpu/whl ultralytics==8.4.190 ultralytics-thop==2.2.3 motmetrics==1.4.0 xmltodict==1.0.4 lap==0.5.13
ls -la .gpu/whl .gpu/assets
du -sh .gpu

import os
import tempfile
from pathlib import Path

import pytest

# ultralytics reaches for the network and writes settings when imported: keep it offline and
# writing into a throw-away folder, before any test imports it.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="posetrack-yolo-"))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (sample videos, PoseTrack sample, evaluator fixtures)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared assets not found at {SHARED}")
    return SHARED

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


@pytest.fixture
def http_folder():
    """``serve(folder) -> base URL``: `python -m http.server` serving a folder on 127.0.0.1 (a free
    port), stopped after the test."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def serve(folder):
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                   "--directory", str(folder)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        servers.append(server)
        for _ in range(100):  # up to 10 s for the server to answer
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the test HTTP server did not start")

    servers = []
    yield serve
    for server in servers:
        server.terminate()
        server.wait(timeout=10)

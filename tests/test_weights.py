import functools
import hashlib
import http.server
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from posetrack import weights
from posetrack.cli import main
from posetrack.errors import PosetrackError

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# The manifest


def test_manifest_lists_the_required_models():
    models = weights.known_models()
    for name, kind, layout in [("res50-coco-256x192", "pose", "mmpose"),
                               ("res50-posetrack18-256x192", "pose", "mmpose"),
                               ("raft-small", "flow", "torchvision"),
                               ("raft-large", "flow", "torchvision"),
                               ("yolo11n", "detector", "ultralytics")]:
        assert models[name].kind == kind and models[name].layout == layout
    assert models["res50-coco-256x192"].joints == "coco17"
    assert models["res50-posetrack18-256x192"].joints == "posetrack17"


def test_hash_prefixes_match_the_published_file_names():
    # OpenMMLab and torch.hub put the first hex digits of the sha256 in the file name.
    for info in weights.known_models().values():
        if info.sha256_prefix:
            assert f"-{info.sha256_prefix}" in info.file, info.name
        assert info.url.endswith("/" + info.file), info.name


def test_raft_urls_are_torchvisions():
    tv = pytest.importorskip("torchvision.models.optical_flow")
    models = weights.known_models()
    assert models["raft-small"].url == tv.Raft_Small_Weights.C_T_V2.url
    assert models["raft-large"].url == tv.Raft_Large_Weights.C_T_SKHT_V2.url


def test_repository_copy_of_the_manifest_is_identical():
    copy = REPO / "weights" / "manifest.json"
    if not copy.is_file():
        pytest.skip("not a source checkout (no weights/manifest.json)")
    packaged = REPO / "posetrack" / weights.MANIFEST_NAME
    assert json.loads(copy.read_text()) == json.loads(packaged.read_text()), (
        "weights/manifest.json differs from posetrack/weights_manifest.json: copy the package's "
        "file over it")


@pytest.mark.parametrize("change, problem", [
    ({"kind": "segmenter"}, "kind must be one of"),       # unknown kind
    ({"sha256_prefix": "XYZ"}, "lower-case hex"),          # not hex
    ({"sha256": "ab" * 32, "sha256_prefix": "cd"}, "does not start with"),
    ({"extra": 1}, "unknown keys ['extra']"),              # typo'd key
])
def test_bad_manifest_entries_are_rejected(change, problem):
    entry = dict(weights.known_models()["raft-small"].__dict__, input_hw=None)
    with pytest.raises(PosetrackError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        weights.parse_manifest({"format": 1, "models": [dict(entry, **change)]})


def test_duplicate_names_are_rejected():
    entry = dict(weights.known_models()["raft-small"].__dict__, input_hw=None)
    with pytest.raises(PosetrackError, match="appears twice"):
        weights.parse_manifest({"format": 1, "models": [entry, entry]})


# ---------------------------------------------------------------------------------------------
# Resolving names and paths


def test_existing_file_is_returned_as_is(tmp_path):
    path = tmp_path / "my.pt"
    path.write_bytes(b"x")
    assert weights.resolve(str(path)) == path
    assert weights.resolve(path, kind="pose") == path  # a path is never checked for kind


def test_missing_path_says_so(tmp_path):
    with pytest.raises(PosetrackError, match="no such weights file"):
        weights.resolve(str(tmp_path / "nope.pt"))


@pytest.mark.parametrize("spec, kind, hint", [
    ("raft-smal", None, "Did you mean 'raft-small'?"),     # typo
    ("yolo11", "detector", "Did you mean 'yolo11n'?"),
    ("zzzz", None, "Known: res50-coco-256x192"),           # nothing close: the list
])
def test_unknown_name_lists_known_and_closest(spec, kind, hint, tmp_path):
    with pytest.raises(PosetrackError) as err:
        weights.resolve(spec, tmp_path, kind=kind)
    assert hint in str(err.value)


def test_wrong_kind_is_an_error(tmp_path):
    with pytest.raises(PosetrackError, match="'raft-small' is a flow model, not a detector model"):
        weights.resolve("raft-small", tmp_path, kind="detector")


def test_cached_file_is_used_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    yolo = weights.known_models()["yolo11n"]
    info = weights.ModelInfo(**{**yolo.__dict__, "sha256": None, "size_bytes": None})
    monkeypatch.setattr(weights, "known_models", lambda: {info.name: info})
    cached = tmp_path / info.file
    cached.write_bytes(b"weights")
    assert weights.resolve("yolo11n", tmp_path) == cached
    assert weights.resolve("yolo11n.pt", tmp_path) == cached  # the published file name works too


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_WEIGHTS_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "xdg" / "posetrack" / "weights"
    monkeypatch.setenv(weights.ENV_WEIGHTS_DIR, str(tmp_path / "env"))
    assert weights.cache_dir() == tmp_path / "env"
    assert weights.cache_dir(tmp_path / "arg") == tmp_path / "arg"


# ---------------------------------------------------------------------------------------------
# Downloading (from a local HTTP server)


@pytest.fixture()
def server(tmp_path):
    """Serve tmp_path/served over HTTP on localhost; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _fake_model(monkeypatch, url, content=None, **fields):
    """Replace the manifest by one model 'fake-pose' served at url."""
    info = weights.ModelInfo(
        name="fake-pose", kind="pose", layout="mmpose", joints="coco17", backbone="resnet50",
        input_hw=(256, 192), file=url.rsplit("/", 1)[1], url=url, fallback_urls=(), size_bytes=None,
        approx_mb=0.001,
        sha256=None, sha256_prefix=None, description="test")
    if content is not None:
        fields.setdefault("sha256_prefix", hashlib.sha256(content).hexdigest()[:8])
    info = weights.ModelInfo(**{**info.__dict__, **fields})
    monkeypatch.setattr(weights, "known_models", lambda: {info.name: info})
    return info


def test_download_checks_the_hash_and_writes_atomically(server, tmp_path, monkeypatch):
    served, base = server
    content = b"fake checkpoint " * 1000
    (served / "fake-1234.pth").write_bytes(content)
    _fake_model(monkeypatch, f"{base}/fake-1234.pth", content, size_bytes=len(content))
    cache = tmp_path / "cache"  # does not exist yet: created
    path = weights.resolve("fake-pose", cache, progress=False)
    assert path == cache / "fake-1234.pth"
    assert path.read_bytes() == content
    # no temporary file left; the verified hash remembered
    assert sorted(p.name for p in cache.iterdir()) == [weights.VERIFIED_NAME, "fake-1234.pth"]
    assert weights.verify(path, "fake-pose") == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize("fields, message", [
    ({"sha256_prefix": "00000000"}, "expected it to start with 00000000"),   # wrong prefix
    ({"sha256": "0" * 64}, "expected " + "0" * 64),                          # wrong full hash
    ({"size_bytes": 3}, "expected 3"),                                       # wrong size
])
def test_corrupt_download_leaves_nothing(server, tmp_path, monkeypatch, fields, message):
    served, base = server
    (served / "fake.pth").write_bytes(b"not what was published")
    _fake_model(monkeypatch, f"{base}/fake.pth", **fields)
    with pytest.raises(PosetrackError) as err:
        weights.resolve("fake-pose", tmp_path / "cache", progress=False)
    assert "is corrupt" in str(err.value) and message in str(err.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_http_error_names_the_file_the_url_and_the_folder(server, tmp_path, monkeypatch):
    _, base = server
    info = _fake_model(monkeypatch, f"{base}/missing.pth")
    with pytest.raises(PosetrackError) as err:
        weights.resolve("fake-pose", tmp_path, progress=False)
    text = str(err.value)
    assert "404" in text and info.url in text and str(tmp_path / "missing.pth") in text


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_OFFLINE, raising=False)
    url = f"http://127.0.0.1:{_closed_port()}/fake-pose.pth"
    _fake_model(monkeypatch, url)
    start = time.monotonic()
    with pytest.raises(PosetrackError) as err:
        weights.resolve("fake-pose", tmp_path, progress=False)
    assert time.monotonic() - start < 5
    text = str(err.value)
    assert "cannot download" in text and url in text and str(tmp_path / "fake-pose.pth") in text
    assert not (tmp_path / "fake-pose.pth").exists()


def test_offline_mode_never_connects(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")

    def no_network(*args, **kwargs):
        raise AssertionError("tried to connect")

    monkeypatch.setattr(weights.urllib.request, "urlopen", no_network)
    with pytest.raises(PosetrackError) as err:
        weights.resolve("raft-large", tmp_path)
    info = weights.known_models()["raft-large"]
    assert info.file in str(err.value) and info.url in str(err.value)
    assert str(tmp_path / info.file) in str(err.value) and "POSETRACK_WEIGHTS_DIR" in str(err.value)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_list_shows_cached_state(tmp_path):
    info = weights.known_models()["raft-small"]
    (tmp_path / info.file).write_bytes(b"x")
    result = CliRunner().invoke(main, ["weights", "list", "--weights-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert " yes " in rows["raft-small"] and " no " in rows["raft-large"]
    assert " yes " not in rows["raft-large"]
    assert info.url in result.output and f"weights folder: {tmp_path}" in result.output


def test_cli_download_offline_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    result = CliRunner().invoke(main, ["weights", "download", "yolo11n", "--weights-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot download the detector weights yolo11n.pt")
    assert result.output.count("\n") == 1


def test_cli_download_verifies_a_cached_file(tmp_path):
    info = weights.known_models()["raft-small"]
    (tmp_path / info.file).write_bytes(b"not the real file")
    result = CliRunner().invoke(main, ["weights", "download", "raft-small", "--weights-dir", str(tmp_path)])
    assert result.exit_code == 1 and f"expected it to start with {info.sha256_prefix}" in result.output


# ---------------------------------------------------------------------------------------------
# Trust offline and in outages: cached files checked once, every name tried, mirrors, fallbacks


def test_yolo_files_are_pinned_with_a_fallback_release():
    models = weights.known_models()
    for name, sha256, size in (
            ("yolo11n", "0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1", 5_613_764),
            ("yolo11m", "d5ffc1a674953a08e11a8d21e022781b1b23a19b730afc309290bd9fb5305b95", 40_684_120)):
        info = models[name]
        assert (info.sha256, info.size_bytes) == (sha256, size)
        assert info.fallback_urls == (info.url.replace("/v8.4.0/", "/v8.3.0/"),)


def test_a_corrupt_cached_file_is_named_with_the_fix(tmp_path, monkeypatch):
    content = b"published weights"
    info = _fake_model(monkeypatch, "http://127.0.0.1:9/fake-1.pth", content)
    (tmp_path / info.file).write_bytes(b"published weighTs")  # same size, one byte flipped
    with pytest.raises(PosetrackError) as err:
        weights.resolve("fake-pose", tmp_path)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / info.file}: sha256 ")
    assert "posetrack weights download fake-pose --force" in text


def test_a_cached_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    content = b"published weights"
    info = _fake_model(monkeypatch, "http://127.0.0.1:9/fake-1.pth", content)
    path = tmp_path / info.file
    path.write_bytes(content)
    hashed = []
    real = weights.sha256_of
    monkeypatch.setattr(weights, "sha256_of", lambda p: hashed.append(p) or real(p))
    for _ in range(3):
        assert weights.resolve("fake-pose", tmp_path) == path
    assert len(hashed) == 1  # verified once, remembered by size and modification time
    path.write_bytes(b"published weighTs")  # replaced by a corrupt copy: checked again
    with pytest.raises(PosetrackError, match="not the published"):
        weights.resolve("fake-pose", tmp_path)
    assert len(hashed) == 2


def test_download_falls_back_and_tries_the_mirror_first(server, tmp_path, monkeypatch, caplog):
    served, base = server
    content = b"the published file"
    (served / "release2").mkdir()
    (served / "release2" / "fake.pth").write_bytes(content)
    info = _fake_model(monkeypatch, f"{base}/release1/fake.pth", content,
                       fallback_urls=(f"{base}/release2/fake.pth",))
    assert weights.source_urls(info) == [info.url, f"{base}/release2/fake.pth"]
    path = weights.download("fake-pose", tmp_path / "a", progress=False)  # release1: 404
    assert path.read_bytes() == content
    assert any("404" in r.getMessage() and "release1" in r.getMessage() for r in caplog.records)
    # a mirror (argument or environment) is tried before the publisher
    (served / "mirror").mkdir()
    (served / "mirror" / "fake.pth").write_bytes(content)
    monkeypatch.setenv(weights.ENV_MIRROR, f"{base}/mirror/")
    assert weights.source_urls(info)[0] == f"{base}/mirror/fake.pth"
    requested = []
    real_open = weights.urllib.request.urlopen
    monkeypatch.setattr(weights.urllib.request, "urlopen",
                        lambda request, **kw: requested.append(request.full_url) or real_open(request, **kw))
    weights.download("fake-pose", tmp_path / "b", progress=False)
    assert requested == [f"{base}/mirror/fake.pth"]


def test_every_source_failing_names_each(server, tmp_path, monkeypatch):
    _, base = server
    info = _fake_model(monkeypatch, f"{base}/r1/fake.pth", fallback_urls=(f"{base}/r2/fake.pth",))
    with pytest.raises(PosetrackError) as err:
        weights.download("fake-pose", tmp_path, progress=False, mirror=f"{base}/m")
    text = str(err.value)
    for url in (f"{base}/m/fake.pth", info.url, f"{base}/r2/fake.pth"):
        assert f"{url}: the server answered 404" in text
    assert "--weights-mirror" in text


def test_cli_download_tries_every_name(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    raft = weights.known_models()["raft-small"]
    result = CliRunner().invoke(main, ["weights", "download", "yolo11n", "no-such-model", "raft-small",
                                       "--weights-dir", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("Error: ") for line in lines)
    assert "yolo11n.pt" in lines[0] and "no-such-model" in lines[1] and raft.file in lines[2]

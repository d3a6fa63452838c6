"""Model weights: the known files, a cache folder, downloading with a hash check.

Every model option of posetrack takes a *spec*: either the path of a local file, or the name of
a known model (``posetrack weights list``). :func:`resolve` turns a spec into a local path,
downloading a known model into the cache folder on first use.

The known models are listed in ``weights_manifest.json``, shipped inside the package so an
installed posetrack finds it; the repository's ``weights/manifest.json`` is an identical copy for
readers of the source tree (``weights/README.md`` says how to fetch each file by hand).

Cache folder, first match wins: the ``weights_dir`` argument (``--weights-dir`` on the command
line), the environment variable ``POSETRACK_WEIGHTS_DIR``, ``$XDG_CACHE_HOME/posetrack/weights``,
``~/.cache/posetrack/weights``. A file keeps its published name there, so one downloaded by hand
from the manifest's URL can simply be copied in.

Sources, in order: the mirror (``$POSETRACK_WEIGHTS_MIRROR`` or ``--weights-mirror``: a base URL
the file name is appended to, for when the publisher's host is down), the manifest's URL, then
its fallback URLs (the same file under another release). Each is tried once, with a short
connection timeout and no retries; if all fail, one :class:`PosetrackError` names the file, what
each source answered and the exact path to put the file at. Setting ``POSETRACK_OFFLINE=1`` skips
the attempt entirely (useful behind firewalls that drop packets rather than refuse connections).
Downloads are written to a temporary file and renamed only after the hash check passed, so a
partial or corrupt file never sits under the real name.

A cached file is checked against its size and hash before it is used. Hashing takes a moment, so
it is done once: the verified size, modification time and sha256 are remembered in
``.posetrack-verified.json`` in the cache folder, and a file whose size or time changed is hashed
again.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import FormatError, PosetrackError
from .fileio import atomic_write

log = logging.getLogger(__name__)

ENV_WEIGHTS_DIR = "POSETRACK_WEIGHTS_DIR"
ENV_OFFLINE = "POSETRACK_OFFLINE"
ENV_MIRROR = "POSETRACK_WEIGHTS_MIRROR"
VERIFIED_NAME = ".posetrack-verified.json"
MANIFEST_NAME = "weights_manifest.json"
KINDS = ("pose", "flow", "detector")
LAYOUTS = ("original", "mmpose", "torchvision", "ultralytics")

# Seconds to wait for the server to accept the connection (and for each read). Short on purpose:
# an unreachable host should fail at once, not after minutes of retries.
CONNECT_TIMEOUT_S = 10.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelInfo:
    """One known weights file (an entry of the manifest).

    Attributes:
        name: the name a model option accepts, e.g. "res50-coco-256x192".
        kind: "pose", "flow" or "detector".
        layout: the checkpoint's key layout: "original", "mmpose", "torchvision", "ultralytics".
        joints: the joint layout a pose model predicts ("coco17", "posetrack17"); None otherwise.
        backbone: the architecture the file fits, e.g. "resnet50", "raft_small", "yolo11n".
        input_hw: a pose model's input (height, width); None otherwise.
        file: the published file name, also its name in the cache folder.
        url: where it is downloaded from.
        fallback_urls: other places publishing the same file, tried after ``url``.
        size_bytes: exact size, or None where not known.
        approx_mb: approximate size in MB, for display.
        sha256: full sha256 hex digest, or None where not known.
        sha256_prefix: the hash prefix the publisher embeds in the file name, or None.
        description: one line for ``posetrack weights list``.
    """

    name: str
    kind: str
    layout: str
    joints: str | None
    backbone: str
    input_hw: tuple | None
    file: str
    url: str
    fallback_urls: tuple
    size_bytes: int | None
    approx_mb: float
    sha256: str | None
    sha256_prefix: str | None
    description: str

    @property
    def hash_text(self) -> str:
        """The hash the file is checked against, for display ("-" when none is known)."""
        if self.sha256:
            return self.sha256
        if self.sha256_prefix:
            return f"{self.sha256_prefix}... (prefix)"
        return "-"

    @property
    def size_text(self) -> str:
        if self.size_bytes is not None:
            return f"{self.size_bytes / 1e6:.1f} MB"
        return f"~{self.approx_mb:.3g} MB"


@dataclass(frozen=True)
class ModelStatus:
    """A known model and its place in the cache folder."""

    info: ModelInfo
    path: Path
    cached: bool


# ---------------------------------------------------------------------------------------------
# The manifest


@functools.lru_cache(maxsize=1)
def known_models() -> dict[str, ModelInfo]:
    """The manifest's models by name, in manifest order."""
    text = resources.files("posetrack").joinpath(MANIFEST_NAME).read_text(encoding="utf-8")
    return parse_manifest(json.loads(text), MANIFEST_NAME)


def parse_manifest(data, source="manifest") -> dict[str, ModelInfo]:
    """Validate a manifest's JSON content and return its models by name."""
    if not isinstance(data, dict) or data.get("format") != 1 or not isinstance(data.get("models"), list):
        raise FormatError(source, "expected {'format': 1, 'models': [...]}")
    wanted = {f for f in ModelInfo.__dataclass_fields__}
    models = {}
    for i, entry in enumerate(data["models"]):
        if not isinstance(entry, dict) or set(entry) != wanted:
            got = set(entry) if isinstance(entry, dict) else set()
            raise FormatError(source, f"models[{i}]: missing keys {sorted(wanted - got)}, "
                                      f"unknown keys {sorted(got - wanted)}")
        if not isinstance(entry["fallback_urls"], (list, tuple)) or not all(isinstance(u, str) for u in entry["fallback_urls"]):
            raise FormatError(source, f"models[{i}]: fallback_urls must be a list of URLs")
        info = ModelInfo(**{**entry, "input_hw": tuple(entry["input_hw"]) if entry["input_hw"] else None,
                            "fallback_urls": tuple(entry["fallback_urls"])})
        if info.kind not in KINDS or info.layout not in LAYOUTS:
            raise FormatError(source, f"models[{i}] ({info.name}): kind must be one of {KINDS} and "
                                      f"layout one of {LAYOUTS}")
        if info.name in models:
            raise FormatError(source, f"model name {info.name!r} appears twice")
        for key in ("sha256", "sha256_prefix"):
            value = getattr(info, key)
            if value is not None and (not value or any(c not in "0123456789abcdef" for c in value)):
                raise FormatError(source, f"models[{i}] ({info.name}): {key} must be lower-case hex")
        if info.sha256 and info.sha256_prefix and not info.sha256.startswith(info.sha256_prefix):
            raise FormatError(source, f"models[{i}] ({info.name}): sha256 does not start with sha256_prefix")
        models[info.name] = info
    return models


def model_info(name: str, kind: str | None = None) -> ModelInfo:
    """The known model called ``name`` (or whose published file name is ``name``).

    Raises PosetrackError naming the known models and the closest match, or saying the model is
    of another kind than ``kind``.
    """
    models = known_models()
    info = models.get(name) or next((m for m in models.values() if m.file == name), None)
    if info is None:
        candidates = [m.name for m in models.values() if kind is None or m.kind == kind]
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PosetrackError(
            f"{name!r} is neither an existing file nor a known {kind + ' ' if kind else ''}model."
            f"{hint} Known: {', '.join(candidates)} (see `posetrack weights list`).")
    if kind is not None and info.kind != kind:
        raise PosetrackError(f"{info.name!r} is a {info.kind} model, not a {kind} model")
    return info


# ---------------------------------------------------------------------------------------------
# The cache folder


def cache_dir(folder=None) -> Path:
    """The cache folder: ``folder`` if given, else $POSETRACK_WEIGHTS_DIR, else the user cache."""
    if folder is not None and str(folder) != "":
        return Path(folder).expanduser()
    env = os.environ.get(ENV_WEIGHTS_DIR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "posetrack" / "weights"


def list_models(folder=None) -> list[ModelStatus]:
    """Every known model, where it is (or would be) cached and whether it is."""
    root = cache_dir(folder)
    return [ModelStatus(info, root / info.file, (root / info.file).is_file())
            for info in known_models().values()]


# ---------------------------------------------------------------------------------------------
# Resolving and downloading


def resolve(spec, weights_dir=None, kind: str | None = None, progress: bool = True,
            mirror: str | None = None) -> Path:
    """A local weights file for ``spec``.

    Args:
        spec: a path to an existing file (returned as is), or a known model name (or its
            published file name), which is downloaded into the cache folder if not there yet.
        weights_dir: the cache folder (default: see the module docstring).
        kind: if given, a known name must be a model of this kind ("pose", "flow", "detector").
        progress: show a progress bar while downloading (only when logging shows INFO, so
            ``posetrack -q`` shows none).
        mirror: a base URL tried first (default: ``$POSETRACK_WEIGHTS_MIRROR``).

    Raises:
        PosetrackError: unknown name (with the closest known one), wrong kind, a cached file
            that is not the published one (naming it and the command that replaces it), or a
            download that failed (naming the file, each URL tried and where to put the file).
    """
    path = Path(str(spec)).expanduser()
    if path.is_file():
        return path
    if path.exists():
        raise PosetrackError(f"{path}: is a folder, expected a weights file")
    looks_like_path = len(path.parts) > 1 or str(spec).startswith((".", "~"))
    if looks_like_path:
        raise PosetrackError(f"{path}: no such weights file")
    info = model_info(str(spec), kind)
    dest = cache_dir(weights_dir) / info.file
    if dest.is_file():
        check_cached(dest, info)
        return dest
    return download(info.name, weights_dir, progress=progress, mirror=mirror)


def use_mirror(url: str) -> None:
    """Make every later download of this process try ``url`` first (sets
    ``$POSETRACK_WEIGHTS_MIRROR``; ``run``'s ``weights_mirror`` setting calls it, so the pose,
    flow and detector weights all see it)."""
    os.environ[ENV_MIRROR] = str(url)


def source_urls(info: ModelInfo, mirror: str | None = None) -> list[str]:
    """Where ``info``'s file is downloaded from, in the order tried: the mirror (argument, else
    ``$POSETRACK_WEIGHTS_MIRROR``) + the file name, the manifest's URL, its fallback URLs."""
    mirror = mirror or os.environ.get(ENV_MIRROR, "").strip() or None
    urls = [f"{mirror.rstrip('/')}/{info.file}"] if mirror else []
    return urls + [info.url] + [u for u in info.fallback_urls if u not in urls]


def download(name: str, weights_dir=None, progress: bool = True, force: bool = False,
             mirror: str | None = None) -> Path:
    """Download the known model ``name`` into the cache folder and check its hash, trying each
    of ``source_urls`` until one gives the published file.

    An already cached file is left alone unless ``force``. Returns the cached file's path.
    """
    info = model_info(name)
    dest = cache_dir(weights_dir) / info.file
    if dest.is_file() and not force:
        return dest
    urls = source_urls(info, mirror)
    if os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no"):
        raise _unreachable(info, dest, [(None, f"downloads are disabled ({ENV_OFFLINE} is set)")])
    failures = []
    for url in urls:
        try:
            digest = _download_from(info, url, dest, progress)
        except _SourceFailed as err:
            failures.append((url, str(err)))
            if len(urls) > 1:
                log.warning("%s: %s from %s failed: %s", info.name, info.file, url, err)
            continue
        if not (info.sha256 or info.sha256_prefix):
            log.warning("%s has no published hash, so it was not verified; its sha256 is %s",
                        info.file, digest)
        _remember_verified(dest, digest)
        return dest
    raise _unreachable(info, dest, failures)


class _SourceFailed(Exception):
    """One download source did not give the published file (the next one is tried)."""


def _download_from(info: ModelInfo, url: str, dest: Path, progress: bool) -> str:
    """Download ``url`` to ``dest`` (atomically) and check it; returns its sha256."""
    request = urllib.request.Request(url, headers={"User-Agent": "posetrack"})
    try:
        response = urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise _SourceFailed(f"the server answered {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise _SourceFailed(f"{getattr(err, 'reason', err)}") from None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PosetrackError(f"cannot create the weights folder {dest.parent}: {err.strerror}") from None
    log.info("downloading %s from %s to %s", info.file, url, dest)
    with response:
        total = int(response.headers.get("Content-Length") or 0) or None
        try:
            with atomic_write(dest, "wb") as handle:
                show = progress and log.isEnabledFor(logging.INFO)
                digest, size = _copy_with_progress(response, handle, total, info.file, show)
                problem = _size_problem(info, size) or _hash_problem(info, digest)
                if problem:
                    raise _SourceFailed(f"the download is corrupt ({problem}); it was not saved")
        except (urllib.error.URLError, OSError) as err:
            raise _SourceFailed(f"the transfer failed ({err}); nothing was saved") from None
    return digest


def check_cached(path, info: ModelInfo) -> None:
    """Raise PosetrackError unless the cached ``path`` has ``info``'s size and hash. The hash is
    computed once per file version: a match is remembered with the file's size and
    modification time (``VERIFIED_NAME`` in its folder)."""
    path = Path(path)
    stat = path.stat()
    _check_size(path, info, stat.st_size)
    if not (info.sha256 or info.sha256_prefix):
        return
    known = _verified(path.parent).get(path.name)
    if known and known[:2] == [stat.st_size, stat.st_mtime_ns] and not _hash_problem(info, known[2]):
        return
    log.info("checking the sha256 of %s", path)
    digest = sha256_of(path)
    _check_hash(path, info, digest)
    _remember_verified(path, digest)


def _verified(folder: Path) -> dict:
    """file name -> [size, mtime_ns, sha256] of the files verified in ``folder``."""
    try:
        data = json.loads((folder / VERIFIED_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_verified(path: Path, digest: str) -> None:
    memo = _verified(path.parent)
    stat = path.stat()
    memo[path.name] = [stat.st_size, stat.st_mtime_ns, digest]
    try:
        with atomic_write(path.parent / VERIFIED_NAME, "w", encoding="utf-8") as handle:
            json.dump(memo, handle, indent=1)
    except (OSError, PosetrackError) as err:  # a read-only cache still works, hashing each time
        log.debug("cannot remember the verified hash of %s: %s", path, err)


def sha256_of(path) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path, name: str) -> str:
    """Check a file against the known model ``name``'s size and hash; return its sha256.

    Raises PosetrackError on a mismatch. A model without a known hash passes on size alone.
    """
    info = model_info(name)
    path = Path(path)
    _check_size(path, info, path.stat().st_size)
    digest = sha256_of(path)
    _check_hash(path, info, digest)
    _remember_verified(path, digest)
    return digest


def _copy_with_progress(response, handle, total, label, progress):
    from tqdm import tqdm

    digest, size = hashlib.sha256(), 0
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
              disable=not progress, leave=False) as bar:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            handle.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            bar.update(len(chunk))
    return digest.hexdigest(), size


def _size_problem(info: ModelInfo, size: int) -> str:
    if info.size_bytes is not None and size != info.size_bytes:
        return f"size {size} bytes, expected {info.size_bytes}"
    return ""


def _hash_problem(info: ModelInfo, digest: str) -> str:
    if info.sha256 and digest != info.sha256:
        return f"sha256 {digest}, expected {info.sha256}"
    if info.sha256_prefix and not digest.startswith(info.sha256_prefix):
        return f"sha256 {digest}, expected it to start with {info.sha256_prefix}"
    return ""


def _check_size(path, info: ModelInfo, size: int) -> None:
    if problem := _size_problem(info, size):
        raise PosetrackError(_mismatch(path, info, problem))


def _check_hash(path, info: ModelInfo, digest: str) -> None:
    if problem := _hash_problem(info, digest):
        raise PosetrackError(_mismatch(path, info, problem))


def _mismatch(path, info, what) -> str:
    return (f"{path}: {what} - not the published {info.file} (corrupt or incomplete); replace it "
            f"with `posetrack weights download {info.name} --force`, or delete it")


def _unreachable(info: ModelInfo, dest: Path, failures: list) -> PosetrackError:
    tried = "; ".join(reason if url is None else f"{url}: {reason}" for url, reason in failures)
    return PosetrackError(
        f"cannot download the {info.kind} weights {info.file} ({info.name!r}): {tried}. "
        f"On a machine without internet access, download {info.url} elsewhere and copy the "
        f"file to {dest} (the weights folder {dest.parent}; choose another with --weights-dir or "
        f"{ENV_WEIGHTS_DIR}), or pass the file's path instead of the name {info.name!r}; if the "
        f"publisher is down, set a mirror with --weights-mirror or {ENV_MIRROR}.")

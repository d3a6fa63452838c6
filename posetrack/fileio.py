"""Safe file writing and clear file reading.

Every output is written to a temporary file beside its destination and renamed into place, so a
crash or a full disk never leaves a half-written file under the real name, and an existing file is
replaced only by a complete one. Temporary files are named
``.<name>.<pid>-<random>.posetrack-tmp<suffix>`` (``temp_file``); one whose process is gone (a
run killed with SIGKILL) is removed by the next run that writes the same output
(``remove_stale_temps``).

Before any work, a command checks all its outputs at once (``check_outputs``): known format,
folder present and writable, no output equal to an input or to another output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

import orjson

from .errors import FormatError, PosetrackError

log = logging.getLogger(__name__)

TEMP_MARK = ".posetrack-tmp"

# The extensions each kind of output can be written as (lower case); None: any (the format is
# named some other way, e.g. --format). Video: what video.VideoWriter encodes (video.VIDEO_CODECS).
OUTPUT_SUFFIXES = {
    "tracks": (".json", ".csv", ".jsonl"),
    "overlay": (".mp4", ".webm", ".mov", ".mkv", ".m4v", ".avi"),
    "results": (".json",),
    "page": (".html", ".htm"),
    "onnx": (".onnx",),
    "file": None,
}
# Roles whose output may be "-" (standard output): tracks as JSON Lines.
STDOUT_ROLES: set = {"tracks"}


def check_outputs(outputs: Iterable[tuple], inputs: Iterable = ()) -> None:
    """Check every output of a command before it does any work; raise one PosetrackError.

    Args:
        outputs: ``(path, role)`` pairs; ``role`` is a key of ``OUTPUT_SUFFIXES`` ("tracks",
            "overlay", ...) and sets the extensions allowed. A path of None is skipped (an
            optional output not asked for); "-" is standard output, allowed for
            ``STDOUT_ROLES``.
        inputs: every file or folder the command reads (None entries skipped).

    Checks, in this order for each output: a known extension for its role; not an existing
    folder; its folder exists and a file can be created there (a temporary file is created and
    removed, so a read-only folder fails now, not after the work); not the same file as an
    input or as another output (paths resolved, links and ``..`` included). Stale temporary files
    of the output left by a killed run are removed.
    """
    inputs = [Path(p) for p in inputs if p is not None]
    seen: dict = {}
    for path, role in outputs:
        if path is None:
            continue
        if role not in OUTPUT_SUFFIXES:
            raise ValueError(f"unknown output role {role!r}; known: {', '.join(OUTPUT_SUFFIXES)}")
        if str(path) == "-":
            if role not in STDOUT_ROLES:
                raise PosetrackError(f"the {role} output cannot be written to standard output ('-')")
            continue
        path = Path(path)
        allowed = OUTPUT_SUFFIXES[role]
        if allowed is not None and path.suffix.lower() not in allowed:
            raise PosetrackError(f"{path}: unknown extension {path.suffix or '(none)'!r} for the "
                                 f"{role} output; use {', '.join(allowed)}")
        if path.is_dir():
            raise PosetrackError(f"{path}: is a folder; expected a file name")
        folder = _folder_of(path)
        if not folder.is_dir():
            raise PosetrackError(f"{path}: the output folder {folder} does not exist")
        key = _identity(path)
        if key in seen:
            raise PosetrackError(f"{path}: more than one output would be written to this file "
                                 f"({seen[key]} and {role})")
        seen[key] = role
        for source in inputs:
            if _same_file(path, source):
                raise PosetrackError(f"{path}: the {role} output would overwrite the input "
                                     f"{source}; choose another output name")
        remove_stale_temps(path)
        try:
            fd, probe = temp_file(path)
        except OSError as err:
            raise PosetrackError(f"{path}: cannot write in the folder {folder} "
                                 f"({err.strerror or err})") from None
        os.close(fd)
        os.unlink(probe)


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _identity(path: Path):
    return os.path.normcase(str(path.resolve()))


def _same_file(a: Path, b: Path) -> bool:
    if _identity(a) == _identity(b):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)  # hard links
    return False


def temp_file(path) -> tuple[int, str]:
    """Create the temporary file for ``path`` beside it: ``(fd, name)``, name
    ``.<name>.<pid>-<random>.posetrack-tmp<suffix>`` (the real suffix last, so writers that
    pick a container by extension pick the right one)."""
    path = Path(path)
    return tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=TEMP_MARK + path.suffix,
                            dir=_folder_of(path))


def remove_stale_temps(path) -> list[Path]:
    """Remove temporary files of ``path`` left by processes that no longer run (a run killed
    while writing). Returns the files removed."""
    path = Path(path)
    folder = _folder_of(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)-[^/]*" + re.escape(TEMP_MARK + path.suffix) + "$")
    removed = []
    try:
        candidates = list(folder.glob(f".{glob_escape(path.name)}.*{TEMP_MARK}*"))
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.match(candidate.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()
            removed.append(candidate)
            log.info("removed %s, a temporary file left by an interrupted run", candidate)
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or cannot tell: leave the file
    return True


def default_file_mode() -> int:
    """The permission bits a newly created file gets under the current umask (mkstemp's
    temporary files are private, 0600; outputs should not be)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def publish(tmp, path) -> None:
    """Give a finished temporary file normal permissions and rename it to ``path``."""
    os.chmod(tmp, default_file_mode())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", **open_kwargs):
    """Open a temporary file for writing; on success rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise PosetrackError(f"{path}: the output folder {folder} does not exist")
    remove_stale_temps(path)
    try:
        fd, tmp = temp_file(path)
    except OSError as err:
        raise PosetrackError(f"{path}: cannot write in the folder {folder} ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path, data, indent: int | None = None) -> None:
    """Write ``data`` as JSON, atomically."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=indent)


def read_json(path):
    """Load a JSON file; a missing file or bad JSON raises one clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise PosetrackError(f"{path}: no such file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PosetrackError(f"{path}: cannot be read ({err.strerror})") from None
    try:
        return orjson.loads(raw)  # 4-7x faster than json on PoseTrack files, same float64 values
    except orjson.JSONDecodeError:
        pass  # not strict JSON for orjson (NaN literals, huge integers, ...): json decides and explains
    try:
        return json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as err:
        raise FormatError(path, f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except UnicodeDecodeError:
        raise FormatError(path, "not a text file (cannot be decoded as UTF-8)") from None

"""Safe file writing and clear file reading.

Every output is written to a temporary file beside its destination and renamed into place, so a
crash or a full disk never leaves a half-written file under the real name, and an existing file is
replaced only by a complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import orjson

from .errors import FormatError, PosetrackError


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
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

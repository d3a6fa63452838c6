"""Settings plumbing: click options generated from config dataclasses, and YAML config files.

Each stage has a small frozen dataclass whose fields carry their help text (``metadata["help"]``).
The same fields become command-line options (``--memory-frames``) and YAML keys
(``tracker: {memory_frames: 5}``); an unknown key is answered with the closest known one.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

import click

from .errors import PosetrackError


def _option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def config_options(config_cls):
    """A decorator adding one click option per field of ``config_cls`` (default: unset)."""
    def decorate(command):
        for f in reversed(dataclasses.fields(config_cls)):
            default = f.default
            kind = type(default) if isinstance(default, (int, float, str)) else None
            if isinstance(default, bool):
                command = click.option(_option_name(f.name) + "/--no-" + f.name.replace("_", "-"),
                                       f.name, default=None,
                                       help=f"{f.metadata.get('help', '')} [default: {default}]")(command)
                continue
            command = click.option(_option_name(f.name), f.name, type=kind, default=None,
                                   help=f"{f.metadata.get('help', '')} [default: {default}]")(command)
        return command
    return decorate


def pop_config(config_cls, options: dict, base: dict | None = None):
    """Build ``config_cls`` from values in ``base`` (e.g. a YAML section) overridden by the
    command-line ``options`` that were given; the used keys are removed from ``options``."""
    values = dict(base or {})
    for f in dataclasses.fields(config_cls):
        value = options.pop(f.name, None)
        if value is not None:
            values[f.name] = value
    try:
        return config_cls(**values)
    except ValueError as err:
        raise PosetrackError(f"bad setting: {err}") from None


def check_keys(where: str, keys, known) -> None:
    """Raise PosetrackError for the first key not in ``known``, naming the closest known key."""
    known = list(known)
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
            raise PosetrackError(f"{where}: unknown key '{key}'{hint}")


def load_yaml_config(path, sections: dict) -> dict:
    """Read a YAML settings file of the form ``{section: {field: value}}``.

    Args:
        sections: section name -> config dataclass (its fields are the allowed keys), or -> a
            list of allowed keys for sections that are not a dataclass (e.g. top-level options).

    Returns:
        section name -> dict of the given values (missing sections are empty).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PosetrackError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise PosetrackError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise PosetrackError(f"{path}: expected a mapping of sections ({', '.join(sections)})")
    check_keys(str(path), data, sections)
    result = {}
    for name, spec in sections.items():
        section = data.get(name) or {}
        if not isinstance(section, dict):
            raise PosetrackError(f"{path}: section '{name}' must be a mapping")
        allowed = [f.name for f in dataclasses.fields(spec)] if dataclasses.is_dataclass(spec) else spec
        check_keys(f"{path}: section '{name}'", section, allowed)
        result[name] = dict(section)
    return result

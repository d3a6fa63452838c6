"""Settings fields that check themselves: type, range and choices come from the field.

A stage's config is a frozen dataclass whose fields are made with :func:`setting`; its
``__post_init__`` calls :func:`validate`. The field's type annotation gives the type check
(``bool`` accepts only True/False, ``int`` only integers, ``float`` integers or floats, ``str``
only strings, ``X | None`` also None); ``low``/``high``, ``choices``, ``multiple_of`` and
``kind="device"`` give the allowed values. A bad value raises :class:`SettingError` (a
ValueError) that names the field, the allowed values and the value given; the CLI prefixes the
option or the YAML file, section and key. Pure Python: no click, no YAML.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


class SettingError(ValueError):
    """A setting with a value it cannot take: ``field``, ``value`` and ``expected`` (the
    allowed values, worded to follow "must be")."""

    def __init__(self, field: str, value, expected: str):
        super().__init__(f"{field} must be {expected}, got {value!r}")
        self.field, self.value, self.expected = field, value, expected


def setting(default, help: str, *, low=None, high=None, low_open: bool = False,
            choices: tuple | None = None, multiple_of: int | None = None, kind: str | None = None,
            option: str | None = None):
    """A config dataclass field with its help text and its allowed values.

    Args:
        default: the default value (immutable).
        help: what the setting trades off, for ``--help`` and the README.
        low, high: inclusive bounds of a number (``low_open``: strictly above ``low``).
        choices: the allowed strings.
        multiple_of: an integer must be a multiple of this.
        kind: "device" for a torch device name (auto, cpu, cuda, cuda:N); "path", "dir" or
            "existing-path" for a file system path (the command line checks the last exists).
        option: the command-line name without dashes, when not the field name with hyphens
            (needed where two stages share a field name, e.g. ``half``).
    """
    metadata = {"help": help, "low": low, "high": high, "low_open": low_open, "choices": choices,
                "multiple_of": multiple_of, "kind": kind, "option": option}
    return dataclasses.field(default=default, metadata=metadata)


def same_setting(config_cls, name: str, **changes):
    """A field like ``config_cls``'s field ``name`` (default, help, allowed values), for a
    config that gathers settings of other configs; ``changes`` replaces some of its metadata
    (e.g. ``option``)."""
    f = config_cls.__dataclass_fields__[name]
    return setting(f.default, **{**f.metadata, **changes})


_TYPE_CACHE: dict = {}


def field_types(config_cls) -> dict:
    """Field name -> (base type, None allowed) from the class's annotations."""
    if config_cls not in _TYPE_CACHE:
        hints = typing.get_type_hints(config_cls)
        types = {}
        for f in dataclasses.fields(config_cls):
            hint = hints[f.name]
            args = typing.get_args(hint)
            optional = type(None) in args
            base = next((a for a in args if a is not type(None)), hint) if args else hint
            types[f.name] = (base, optional)
        _TYPE_CACHE[config_cls] = types
    return _TYPE_CACHE[config_cls]


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def expected_text(base, optional: bool, metadata) -> str:
    """The allowed values of a field, worded to follow "must be"."""
    if base is bool:
        text = "true or false (a YAML boolean such as true, not a string such as 'no')"
    elif metadata.get("kind") == "device":
        text = "auto, cpu, cuda or cuda:N (N the GPU index)"
    elif metadata.get("choices"):
        text = "one of " + ", ".join(metadata["choices"])
    elif base in (int, float):
        text = "an integer" if base is int else "a number"
        low, high = metadata.get("low"), metadata.get("high")
        if low is not None and high is not None:
            text += f" in {'(' if metadata.get('low_open') else '['}{_number(low)}, {_number(high)}]"
        elif low is not None:
            text += f" {'>' if metadata.get('low_open') else '>='} {_number(low)}"
        elif high is not None:
            text += f" <= {_number(high)}"
        if metadata.get("multiple_of"):
            text += f", a multiple of {metadata['multiple_of']}"
    elif base is str:
        text = "a path" if metadata.get("kind") in ("path", "dir", "existing-path") else "a text"
    else:
        text = f"a {getattr(base, '__name__', base)}"
    return text + (" or null (none)" if optional and base is not bool else "")


def check_value(config_cls, name: str, value):
    """``value`` as field ``name`` of ``config_cls`` stores it (an int for a float field becomes
    a float), or SettingError when the field cannot take it."""
    f = next(f for f in dataclasses.fields(config_cls) if f.name == name)
    base, optional = field_types(config_cls)[name]
    metadata = f.metadata

    def bad():
        return SettingError(name, value, expected_text(base, optional, metadata))

    if value is None:
        if optional:
            return None
        raise bad()
    if base is bool:
        if type(value) is not bool:
            raise bad()
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise bad()
        value = float(value)
    elif base is str:
        if not isinstance(value, str) or not value:
            raise bad()
    if base in (int, float):
        low, high = metadata.get("low"), metadata.get("high")
        if low is not None and (value < low or (metadata.get("low_open") and value == low)):
            raise bad()
        if high is not None and value > high:
            raise bad()
        if metadata.get("multiple_of") and value % metadata["multiple_of"]:
            raise bad()
    if metadata.get("choices") and value not in metadata["choices"]:
        raise bad()
    if metadata.get("kind") == "device" and not DEVICE_PATTERN.fullmatch(value):
        raise bad()
    return value


def validate(config) -> None:
    """Check every field of a frozen config dataclass (call it from ``__post_init__``); ints
    given for float fields are stored as floats."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        checked = check_value(type(config), f.name, value)
        if checked is not value:
            object.__setattr__(config, f.name, checked)

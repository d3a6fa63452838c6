"""Validation of config dataclass fields, with messages that name the field, the value and the
valid range (raised as ValueError; the CLI reports it as a bad setting)."""

from __future__ import annotations


def require_fraction(config, *names: str) -> None:
    """Each named field must lie in [0, 1]."""
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")


def require_count(config, *names: str) -> None:
    """Each named field must be an integer >= 1."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def require_non_negative(config, *names: str) -> None:
    """Each named field must be a number >= 0."""
    for name in names:
        value = getattr(config, name)
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")

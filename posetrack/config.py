"""Settings plumbing: click options generated from config dataclasses, YAML config files, and
``--help`` grouped by stage.

Each stage has a small frozen dataclass whose fields are made with ``checks.setting`` (help
text, allowed values). The same fields become command-line options (``--memory-frames``) and
YAML keys (``tracker: {memory_frames: 5}``), and are checked the same way from both: a bad
value is one line naming where it came from (the option, or the file, section and key), the
value and what is allowed; an unknown key is answered with the closest known one.

A *settings tree* is a frozen dataclass whose fields are stage configs made with
:func:`section` (e.g. ``run.RunSettings``): its sections are the YAML sections and the groups of
``--help``; :func:`settings_options`, :func:`pop_settings` and :func:`dump_settings` work on it.

Adding a setting to ``posetrack run``/``batch`` is adding one field to the stage's config, e.g.
``frame_batch: int = setting(1, "Frames per ... Higher: ..., lower: ...", low=1)`` in
``PipelineConfig``: the option (``--frame-batch``), the YAML key (``pipeline.frame_batch``),
its checks, ``--print-config`` and the tests of tests/test_config.py follow from it (the README
must name the option: a test checks). A new stage is a new section of ``run.RunSettings``.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from pathlib import Path

import click

from .checks import SettingError, check_value, field_types
from .errors import PosetrackError

log = logging.getLogger(__name__)


def section(config_cls, title: str, help: str = ""):
    """A field of a settings tree: one stage's config, its ``--help`` group title and a line
    about the stage."""
    return dataclasses.field(default_factory=config_cls, metadata={"title": title, "help": help})


def option_name(f: dataclasses.Field) -> str:
    """The command-line name of a config field, without dashes."""
    return f.metadata.get("option") or f.name.replace("_", "-")


class SettingOption(click.Option):
    """A click option generated from a config field; ``group`` is its ``--help`` heading."""

    def __init__(self, *args, group: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedCommand(click.Command):
    """A command whose ``--help`` lists its own options first, then the settings of each stage
    under the stage's heading. With ``--print-config`` among the arguments, no argument or
    option is required (the command prints its settings and stops)."""

    def format_options(self, ctx, formatter):
        groups: dict[str, list] = {"Options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                groups.setdefault(getattr(param, "group", None) or "Options", []).append(record)
        # one column width for all groups: pad a term of each group to the widest (click caps
        # the column at 30 characters either way)
        width = min(30, max(len(term) for records in groups.values() for term, _ in records))
        for title, records in groups.items():
            if records:
                records[0] = (records[0][0].ljust(width), records[0][1])
                with formatter.section(title):
                    formatter.write_dl(records, col_max=30)

    def parse_args(self, ctx, args):
        if "--print-config" not in args:
            return super().parse_args(ctx, args)
        required = [p for p in self.params if p.required]
        for param in required:
            param.required = False
        try:
            return super().parse_args(ctx, args)
        finally:
            for param in required:
                param.required = True


def _default_text(f: dataclasses.Field) -> str:
    default = f.default
    if isinstance(default, bool):
        return "on" if default else "off"
    return "none" if default is None else str(default)


_PATH_TYPES = {"path": click.Path(), "dir": click.Path(file_okay=False),
               "existing-path": click.Path(exists=True)}


def _field_option(config_cls, f: dataclasses.Field, name: str, option: str, **kwargs):
    """A click option for field ``f`` under the command-line name ``option`` (no dashes),
    passed to the command as ``name``; unset by default, so a YAML value shows through."""
    from .checks import expected_text

    base, _ = field_types(config_cls)[f.name]
    help_text = f"{f.metadata.get('help', '')} [default: {_default_text(f)}]"
    if base is bool:
        return click.option(f"--{option}/--no-{option}", name, default=None, help=help_text,
                            **kwargs)
    kind = _PATH_TYPES.get(f.metadata.get("kind"))
    if kind is None and f.metadata.get("choices"):
        kind = click.Choice(f.metadata["choices"])
    elif kind is None:
        kind = {int: int, float: float}.get(base, str)
        if base in (int, float) and f.metadata.get("low") is not None:
            help_text = help_text[:-1] + f"; {expected_text(base, False, f.metadata)}]"
    return click.option(f"--{option}", name, type=kind, default=None, help=help_text, **kwargs)


def config_options(config_cls, prefix: str = "", group: str | None = None):
    """A decorator adding one click option per field of ``config_cls`` (default: unset, so a
    value from a YAML file shows through). ``prefix`` is put before each parameter name (the
    keyword the command receives); ``group`` is the ``--help`` heading."""
    def decorate(command):
        for f in reversed(dataclasses.fields(config_cls)):
            command = _field_option(config_cls, f, prefix + f.name, option_name(f),
                                    cls=SettingOption, group=group)(command)
        return command
    return decorate


def _checked(config_cls, values: dict, where) -> dict:
    """Each value checked against its field; ``where(key)`` names its origin in a message."""
    out = {}
    for key, value in values.items():
        try:
            out[key] = check_value(config_cls, key, value)
        except SettingError as err:
            raise PosetrackError(f"{where(key)}: must be {err.expected}, got {value!r}") from None
    return out


def pop_config(config_cls, options: dict, base: dict | None = None, *, prefix: str = "",
               source=None, section_name: str | None = None):
    """Build ``config_cls`` from values in ``base`` (e.g. a YAML section of file ``source``)
    overridden by the command-line ``options`` that were given; the used keys are removed from
    ``options``. A bad value raises PosetrackError naming the option, or the file, section and
    key, with the value and what is allowed."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    in_file = f"{section_name}.{{}}" if section_name else "{}"
    written = getattr(base, "written", {})
    values = _checked(config_cls, dict(base or {}),
                      lambda key: f"{source or 'config'}: {written.get(key) or in_file.format(key)}")
    given = {}
    for name in fields:
        value = options.pop(prefix + name, None)
        if value is not None:
            given[name] = value
    values.update(_checked(config_cls, given, lambda key: "--" + option_name(fields[key])))
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


class YamlSection(dict):
    """A section's values as read; ``written`` maps each key to ``section.key`` as the file
    spells it (an old name, for a renamed key), for messages."""

    def __init__(self):
        super().__init__()
        self.written: dict[str, str] = {}


def load_yaml_config(path, sections: dict, renamed: dict | None = None) -> dict:
    """Read a YAML settings file of the form ``{section: {field: value}}``.

    Args:
        sections: section name -> config dataclass (its fields are the allowed keys), or -> a
            list of allowed keys for sections that are not a dataclass (e.g. top-level options).
        renamed: old ``"section.key"`` -> new ``"section.key"``: an old name is still read,
            with a warning naming the new one.

    Returns:
        section name -> dict of the given values (missing sections are empty). Values are not
        checked here: ``pop_config`` checks them and names the file, section and key.
    """
    import yaml

    renamed = renamed or {}
    path = Path(path)
    if not path.is_file():
        raise PosetrackError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise PosetrackError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise PosetrackError(f"{path}: not a text file (cannot be decoded as UTF-8)") from None
    if not isinstance(data, dict):
        raise PosetrackError(f"{path}: expected a mapping of sections ({', '.join(sections)})")
    old_sections = {old.split(".")[0] for old in renamed} - set(sections)
    check_keys(str(path), data, list(sections) + sorted(old_sections))
    result = {name: YamlSection() for name in sections}
    for name, section_values in data.items():
        section_values = section_values or {}
        if not isinstance(section_values, dict):
            raise PosetrackError(f"{path}: section '{name}' must be a mapping")
        spec = sections.get(name, ())
        if dataclasses.is_dataclass(spec):
            allowed = [f.name for f in dataclasses.fields(spec)]
        else:
            allowed = list(spec)
        old_keys = [old.split(".", 1)[1] for old in renamed if old.split(".")[0] == name]
        check_keys(f"{path}: section '{name}'", section_values, allowed + old_keys)
        for key, value in section_values.items():
            if key in allowed:
                new_section, new_key = name, key
            else:
                new_section, new_key = renamed[f"{name}.{key}"].split(".", 1)
                log.warning("%s: %s.%s is now %s.%s (the old name is still read, for now)",
                            path, name, key, new_section, new_key)
            if new_key in result[new_section]:
                raise PosetrackError(f"{path}: {new_section}.{new_key} is given twice "
                                     f"(also as {name}.{key})")
            result[new_section][new_key] = value
            result[new_section].written[new_key] = f"{name}.{key}"
    return result


# ---------------------------------------------------------------------------------------------
# Settings trees


def tree_sections(tree_cls) -> list[dataclasses.Field]:
    return list(dataclasses.fields(tree_cls))


def settings_options(tree_cls):
    """A decorator adding the options of every section of a settings tree, grouped in
    ``--help`` under the section's title; parameter names are ``<section>__<field>``."""
    def decorate(command):
        for f in reversed(tree_sections(tree_cls)):
            title = f"{f.metadata['title']} settings (YAML section '{f.name}')"
            command = config_options(f.default_factory, prefix=f"{f.name}__", group=title)(command)
        return command
    return decorate


def check_unique_options(tree_cls) -> None:
    """Raise ValueError when two fields of a tree share a command-line name."""
    seen: dict[str, str] = {}
    for s in tree_sections(tree_cls):
        for f in dataclasses.fields(s.default_factory):
            name = option_name(f)
            if name in seen:
                raise ValueError(f"--{name} is both {seen[name]} and {s.name}.{f.name}")
            seen[name] = f"{s.name}.{f.name}"


def _tree_field(tree_cls, key: str):
    """``"section.field"`` -> (the section's config class, the field)."""
    section_name, name = key.split(".", 1)
    config_cls = next(s.default_factory for s in tree_sections(tree_cls) if s.name == section_name)
    return config_cls, next(f for f in dataclasses.fields(config_cls) if f.name == name)


def renamed_options(tree_cls, renamed: dict):
    """A decorator adding hidden options under old names (``{"score-threshold":
    "detection.min_score"}``, no dashes): still read, with a warning (see :func:`pop_settings`)."""
    def decorate(command):
        for old, new in renamed.items():
            config_cls, f = _tree_field(tree_cls, new)
            command = _field_option(config_cls, f, "renamed__" + old.replace("-", "_"), old,
                                    hidden=True)(command)
        return command
    return decorate


def _take_renamed_options(tree_cls, options: dict, renamed: dict) -> None:
    """Move the values of old option names (from :func:`renamed_options`) to the new ones."""
    for old, new in renamed.items():
        value = options.pop("renamed__" + old.replace("-", "_"), None)
        if value is None:
            continue
        _, f = _tree_field(tree_cls, new)
        key = new.replace(".", "__")
        log.warning("--%s is now --%s (the old name still works, for now)", old, option_name(f))
        if options.get(key) is not None:
            raise PosetrackError(f"--{option_name(f)} is given twice (also as --{old})")
        options[key] = value


def pop_settings(tree_cls, options: dict, config_file=None, renamed: dict | None = None,
                 renamed_opts: dict | None = None):
    """The settings tree from the YAML file ``config_file`` (optional) overridden by the
    command-line ``options`` given (from :func:`settings_options`; used keys are removed).
    ``renamed``: old YAML keys (see :func:`load_yaml_config`); ``renamed_opts``: old option
    names (see :func:`renamed_options`)."""
    _take_renamed_options(tree_cls, options, renamed_opts or {})
    sections = {s.name: s.default_factory for s in tree_sections(tree_cls)}
    values = load_yaml_config(config_file, sections, renamed) if config_file else {}
    return tree_cls(**{
        name: pop_config(cls, options, values.get(name), prefix=f"{name}__", source=config_file,
                         section_name=name)
        for name, cls in sections.items()})


def dump_settings(tree) -> str:
    """The tree as YAML that :func:`pop_settings` reads back to an equal tree."""
    import yaml

    data = {s.name: dataclasses.asdict(getattr(tree, s.name)) for s in tree_sections(type(tree))}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

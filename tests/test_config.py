"""The settings tree of run/batch: every setting from the command line and from YAML, one clear
line for every bad value, --print-config read back by --config, --help grouped by stage."""

import dataclasses
import logging

import pytest
import yaml
from click.testing import CliRunner

from posetrack.checks import SettingError, check_value, field_types, setting, validate
from posetrack.cli import main
from posetrack.config import check_unique_options, option_name, pop_settings
from posetrack.run import RENAMED_KEYS, RENAMED_OPTIONS, RunSettings

SECTIONS = [(s.name, s.default_factory) for s in dataclasses.fields(RunSettings)]
FIELDS = [(name, cls, f) for name, cls in SECTIONS for f in dataclasses.fields(cls)]
IDS = [f"{name}.{f.name}" for name, _, f in FIELDS]


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _printed(*args) -> dict:
    result = _invoke("run", "--print-config", *args)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.stdout)


def _other_value(cls, f, tmp_path):
    """A valid value of the field that is not its default."""
    base, _ = field_types(cls)[f.name]
    meta, default = f.metadata, f.default
    if base is bool:
        return not default
    if meta.get("choices"):
        return next(c for c in meta["choices"] if c != default)
    if meta.get("kind") == "device":
        return "cpu"
    if meta.get("kind") == "dir":
        return str(tmp_path)
    if meta.get("kind") in ("path", "existing-path"):
        path = tmp_path / "some_file.json"
        path.write_text("[]")
        return str(path)
    if base is str:
        return (default or "") + "x"  # an optional text (None by default) too
    if base is int:
        return default + (meta.get("multiple_of") or 1)
    low, high = meta.get("low"), meta.get("high")
    value = (low + high) / 2 if high is not None else default + 0.5
    return value if value != default else (low + value) / 2


@pytest.mark.parametrize("section, cls, f", FIELDS, ids=IDS)
def test_every_setting_is_settable_from_the_command_line_and_from_yaml(section, cls, f, tmp_path):
    value = _other_value(cls, f, tmp_path)
    flag = "--" + option_name(f)
    if isinstance(value, bool):
        args = [flag if value else f"--no-{option_name(f)}"]
    else:
        args = [flag, value]
    assert _printed(*args)[section][f.name] == value
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({section: {f.name: value}}))
    printed = _printed("--config", config)
    assert printed[section][f.name] == value


def test_the_command_line_overrides_the_file(tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"tracker": {"memory_frames": 3, "match_last_seen": False},
                                      "flow": {"method": "none"}}))
    printed = _printed("--config", config, "--memory-frames", "5", "--match-last-seen")
    assert printed["tracker"]["memory_frames"] == 5 and printed["tracker"]["match_last_seen"] is True
    assert printed["flow"]["method"] == "none"  # not given on the command line: the file's


def _bad_values(cls, f):
    """Values the field must refuse, each with why."""
    base, optional = field_types(cls)[f.name]
    meta = f.metadata
    if base is bool:
        return ["no", "yes", 1, 0.0]
    if meta.get("kind") == "device":
        return [3, "gpu", "cuda:x", ""]
    if meta.get("choices"):
        return ["unknown", 1, True]
    if base is str:
        return [3, True, [], ""]
    bad = ["3", True, [1]]
    if base is int:
        bad.append(1.5)
    else:
        bad.append(".nan")
    if meta.get("low") is not None:
        bad.append(meta["low"] - 1 if base is int else meta["low"] - 0.5)
        if meta.get("low_open"):
            bad.append(meta["low"])
    if meta.get("high") is not None:
        bad.append(meta["high"] + 1)
    if meta.get("multiple_of"):
        bad.append(meta["low"] + 1)
    return bad


@pytest.mark.parametrize("section, cls, f", FIELDS, ids=IDS)
def test_a_bad_yaml_value_gets_one_clear_line(section, cls, f, tmp_path):
    config = tmp_path / "settings.yaml"
    for value in _bad_values(cls, f):
        if value == ".nan":
            config.write_text(f"{section}:\n  {f.name}: .nan\n")
            shown = "nan"
        else:
            config.write_text(yaml.safe_dump({section: {f.name: value}}))
            shown = repr(value)
        result = _invoke("run", config, "--out", tmp_path / "t.json", "--config", config)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1, (value, result.output)
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        line = lines[0]
        assert str(config) in line and f"{section}.{f.name}" in line and "must be" in line, line
        assert line.endswith(f"got {shown}"), line
        assert not (tmp_path / "t.json").exists()


def test_messages_name_the_allowed_values(tmp_path):
    config = tmp_path / "c.yaml"
    cases = {
        "pose: {max_batch: 0}": "pose.max_batch: must be an integer >= 1, got 0",
        "pose: {flip_test: 'no'}": "pose.flip_test: must be true or false",
        "models: {device: 3}": "models.device: must be auto, cpu, cuda or cuda:N",
        "flow: {dis_preset: slow}": "flow.dis_preset: must be one of ultrafast, fast, medium, got 'slow'",
        "detection: {min_score: 1.5}": "detection.min_score: must be a number in [0, 1], got 1.5",
        "detection: {image_size: 100}": "detection.image_size: must be an integer >= 32, a multiple of 32, got 100",
        "smoothing: {min_cutoff: 0}": "smoothing.min_cutoff: must be a number > 0, got 0",
        "tracker: {memory_frames: 2.0}": "tracker.memory_frames: must be an integer >= 1, got 2.0",
    }
    for text, message in cases.items():
        config.write_text(text)
        result = _invoke("run", "--print-config", "--config", config)
        assert result.exit_code == 1 and f"{config}: {message}" in result.output, result.output


def test_bad_command_line_values_name_the_option():
    result = _invoke("run", "--print-config", "--max-pose-batch", "0")
    assert result.exit_code == 1 and "--max-pose-batch: must be an integer >= 1, got 0" in result.output
    result = _invoke("run", "--print-config", "--device", "gpu")
    assert result.exit_code == 1 and "--device: must be auto, cpu, cuda or cuda:N" in result.output
    result = _invoke("run", "--print-config", "--dis-preset", "slow")
    assert result.exit_code == 2 and "'slow' is not one of" in result.output  # click's own check


def test_print_config_loads_back_to_the_same_settings(tmp_path):
    args = ["--flow", "dis", "--flow-scale", "0.25", "--dis-preset", "fast", "--no-flip-test",
            "--max-pose-batch", "8", "--box-padding", "1.4", "--detection-min-score", "0.4",
            "--memory-frames", "5", "--no-hidden-velocity", "--smooth", "--beta", "3",
            "--device", "cpu", "--raft-iterations", "6", "--weights-dir", tmp_path]
    result = _invoke("run", "--print-config", *args)
    assert result.exit_code == 0, result.output
    config = tmp_path / "settings.yaml"
    config.write_text(result.stdout)
    again = _invoke("run", "--print-config", "--config", config)
    assert again.exit_code == 0 and again.stdout == result.stdout
    options = {}
    loaded = pop_settings(RunSettings, options, config, RENAMED_KEYS)
    assert loaded.flow.dis_preset == "fast" and loaded.pose.max_batch == 8 and not loaded.pose.flip_test
    assert loaded.smoothing.enabled and loaded.smoothing.beta == 3.0
    assert loaded != RunSettings()
    # the defaults round-trip too, and batch prints the same settings as run
    config.write_text(_invoke("run", "--print-config").stdout)
    assert pop_settings(RunSettings, {}, config, RENAMED_KEYS) == RunSettings()
    assert _invoke("batch", "--print-config", *args).stdout == result.stdout


def test_help_is_grouped_by_stage():
    for command in ("run", "batch"):
        text = _invoke(command, "--help").output
        headings = ["Options:"] + [f"{s.metadata['title']} settings (YAML section '{s.name}'):"
                                   for s in dataclasses.fields(RunSettings)]
        positions = [text.index(h) for h in headings]
        assert positions == sorted(positions), headings
        # each option is listed under its own stage
        for section, _, f in FIELDS:
            start = text.index(f"YAML section '{section}'")
            end = min([p for p in positions if p > start] + [len(text)])
            assert f"--{option_name(f)}" in text[start:end], (section, f.name)
        assert text.index("--out") < positions[1] and text.index("--config") < positions[1]
    assert "Tracker settings:" in _invoke("track", "--help").output
    assert "Smoothing settings:" in _invoke("render", "--help").output


def test_command_line_names_are_unique():
    check_unique_options(RunSettings)
    names = [option_name(f) for _, _, f in FIELDS]
    assert len(names) == len(set(names))
    assert not set(RENAMED_OPTIONS) & set(names)  # an old name still read is no current name


def test_old_yaml_names_are_read_with_a_warning(tmp_path, caplog):
    config = tmp_path / "old.yaml"
    config.write_text(yaml.safe_dump({"run": {"flow": "dis", "max_pose_batch": 4, "smooth": True},
                                      "detector": {"score_threshold": 0.3, "image_size": 320}}))
    with caplog.at_level(logging.WARNING):
        settings = pop_settings(RunSettings, {}, config, RENAMED_KEYS)
    assert (settings.flow.method, settings.pose.max_batch, settings.smoothing.enabled) == ("dis", 4, True)
    assert settings.detection.min_score == 0.3 and settings.detection.image_size == 320
    assert "detector.score_threshold is now detection.min_score" in caplog.text
    # one setting given under two names is refused
    config.write_text(yaml.safe_dump({"detection": {"min_score": 0.3},
                                      "pipeline": {"detection_min_score": 0.5}}))
    result = _invoke("run", "--print-config", "--config", config)
    assert result.exit_code == 1 and "detection.min_score is given twice" in result.output
    # a value under an old name is checked and named as written
    config.write_text(yaml.safe_dump({"run": {"max_pose_batch": 0}}))
    result = _invoke("run", "--print-config", "--config", config)
    assert "run.max_pose_batch: must be an integer >= 1, got 0" in result.output


def test_unknown_keys_and_sections_get_the_closest_name(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"tracker": {"memory_frame": 3}}))
    result = _invoke("run", "--print-config", "--config", config)
    assert "unknown key 'memory_frame'; did you mean 'memory_frames'?" in result.output
    config.write_text(yaml.safe_dump({"trackers": {"memory_frames": 3}}))
    result = _invoke("run", "--print-config", "--config", config)
    assert "unknown key 'trackers'; did you mean 'tracker'?" in result.output


# ---------------------------------------------------------------------------------------------
# The field checks alone


@dataclasses.dataclass(frozen=True)
class _Example:
    count: int = setting(2, "", low=1)
    ratio: float = setting(0.5, "", low=0.0, high=1.0)
    flag: bool = setting(True, "")
    name: str | None = setting(None, "")

    def __post_init__(self):
        validate(self)


@pytest.mark.parametrize("changes, message", [
    ({"count": True}, "count must be an integer >= 1, got True"),      # a bool is no integer
    ({"count": 0}, "count must be an integer >= 1, got 0"),            # below the range
    ({"ratio": "0.5"}, r"ratio must be a number in \[0, 1\], got '0.5'"),  # a string is no number
    ({"ratio": float("nan")}, "ratio must be a number"),               # NaN is in no range
    ({"flag": 1}, "flag must be true or false"),                       # 1 is no boolean
    ({"name": 3}, "name must be a text or null"),                      # optional text
])
def test_field_checks(changes, message):
    with pytest.raises(SettingError, match=message):
        _Example(**changes)


def test_an_integer_for_a_float_field_is_stored_as_a_float():
    example = _Example(ratio=1, name=None)
    assert example.ratio == 1.0 and isinstance(example.ratio, float)
    assert check_value(_Example, "name", "x") == "x"


def test_the_readme_names_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [f"--{option_name(f)}" for _, _, f in FIELDS if f"--{option_name(f)}" not in readme]
    assert not missing, f"README.md does not mention {missing}"


def test_old_option_names_are_read_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        printed = _printed("--score-threshold", "0.4", "--no-half")
    assert printed["detection"]["min_score"] == 0.4 and printed["detection"]["half"] is False
    assert "--score-threshold is now --detection-min-score" in caplog.text
    assert _printed("--output-box-threshold", "0.3")["detection"]["min_score"] == 0.3
    result = _invoke("run", "--print-config", "--score-threshold", "0.4", "--detection-min-score", "0.3")
    assert result.exit_code == 1 and "--detection-min-score is given twice" in result.output
    assert "--score-threshold" not in _invoke("run", "--help").output  # hidden

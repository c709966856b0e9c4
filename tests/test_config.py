"""Config: the example file is complete and equals the defaults; errors name the TOML path
and line, types are strict, and unknown keys get a suggestion."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from meshmon.config import Config, ConfigError, load, parse
from meshmon.config_errors import ConfigProblem
from meshmon.toml_lines import key_lines

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= _keys(ann, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def _flatten(data: dict, prefix: str = "") -> set[str]:  # type: ignore[type-arg]
    out: set[str] = set()
    for k, v in data.items():
        out |= _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


def test_example_config_lists_every_key_with_its_default() -> None:
    assert _flatten(tomllib.loads(EXAMPLE.read_text())) == _keys(Config)
    assert load(EXAMPLE) == Config()


def test_every_error_is_named_by_its_toml_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse('[mqtt]\nport = "x"\nhots = 1\n[influxdb]\napi = "v3"\n[http]\nport = 70000\n')
    paths = {problem.path for problem in info.value.errors}
    assert paths == {"mqtt.port", "mqtt.hots", "influxdb.api", "http.port"}


def test_syntax_error_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="syntax"):
        parse("[mqtt\nport=1")
    with pytest.raises(ConfigError, match="file"):
        load(tmp_path / "nope.toml")


def test_check_config_command_exits_nonzero_naming_file_line_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[storage]\nflush_interval_s = -1\n[influxdb]\nenabled = true\nurl = "x"\n')
    run = subprocess.run(
        [sys.executable, "-m", "meshmon.cli", "check-config", str(bad)],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"{bad}:2: storage.flush_interval_s: Input should be greater than 0",
        f"{bad}:5: influxdb.url: url must start with http:// or https://",
    ]
    ok = subprocess.run(
        [sys.executable, "-m", "meshmon.cli", "check-config", str(EXAMPLE)],
        capture_output=True, text=True, timeout=60,
    )
    assert ok.returncode == 0, ok.stderr


def _problems(tmp_path: Path, toml: str) -> list[ConfigProblem]:
    """The problems `load` finds in a real file holding `toml`."""
    file = tmp_path / "meshmon.toml"
    file.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load(file)
    assert str(file) in str(info.value)
    return info.value.errors


def test_a_quoted_number_is_not_a_number(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[mqtt]\nport = "1883"\n\n[map]\nrefresh_s = "5"\n')
    assert problems == [
        ConfigProblem("mqtt.port", "expected an integer, got a string "
                      "(write 1883 without quotes)", 2),
        ConfigProblem("map.refresh_s", "expected a number, got a string "
                      "(write 5 without quotes)", 5),
    ]


def test_a_boolean_is_not_a_number_but_an_integer_is_a_float(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "[map]\nrefresh_s = 10\ncoverage_radius_m = true\n"
                                   "[http]\nport = 8080.0\n[mqtt]\ntls = 1\n")
    assert problems == [
        ConfigProblem("map.coverage_radius_m", "expected a number, got true", 3),
        ConfigProblem("http.port", "expected an integer, got a number", 5),
        ConfigProblem("mqtt.tls", "expected true or false, got an integer", 7),
    ]
    assert parse("[map]\nrefresh_s = 10\n").map.refresh_s == 10.0


def test_an_unknown_key_gets_the_closest_known_one(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[mqt]\nhost = "x"\n[http]\nprot = 1\n[storage]\n'
                                   "zzz = 1\n")
    assert problems[0] == ConfigProblem("mqt", "unknown key 'mqt'; did you mean 'mqtt'?", 1)
    assert problems[1] == ConfigProblem("http.prot", "unknown key 'prot'; did you mean 'port'?",
                                        4)
    assert problems[2].path == "storage.zzz" and problems[2].line == 6
    assert problems[2].message.startswith("unknown key 'zzz'; storage has: path, ")


def test_lines_of_dotted_keys_inline_tables_and_arrays_of_tables(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """\
mqtt.embedded.port = "1"
[installer]
planned = [
  {src = "a", dst = "b", signal_dbm = -60},
  {src = "c", dst = "d", signal_dbm = "-70"},
]
[[notifiers]]
name = "ops"
type = "webhook"
timeout_s = "3"
[[notifiers]]
name = "chat"
type = "webhook"
""")
    assert [(p.path, p.line) for p in problems] == [
        ("mqtt.embedded.port", 1),
        ("installer.planned.1.signal_dbm", 5),
        ("notifiers.0.timeout_s", 10),
        ("notifiers.1.url", 11),  # missing: the line of its [[notifiers]] table
    ]


def test_cross_checks_name_the_key_they_are_about(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """\
[[notifiers]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[routes]]
notifiers = ["ops"]
[[routes]]
notifiers = ["ops",
             "opps"]
""")
    assert problems == [ConfigProblem(
        "routes.1.notifiers.1", "routes[1] names unknown notifier 'opps'; did you mean 'ops'?",
        10)]


def test_syntax_errors_name_their_line(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, '[mqtt]\nhost = "x"\nport = \n')
    assert (problem.path, problem.line) == ("(syntax)", 3)


def test_key_lines_are_not_fooled_by_strings_and_comments() -> None:
    text = (
        'title = """\n'
        "[mqtt]\n"
        'port = 1 """   # [http]\n'
        "'a.b' = 'x # not a comment'\n"
        '"c" . d = [\n'
        "  1, # comment ]\n"
        "  [2, 3],\n"
        "]\n"
        '[t."u v"]\n'
        'w = {x = "}", y = {z = 1}}\n'
    )
    tomllib.loads(text)
    lines = key_lines(text)
    assert ("mqtt",) not in lines and ("http",) not in lines
    assert lines[("a.b",)] == 4
    assert lines[("c", "d")] == 5 and lines[("c", "d", 1)] == 7
    assert lines[("c", "d", 1, 1)] == 7
    assert lines[("t", "u v")] == 9 and lines[("t", "u v", "w", "y", "z")] == 10


def test_notifier_and_route_errors_are_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse('[[notifiers]]\nname = "w"\ntype = "webhook"\n'
              '[[notifiers]]\nname = "a"\ntype = "apprise"\nurl = "bogus://nothing"\n')
    assert {p.path for p in info.value.errors} == {"notifiers.0.url", "notifiers.1.url"}
    with pytest.raises(ConfigError, match="unknown notifier 'nope'"):
        parse('[[notifiers]]\nname = "w"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
              '[[routes]]\nnotifiers = ["nope"]\n')
    with pytest.raises(ConfigError, match="events"):
        parse('[[notifiers]]\nname = "w"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
              '[[routes]]\nnotifiers = ["w"]\nevents = ["explosion"]\n')
    ok = parse('[[notifiers]]\nname = "n"\ntype = "apprise"\nurl = "ntfy://127.0.0.1/topic"\n')
    assert ok.notifiers[0].rate_per_minute == 6

"""Config: the example file is complete and equals the defaults; errors name TOML paths."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from meshmon.config import Config, ConfigError, load, parse

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
    paths = {path for path, _ in info.value.errors}
    assert paths == {"mqtt.port", "mqtt.hots", "influxdb.api", "http.port"}


def test_syntax_error_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="syntax"):
        parse("[mqtt\nport=1")
    with pytest.raises(ConfigError, match="file"):
        load(tmp_path / "nope.toml")


def test_check_config_command_exits_nonzero_naming_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[storage]\nflush_interval_s = -1\n[influxdb]\nenabled = true\nurl = "x"\n')
    run = subprocess.run(
        [sys.executable, "-m", "meshmon.cli", "check-config", str(bad)],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 1
    assert "storage.flush_interval_s" in run.stderr
    assert "influxdb" in run.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "meshmon.cli", "check-config", str(EXAMPLE)],
        capture_output=True, text=True, timeout=60,
    )
    assert ok.returncode == 0, ok.stderr


def test_notifier_and_route_errors_are_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse('[[notifiers]]\nname = "w"\ntype = "webhook"\n'
              '[[notifiers]]\nname = "a"\ntype = "apprise"\nurl = "bogus://nothing"\n')
    assert {path for path, _ in info.value.errors} == {"notifiers.0", "notifiers.1"}
    with pytest.raises(ConfigError, match="unknown notifier 'nope'"):
        parse('[[notifiers]]\nname = "w"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
              '[[routes]]\nnotifiers = ["nope"]\n')
    with pytest.raises(ConfigError, match="events"):
        parse('[[notifiers]]\nname = "w"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
              '[[routes]]\nnotifiers = ["w"]\nevents = ["explosion"]\n')
    ok = parse('[[notifiers]]\nname = "n"\ntype = "apprise"\nurl = "ntfy://127.0.0.1/topic"\n')
    assert ok.notifiers[0].rate_per_minute == 6

"""Bridge config: every error names its TOML path; source kinds come from the registry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from meshmon_bridge import config as bridge_config
from meshmon_bridge.config import ConfigError, from_dict, load
from meshmon_bridge.main import build_sources, main
from meshmon_bridge.source import BridgeContext, NodeUpdate, Source
from meshmon_bridge.sources import KINDS, SourceKind
from pydantic import BaseModel, ConfigDict


class EchoTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str
    interval_s: float = 30
    file: str = ""


class EchoSource:
    kind = "echo"

    def __init__(self, table: EchoTable, context: BridgeContext, shared: list[str]) -> None:
        self.name = f"echo {table.node}"
        self.interval_s = table.interval_s
        self.path = context.base_dir / table.file
        self.shared = shared

    async def poll(self) -> list[NodeUpdate]:
        return [NodeUpdate(self.name.split()[1], online=True)]

    async def close(self) -> None:
        return None


def _create(tables: Sequence[EchoTable], context: BridgeContext) -> list[Source]:
    shared: list[str] = []  # one object for all tables of the kind, like a shared engine
    return [EchoSource(t, context, shared) for t in tables]


@pytest.fixture
def echo_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "echo", SourceKind(EchoTable, _create))


def _errors(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        from_dict(data, "bridge.toml")
    return info.value.errors


def test_a_valid_config_builds_one_source_per_table(echo_kind: None, tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('[bridge]\nid = "bridge-1"\n[mqtt]\nhost = "broker.example"\n'
                    'topic_prefix = "ff/hb"\nusername = "bridge-1"\n'
                    '[[echo]]\nnode = "a"\nfile = "a.json"\n[[echo]]\nnode = "b"\n'
                    'interval_s = 5\n')
    cfg = load(path)
    assert cfg.bridge.id == "bridge-1" and cfg.mqtt.topic_prefix == "ff/hb"
    assert cfg.mqtt.host == "broker.example" and cfg.mqtt.port == 1883
    assert [t.path for t in cfg.sources] == ["echo[0]", "echo[1]"]
    sources = build_sources(cfg)
    assert [s.name for s in sources] == ["echo a", "echo b"]
    assert [s.interval_s for s in sources] == [30, 5]
    first, second = sources
    assert isinstance(first, EchoSource) and isinstance(second, EchoSource)
    assert first.path == tmp_path / "a.json"  # relative to the config file
    assert first.shared is second.shared


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({}, "bridge", "Field required"),
        ({"bridge": {"id": "b", "colour": 1}}, "bridge.colour", "unknown key"),
        ({"bridge": {"id": "10.0.0.1"}}, "bridge.id", "MAC or IP"),
        ({"bridge": {"id": "-x"}}, "bridge.id", "is not"),
        ({"bridge": {"id": "b"}, "mqtt": {"prot": 1}}, "mqtt.prot", "unknown key"),
        ({"bridge": {"id": "b"}, "mqtt": {"port": 0}}, "mqtt.port", "1..65535"),
        ({"bridge": {"id": "b"}, "mqtt": {"port": "x"}}, "mqtt.port", "integer"),
        ({"bridge": {"id": "b"}, "mqtt": {"topic_prefix": "a//b"}}, "mqtt.topic_prefix",
         "pattern"),
        ({"bridge": {"id": "b"}, "snmpp": [{}]}, "snmpp", "unknown table"),
        ({"bridge": {"id": "b"}, "echo": {"node": "a"}}, "echo", "[[echo]]"),
        ({"bridge": {"id": "b"}, "echo": [{"node": "a"}, {"node": "b", "intervall_s": 3}]},
         "echo[1].intervall_s", "unknown key"),
        ({"bridge": {"id": "b"}, "echo": [{"node": "a"}, {}, {"node": "c", "interval_s": "x"}]},
         "echo[1].node", "Field required"),
    ],
)
def test_errors_name_the_toml_path(echo_kind: None, data: dict, path: str, words: str) -> None:
    errors = _errors(data)
    assert any(p == path and words in msg for p, msg in errors), errors


def test_all_errors_are_reported_at_once(echo_kind: None) -> None:
    errors = _errors({"bridge": {"id": "b", "x": 1}, "echo": [{}, {"node": "c", "y": 2}]})
    assert {p for p, _ in errors} == {"bridge.x", "echo[0].node", "echo[1].y"}


def test_unknown_table_lists_the_known_kinds(echo_kind: None) -> None:
    ((_path, msg),) = _errors({"bridge": {"id": "b"}, "snmpp": [{}]})
    assert "echo" in msg and "bridge" in msg and "mqtt" in msg


def test_the_command_exits_2_naming_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('[bridge]\nid = "b"\n[mqtt]\nport = 70000\n')
    assert main(["-c", str(path), "--once", "--print"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "mqtt.port: must be 1..65535" in err
    path.write_text('[bridge\nid = "b"\n')
    assert main(["-c", str(path), "--once", "--print"]) == 2
    assert "(syntax)" in capsys.readouterr().err
    assert main(["-c", str(tmp_path / "missing.toml"), "--once", "--print"]) == 2
    assert "(file)" in capsys.readouterr().err
    path.write_text('[bridge]\nid = "b"\n')
    assert main(["-c", str(path), "--print"]) == 2
    assert "--once" in capsys.readouterr().err


def test_node_ids_follow_the_collectors_rule() -> None:
    from meshmon.model.addresses import looks_like_address

    for ok in ("hill-5-ap", "nycmesh-1234", "ap.roof_3", "a" * 64):
        assert bridge_config.check_node_id(ok) == ok and not looks_like_address(ok)
    for bad in ("10.0.0.1", "ap-192.168.1.20", "f81a67a5e9c1", "ap-f8-1a-67-a5-e9-c1"):
        assert looks_like_address(bad)
        with pytest.raises(ValueError, match="MAC or IP"):
            bridge_config.check_node_id(bad)
    for bad in ("", "-ap", "a" * 65, "ap/1", "ap 1"):
        with pytest.raises(ValueError, match="is not"):
            bridge_config.check_node_id(bad)


def test_the_example_config_loads() -> None:
    example = Path(__file__).parents[2] / "agents" / "bridge.example.toml"
    cfg = load(example)
    assert cfg.bridge.id == "bridge-1" and cfg.mqtt.topic_prefix == "meshmon"

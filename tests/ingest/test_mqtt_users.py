"""The embedded broker's password file and per-user ACL, as plain data (no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshmon.config import Config, ConfigError, anonymous_allowed, is_loopback
from meshmon.ingest.mqtt_users import Acl, MqttUser, parse_line, read_users, write_lines

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
USERS = {
    "roof-17": MqttUser("roof-17", HASH),
    "snmp-west": MqttUser("snmp-west", HASH, "bridge", ("ap-*", "gw-?")),
    "grafana": MqttUser("grafana", HASH, "collector"),
}
ACL = Acl(USERS, "mesh/x", collector="meshmon", allow_anonymous=False)
N = "mesh/x/v1/node"


def test_a_node_publishes_only_its_own_status_info_report() -> None:
    for kind in ("status", "info", "report"):
        assert ACL.may_publish("roof-17", f"{N}/roof-17/{kind}")
        assert not ACL.may_publish("roof-17", f"{N}/roof-18/{kind}")
    for topic in (f"{N}/roof-17/cmd", f"{N}/roof-17/report/x", f"{N}/roof-17", "mesh/x/other",
                  "meshmon/v1/node/roof-17/report", "mesh/x/v1/bridge/roof-17/status"):
        assert not ACL.may_publish("roof-17", topic), topic
    assert ACL.may_subscribe("roof-17", f"{N}/roof-17/cmd")
    for topic in (f"{N}/roof-18/cmd", f"{N}/+/cmd", f"{N}/roof-17/#", f"{N}/roof-17/+", "#"):
        assert not ACL.may_subscribe("roof-17", topic), topic


def test_the_collector_reads_everything_and_publishes_only_commands() -> None:
    for collector in ("meshmon", "grafana"):  # [mqtt] username, or the role in the file
        assert ACL.may_subscribe(collector, f"{N}/+/report")
        assert ACL.may_subscribe(collector, "mesh/x/#")
        assert not ACL.may_subscribe(collector, "#")
        assert not ACL.may_subscribe(collector, "$SYS/#")
        assert ACL.may_publish(collector, f"{N}/roof-17/cmd")
        assert not ACL.may_publish(collector, f"{N}/roof-17/report")
    assert ACL.role_of("meshmon") == "collector"


def test_a_bridge_publishes_its_status_and_the_nodes_it_polls() -> None:
    assert ACL.may_publish("snmp-west", "mesh/x/v1/bridge/snmp-west/status")
    assert not ACL.may_publish("snmp-west", "mesh/x/v1/bridge/snmp-east/status")
    for node in ("ap-1", "ap-roof-9", "gw-3"):
        assert ACL.may_publish("snmp-west", f"{N}/{node}/report"), node
        assert ACL.may_subscribe("snmp-west", f"{N}/{node}/cmd"), node
    for node in ("roof-17", "gw-33", "xap-1", "AP-1"):
        assert not ACL.may_publish("snmp-west", f"{N}/{node}/info"), node
    assert not ACL.may_publish("snmp-west", f"{N}/ap-1/cmd")
    assert not ACL.may_subscribe("snmp-west", f"{N}/+/cmd")


def test_anonymous_and_unknown_users() -> None:
    assert not ACL.may_publish(None, f"{N}/roof-17/report")
    assert not ACL.may_subscribe("", f"{N}/roof-17/cmd")
    assert not ACL.may_publish("stranger", f"{N}/stranger/report")
    migration = Acl(USERS, "mesh/x", "meshmon", allow_anonymous=True)
    assert migration.may_publish(None, f"{N}/anything/report")
    assert not migration.may_publish("roof-17", f"{N}/anything/report")


def test_password_file_lines_roundtrip_and_bad_lines_are_named(tmp_path: Path) -> None:
    for user in USERS.values():
        assert parse_line(user.line()) == user
    assert USERS["roof-17"].line() == f"roof-17:{HASH}"  # a node's role stays implicit
    bad = {
        "x": "expected user:hash",
        f"roof-17:{HASH}:admin": "unknown role 'admin'",
        f"bad!id:{HASH}": "node's user name is its node id",
        f"roof-17:{HASH}:node:ap-*": "only a bridge has a list",
        f"b:{HASH}:bridge:ap;rm": "node id pattern 'ap;rm'",
        "roof-17:$7$101$abc": "mosquitto_passwd",
    }
    for line, why in bad.items():
        with pytest.raises(ValueError, match=why.replace("*", r"\*")):
            parse_line(line)
    path = tmp_path / "passwd"
    path.write_text(f"# users\ncollector:{HASH}:collector\n\nroof-17:{HASH}:bridge:a b\n")
    with pytest.raises(ConfigError) as info:
        read_users(path)
    assert [(e.path, e.message) for e in info.value.errors] == [("mqtt.embedded.password_file",
                                  "line 4: user 'roof-17': node id pattern 'a b': letters, "
                                  "digits, '_.-' and the globs '*?[]!' only")]


def test_writing_keeps_other_lines_and_replaces_named_users(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    old = ["# roofs", f"roof-17:{HASH}", "stranger:$7$101$kept-as-it-was"]
    added = write_lines(path, old, [MqttUser("roof-17", "$6$new", "node"),
                                    MqttUser("snmp-west", HASH, "bridge", ("ap-*",))])
    assert added == {"snmp-west"}
    assert path.read_text().splitlines() == [
        "# roofs", "roof-17:$6$new", "stranger:$7$101$kept-as-it-was",
        f"snmp-west:{HASH}:bridge:ap-*"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["passwd"]  # no temporary file left


def test_anonymous_clients_only_where_the_config_says() -> None:
    def mqtt(**embedded: object) -> Config:
        return Config.model_validate({"mqtt": {"username": "c", "embedded": embedded}})

    assert anonymous_allowed(mqtt().mqtt)  # loopback, no password file: a local setup
    assert not anonymous_allowed(mqtt(password_file="/p").mqtt)
    assert anonymous_allowed(mqtt(host="0.0.0.0", allow_anonymous=True).mqtt)
    assert not anonymous_allowed(mqtt(host="::1", allow_anonymous=False, password_file="/p").mqtt)
    for host in ("0.0.0.0", "10.0.0.1", "", "mesh.example.net"):
        assert not is_loopback(host)
        with pytest.raises(ValueError, match="nobody could log in"):
            mqtt(host=host)
    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
        assert is_loopback(host)
    with pytest.raises(ValueError, match="allow_anonymous = false"):
        mqtt(allow_anonymous=False)

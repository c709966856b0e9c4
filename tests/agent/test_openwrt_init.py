"""The OpenWrt procd init script and UCI mapping, run under busybox with stubbed helpers.

`tests/agent/openwrt/functions.sh` and `procd.sh` stand in for OpenWrt's UCI `config_*`
and `procd_*` shell functions (the real ones need ubus and procd); the init script runs
unchanged. Checked: the command line and respawn it gives procd, the TOML it writes from
/etc/config/meshmon, and that both agents accept that TOML with the values from UCI.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from dataclasses import fields
from pathlib import Path

from meshmon_agent.config import AgentConfig, from_dict

from tests.agent.router import BUSYBOX, ROOT, Router

OPENWRT = ROOT / "agents" / "openwrt"
INIT = OPENWRT / "files" / "meshmon-agent.init"
STUBS = Path(__file__).parent / "openwrt"

FULL = """
config agent 'agent'
	option enabled '1'
	option node 'roof-7'
	option interval_s '15'
	option log_level 'DEBUG'

config mqtt 'mqtt'
	option host 'mqtt.example.org'
	option port '8883'
	option username 'roof-7'
	option password 'p"a\\ss word'
	option tls '1'
	option tls_ca_file '/etc/ssl/certs/ca.pem'
	option tls_insecure 'off'
	option queue_max '200'
	option reconnect_max_s '2.5'

config collect 'collect'
	option wifi 'yes'
	list wifi_interfaces 'wlan0'
	list wifi_interfaces 'mesh0'
	option survey '0'
	option batman_mesh_if 'bat0'
	option olsr_url 'http://127.0.0.1:9090/links'
	option babel_socket '[::1]:33123'

config info 'info'
	option lat '41.38'
	option lon '2.17'
	option gateway '1'
	list tags 'roof'
	list tags 'backbone "north"'
	option owner_contact 'Ana <ana@example.org>'
	option owner_notify '1'

config peer
	option address '10.0.0.2'
	option node 'hill-5'

config peer
	option address 'pLj2T3b1YYugGIx238T+tD9WYRgtEIpcRSfW6kkJsnE='
	option node 'gw-1'
"""


def start(tmp_path: Path, uci: str) -> tuple[list[str], str]:
    """Run start_service and service_triggers; (procd calls, the TOML written)."""
    etc = tmp_path / "etc-config"
    etc.mkdir(exist_ok=True)
    (etc / "meshmon").write_text(uci)
    log, conf = tmp_path / "procd.log", tmp_path / "var" / "agent.toml"
    log.write_text("")
    script = (f". {STUBS}/functions.sh; . {STUBS}/procd.sh; . {INIT}; CONF={conf}; "
              "start_service; service_triggers")
    router = Router(tmp_path / "router")  # busybox applets only on PATH
    subprocess.run([BUSYBOX, "sh", "-c", script], check=True, timeout=20,
                   env={**router.env(), "UCI_CONFIG_DIR": str(etc), "PROCD_LOG": str(log)})
    return log.read_text().splitlines(), conf.read_text() if conf.exists() else ""


def test_start_builds_the_command_line_with_respawn(tmp_path: Path) -> None:
    calls, _ = start(tmp_path, FULL)
    conf = tmp_path / "var" / "agent.toml"
    assert calls == [
        "open_instance",
        f"set_param command /usr/bin/meshmon-agent -c {conf}",
        "set_param file /etc/config/meshmon",
        "set_param respawn 3600 5 0",
        "set_param stdout 1",
        "set_param stderr 1",
        "set_param term_timeout 10",
        "close_instance",
        "reload_trigger meshmon",
    ]
    assert conf.stat().st_mode & 0o077 == 0, "the config holds the MQTT password"


def test_uci_options_become_the_agents_config(tmp_path: Path) -> None:
    _, toml = start(tmp_path, FULL)
    cfg = from_dict(tomllib.loads(toml), "generated")
    assert (cfg.node, cfg.interval_s, cfg.log_level) == ("roof-7", 15, "DEBUG")
    m = cfg.mqtt
    assert (m.host, m.port, m.username, m.password) == (
        "mqtt.example.org", 8883, "roof-7", 'p"a\\ss word')
    assert (m.tls, m.tls_ca_file, m.tls_insecure, m.queue_max, m.reconnect_max_s) == (
        True, "/etc/ssl/certs/ca.pem", False, 200, 2.5)
    c = cfg.collect
    assert (c.wifi, c.wifi_interfaces, c.survey, c.batman_mesh_if) == (
        True, ["wlan0", "mesh0"], False, "bat0")
    assert (c.olsr_url, c.babel_socket) == ("http://127.0.0.1:9090/links", "[::1]:33123")
    assert c.peer_names == {"10.0.0.2": "hill-5",
                            "pLj2T3b1YYugGIx238T+tD9WYRgtEIpcRSfW6kkJsnE=": "gw-1"}
    i = cfg.info
    assert (i.lat, i.lon, i.gateway, i.tags) == (41.38, 2.17, True, ["roof", 'backbone "north"'])
    assert (i.owner_contact, i.owner_notify) == ("Ana <ana@example.org>", True)
    # the sh agent reads the same file (it refuses what it cannot read, naming the key)
    router = Router(tmp_path / "sh")
    done = router.sh("-c", str(tmp_path / "var" / "agent.toml"), "--once", "--print")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["node"] == "roof-7" and report["interval_s"] == 15


def test_the_shipped_uci_file_gives_the_defaults(tmp_path: Path) -> None:
    _, toml = start(tmp_path, (OPENWRT / "files" / "meshmon.config").read_text())
    cfg = from_dict(tomllib.loads(toml), "generated")
    assert cfg == AgentConfig(node=cfg.node)


def test_disabled_starts_nothing(tmp_path: Path) -> None:
    calls, toml = start(tmp_path, "config agent 'agent'\n\toption enabled '0'\n")
    assert calls == ["reload_trigger meshmon"] and toml == ""


def test_a_bad_uci_value_is_named_by_the_agent(tmp_path: Path) -> None:
    start(tmp_path, "config mqtt 'mqtt'\n\toption port 'eighty'\n")
    done = Router(tmp_path / "sh").sh("-c", str(tmp_path / "var" / "agent.toml"), "--once")
    assert done.returncode == 2 and "mqtt.port: expected int" in done.stderr


def test_every_uci_option_is_an_agent_key_and_the_package_files_exist() -> None:
    init = INIT.read_text()
    options = re.search(r"OPTIONS='([^']*)'", init)
    assert options is not None
    keys = {tuple(entry.split(":")[:2]) for entry in options.group(1).split()}
    cfg = AgentConfig()
    wanted = {("agent", f.name) for f in fields(cfg) if f.name not in ("mqtt", "collect", "info")}
    for section in ("mqtt", "collect", "info"):
        wanted |= {(section, f.name) for f in fields(getattr(cfg, section))}
    # canned_dir is for tests; peer_names come from `config peer` sections
    assert keys == wanted - {("collect", "canned_dir"), ("collect", "peer_names")}
    makefile = (OPENWRT / "Makefile").read_text()
    for path in re.findall(r"\./files/[\w.-]+|\$\(AGENTS_DIR\)/[\w/.*-]+", makefile):
        local = path.replace("$(AGENTS_DIR)", str(ROOT / "agents")).replace("./", f"{OPENWRT}/")
        assert list(Path("/").glob(local.lstrip("/"))), f"the Makefile installs {path}"

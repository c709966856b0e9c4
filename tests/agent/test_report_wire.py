"""A full report built from the real captures validates against the wire contract models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from meshmon_agent.agent import Agent
from meshmon_agent.collect import Collector
from meshmon_agent.config import from_dict
from meshmon_agent.runner import CannedRunner, canned_name

from meshmon.model import wire

DATA = Path(__file__).parents[1] / "data"


def make_canned_dir(target: Path) -> Path:
    """Captured outputs under the file names CannedRunner looks for."""
    target.mkdir(parents=True, exist_ok=True)
    files = {
        ("iw", "dev", "mesh-5000mhz", "station", "dump"): "iw/station-dump-3-mesh-peers-vht80.txt",
        ("iw", "dev", "mesh-5000mhz", "info"): "iw/info-mesh-point-ch149-80mhz.txt",
        ("batctl", "nj"): "batman/nj-librerouter-2-radios.json",
        ("batctl", "oj"): "batman/oj-librerouter-2-radios.json",
    }
    for argv, source in files.items():
        shutil.copy(DATA / source, target / canned_name(argv))
    return target


class _Sink:
    def __init__(self) -> None:
        self.infos: list[dict] = []
        self.reports: list[dict] = []

    def publish_info(self, info: dict) -> None:
        self.infos.append(info)

    def publish_report(self, report: dict) -> None:
        self.reports.append(report)


def test_report_and_info_from_captures_validate(tmp_path: Path) -> None:
    cfg = from_dict(
        {
            "node": "lr-test-1",
            "collect": {"wifi_interfaces": ["mesh-5000mhz"], "canned_dir": str(tmp_path)},
            "info": {"lat": 41.38, "lon": 2.17, "tags": ["roof"], "owner_contact": "x@example",
                     "owner_notify": True},
        }
    )
    make_canned_dir(tmp_path)
    sink = _Sink()
    agent = Agent(cfg, Collector(cfg.collect, CannedRunner(tmp_path)), sink, clock=lambda: 1.7e9)
    agent.maybe_publish_info(force=True)
    agent.tick()
    agent.tick()
    (info,) = sink.infos
    first, second = sink.reports
    assert (first["seq"], second["seq"]) == (0, 1)
    payload = json.dumps(first).encode()
    report = wire.decode("meshmon", "meshmon/v1/node/lr-test-1/report", payload)
    assert isinstance(report, wire.Report)
    assert report.ts == 1.7e9 and report.interval_s == 30
    kinds = sorted(link.kind for link in report.links)
    assert kinds == ["batman"] * 4 + ["wifi"] * 3
    assert report.radios[0].channel == 149 and report.radios[0].width_mhz == 80
    assert report.sys is not None and report.sys.mem_total_kb
    quiet = next(link for link in report.links if link.peer_mac == "ff:aa:bb:aa:44:55")
    assert quiet.rx_rate_mbps is None
    decoded = wire.decode("meshmon", "meshmon/v1/node/lr-test-1/info", json.dumps(info).encode())
    assert isinstance(decoded, wire.Info)
    assert decoded.location is not None and decoded.location.lat == 41.38
    assert decoded.owner is not None and decoded.owner.contact == "x@example"
    assert decoded.owner.notify is True


def test_example_config_loads() -> None:
    from meshmon_agent.config import AgentConfig, load

    cfg = load(Path(__file__).parents[2] / "agents" / "agent.example.toml")
    defaults = from_dict({"node": cfg.node})
    assert cfg == defaults == AgentConfig(node=cfg.node)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    import pytest
    from meshmon_agent.config import ConfigError, load

    bad = tmp_path / "agent.toml"
    for text, where in (
        ('[mqtt]\nhots = "x"\n', "mqtt.hots: unknown key; did you mean 'host'"),
        ('[mqtt]\nport = "1883"\n', "mqtt.port: expected int"),
        ('node = "bad node"\n', "node:"),
        ("[info]\nlat = 1.0\n", "lat and lon"),
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=where):
            load(bad)

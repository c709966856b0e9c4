"""Why an incident is critical (or not), in words, from the incident's own data."""

from __future__ import annotations

from typing import Any

from meshmon.alerts.model import Alert, LinkRef
from meshmon.web.incident_reason import explained, severity_reason
from tests.web.conftest import NOW, build_topology

GATEWAYS = {"gw-1", "gw-2"}


def view(kind: str, *, nodes: list[str] | None = None, links: list[LinkRef] | None = None,
         affected: list[str] | None = None, details: dict[str, Any] | None = None,
         severity: str = "critical") -> dict[str, Any]:
    return Alert(id="x", status="firing", kind=kind, severity=severity, summary="s",
                 started_at=NOW, cause_nodes=nodes or [], cause_links=links or [],
                 affected=affected or [], details=details or {}).to_payload()


def why(v: dict[str, Any]) -> str:
    return severity_reason(v, GATEWAYS.__contains__)


def test_an_outage_says_each_reason_it_is_critical() -> None:
    assert why(view("outage", nodes=["b"], affected=[f"l{i}" for i in range(10)])) == (
        "cuts off 10 nodes from every gateway")
    assert why(view("outage", nodes=["b"], affected=["l0"])) == (
        "cuts off 1 node from every gateway")
    assert why(view("outage", nodes=["gw-1"])) == "gateway gw-1 is down"
    assert why(view("outage", nodes=["gw-1", "gw-2", "x"], affected=["y"])) == (
        "cuts off 1 node from every gateway; gateways gw-1, gw-2 are down")
    assert why(view("outage", links=[LinkRef("a", "b", "wifi")])) == "link a — b is down"
    assert why(view("outage", links=[LinkRef("a", "b", "wifi"), LinkRef("c", "d", "vpn")])) == (
        "2 links are down")


def test_an_outage_that_cuts_off_nobody_says_so() -> None:
    assert why(view("outage", nodes=["leaf-7"], severity="warning")) == (
        "nobody else is cut off: only leaf-7 is down")
    names = ["n1", "n2", "n3", "n4", "n5"]
    assert why(view("outage", nodes=names, severity="warning")) == (
        "nobody else is cut off: only n1, n2, n3 and 2 more are down")


def test_other_kinds_say_what_they_are() -> None:
    assert why(view("flapping", nodes=["f"], details={"changes": 4, "window_s": 600})) == (
        "failed 4 times within 10m")
    assert "neighbours still hear" in why(view("silent", nodes=["r"]))
    degraded = view("degraded", links=[LinkRef("a", "b", "wifi")],
                    details={"a->b": ["signal -84 dBm < -80"], "b->a": ["signal -84 dBm < -80"]})
    assert why(degraded) == "below the link thresholds: signal -84 dBm < -80"
    assert why(view("weak_point", nodes=["bb"], affected=["x", "y"])) == (
        "2 nodes would lose every gateway if it failed")
    assert why(view("bridge_silent", nodes=["ff-map"], affected=["x", "y", "z"])) == (
        "the meshmon-bridge is gone: its 3 devices unmonitored, no outage for them until it "
        "is back")


def test_explained_reads_the_gateway_flag_from_the_topology() -> None:
    topo = build_topology()  # alpha announces gateway = true
    out = explained([view("outage", nodes=["alpha"]), view("outage", nodes=["bravo"])], topo)
    assert [v["why"] for v in out] == [
        "gateway alpha is down", "nobody else is cut off: only bravo is down"]

"""Line protocol: escaping, field types, absent metrics, timestamps (pure)."""

from __future__ import annotations

from meshmon.model.wire import Link
from meshmon.sinks.base import Event, sample_time
from meshmon.sinks.lineprotocol import (
    escape_key,
    escape_measurement,
    event_line,
    format_field,
    quote_string,
    report_lines,
    timestamp_ns,
)
from tests.sinks.reports import DSTS, NOW, report

NS = 1_700_000_000_000_000_000


def test_escaping_follows_the_spec() -> None:
    assert escape_measurement("my meas,x=1") == "my\\ meas\\,x=1"
    assert escape_key("wlan 0,a=b") == "wlan\\ 0\\,a\\=b"
    assert escape_key("plain-wlan0.1") == "plain-wlan0.1"
    assert escape_key("ends\\") == "ends\\\\"
    assert escape_key("two\nlines") == "two\\nlines"
    assert quote_string('say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'


def test_field_values_by_type() -> None:
    assert format_field(True) == "true"
    assert format_field(3) == "3i"
    assert format_field(2.5) == "2.5"
    assert format_field("x y") == '"x y"'
    assert format_field(float("nan")) is None
    assert format_field(float("inf")) is None


def test_timestamps_are_ns_rounded_to_the_microsecond() -> None:
    assert timestamp_ns(NOW) == NS
    assert timestamp_ns(NOW + 0.123456) == NS + 123_456_000


def test_report_lines_have_exact_tags_fields_and_types() -> None:
    lines = report_lines(report(), NOW + 2.0, DSTS)
    by_meas: dict[str, list[str]] = {}
    for line in lines:
        by_meas.setdefault(line.split(",", 1)[0], []).append(line)
    assert by_meas["node"] == [
        "node,node=n1 online=true,seq=1i,interval_s=30.0,clock_offset_s=2.0,links=3i,clients=3i,"
        "uptime_s=3600.0,load1=0.5,load5=0.25,load15=0.125,mem_total_kb=65536i,"
        f"mem_avail_kb=32000i,rootfs_used_pct=42.5 {NS}"
    ]
    assert by_meas["link"] == [
        "link,dst=n2,iface=wlan0,kind=wifi,src=n1 signal_dbm=-61.0,signal_avg_dbm=-62.5,"
        "noise_dbm=-95.0,snr_db=34.0,tx_rate_mbps=144.4,rx_rate_mbps=130.0,"
        "expected_tput_mbps=60.5,tx_retries=12i,tx_failed=1i,inactive_ms=40i,chain0_dbm=-63.0,"
        f'chain1_dbm=-65.0,peer_mac="02:00:00:00:00:02" {NS}',
        f"link,dst=n3,iface=bat0,kind=batman,src=n1 tq=230i {NS}",
        "link,dst=mac:02:00:00:00:00:99,iface=wlan0,kind=wifi,src=n1 signal_dbm=-80.0,"
        f'peer_mac="02:00:00:00:00:99" {NS}',
    ]
    assert by_meas["iface"] == [
        f"iface,iface=wlan0,node=n1 up=true,rx_bytes=1000i,tx_bytes=2000i {NS}"
    ]
    assert by_meas["radio"] == [
        "radio,iface=wlan0,node=n1 freq_mhz=5180.0,channel=36i,noise_dbm=-95.0,busy_pct=12.5,"
        f"clients=3i {NS}"
    ]


def test_absent_metrics_are_absent_never_zero() -> None:
    r = report(
        links=[{"peer": "n2", "iface": "eth0", "kind": "babel", "cost": 96}],
        sys=None,
        ifaces=[{"name": "eth0"}],
        radios=[{"iface": "wlan0"}],
        clients=None,
    )
    lines = report_lines(r, NOW, ["n2"])
    assert lines == [
        f"node,node=n1 online=true,seq=1i,interval_s=30.0,clock_offset_s=0.0,links=1i {NS}",
        f"link,dst=n2,iface=eth0,kind=babel,src=n1 cost=96.0 {NS}",
    ]  # an interface or radio without any value gives no point at all


def test_dst_is_agent_peer_when_unresolved_and_tags_are_escaped() -> None:
    r = report(links=[{"peer": "n9", "iface": "wlan 0,x", "kind": "wifi", "signal_dbm": -70}])
    (_, link, *_) = report_lines(r, NOW, [None])
    assert link.startswith("link,dst=n9,iface=wlan\\ 0\\,x,kind=wifi,src=n1 signal_dbm=-70.0 ")


def test_report_time_argument_overrides_agent_ts() -> None:
    lines = report_lines(report(ts=5.0), NOW, DSTS, t=NOW)
    assert all(line.endswith(f" {NS}") for line in lines)


def test_sample_time_falls_back_to_arrival_when_the_agent_clock_is_wild() -> None:
    assert sample_time(NOW - 30, NOW, 600) == NOW - 30
    assert sample_time(5.0, NOW, 600) == NOW  # router without NTP in 1970
    assert sample_time(NOW + 3600, NOW, 600) == NOW


def test_event_line() -> None:
    ev = Event(
        NOW,
        "outage",
        "n 1",
        'node "n 1" down',
        {"affected": 4, "cause": "n0", "ratio": 0.5, "root": True},
    )
    assert event_line(ev) == (
        'event,kind=outage,node=n\\ 1 summary="node \\"n 1\\" down",affected=4i,cause="n0",'
        f"ratio=0.5,root=true {NS}"
    )
    assert event_line(Event(NOW, "alert")) == f'event,kind=alert summary="" {NS}'


def test_a_link_metric_that_is_not_finite_is_left_out() -> None:
    """Validation refuses inf and nan; a link built without it must still give valid lines."""
    odd = Link.model_construct(peer="n2", iface="wlan0", kind="wifi", signal_dbm=float("nan"),
                               snr_db=float("inf"), tx_rate_mbps=6.5, tq=200,
                               chains_dbm=[float("-inf"), -60.0])
    (_, link, *_) = report_lines(report(links=[]).model_copy(update={"links": [odd]}), NOW, [None])
    assert link == ("link,dst=n2,iface=wlan0,kind=wifi,src=n1 tx_rate_mbps=6.5,tq=200i,"
                    f"chain1_dbm=-60.0 {NS}")

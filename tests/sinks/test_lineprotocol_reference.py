"""The template encoder writes exactly what the encoder before it wrote (kept as the
reference in `lineprotocol_reference.py`): on reports built from real captures and on
generated ones with absent, non-finite, tiny and huge values and hostile names."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.meshmon_agent.collectors import batman, iw_station
from meshmon.model import wire
from meshmon.model import wire_structs as fast
from meshmon.model.fastwire import to_struct
from meshmon.model.wire import LINK_METRICS
from meshmon.sinks.lineprotocol import INT_LINK_METRICS, report_chunk, report_lines
from tests.sinks import lineprotocol_reference as reference
from tests.sinks.reports import NOW, report

DATA = Path(__file__).resolve().parent.parent / "data"
LINK_FIELDS = set(wire.Link.model_fields)


def captured_links() -> list[list[dict[str, Any]]]:
    """The links the agent's parsers read from real `iw` and `batctl` captures."""
    out = [iw_station.parse_station_dump(path.read_text())
           for path in sorted((DATA / "iw").glob("station-dump-*.txt"))]
    out.append(batman.parse_json((DATA / "batman/nj-librerouter-2-radios.json").read_text(),
                                 (DATA / "batman/oj-librerouter-2-radios.json").read_text()))
    return [[{k: v for k, v in link.items() if k in LINK_FIELDS} for link in links]
            for links in out]


def assert_same(r: wire.Report | fast.Report, received_at: float, dsts: list[str | None],
                t: float | None = None) -> None:
    expected = reference.report_lines(r, received_at, dsts, t)
    assert report_lines(r, received_at, dsts, t) == expected
    chunk, points = report_chunk(r, received_at, dsts, t)  # again, from the kept layout
    assert chunk == "\n".join(expected).encode() and points == len(expected)


def test_reports_of_real_captures_are_written_as_before() -> None:
    for i, links in enumerate(captured_links()):
        assert links
        model = report(node=f"cap{i}", links=links, seq=i)
        for dsts in ([None] * len(links), [f"peer-{j}" for j in range(len(links))]):
            assert_same(model, NOW + 0.25, dsts)
            assert_same(to_struct(model), NOW + 0.000031, dsts)  # offset written 3.1e-05
            assert_same(to_struct(model), NOW + 3.0, dsts, t=NOW + 1.5)


NODE = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,10}\Z")
HOSTILE = st.one_of(NODE, st.text(max_size=8), st.sampled_from(
    ["wlan 0", "a,b=c", "ends\\", "two\nlines", "50%", "%s", 'say "x"', "ümlaut", ""]))
FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-200, 200),
    st.sampled_from([1e-5, -3.2e-5, 1e-4, 1e16, -2.5e17, 1e-7, 0.0, -0.0, 5e-324, 1e300]),
)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
COUNTER = st.integers(0, 2**63 - 1)
MAC = st.from_regex(r"\A[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
KIND = st.sampled_from(["wifi", "batman", "olsr", "babel", "bmx7", "ethernet", "vpn", "other"])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def links(draw: st.DrawFn) -> fast.Link:
    metrics = {m: draw(maybe(COUNTER if m in INT_LINK_METRICS else FLOAT)) for m in LINK_METRICS}
    peer, peer_mac = draw(maybe(HOSTILE)), draw(maybe(MAC))
    if peer is None and peer_mac is None:  # the models refuse a link without either
        peer_mac = draw(MAC)
    return fast.Link(
        peer=peer, peer_mac=peer_mac, iface=draw(HOSTILE),
        kind=draw(KIND), chains_dbm=draw(maybe(st.lists(FLOAT, max_size=4))),
        mcs=draw(maybe(st.integers(0, 64))), **metrics)


@st.composite
def reports(draw: st.DrawFn) -> tuple[fast.Report, list[str | None], float]:
    sys = draw(maybe(st.builds(
        fast.Sys, uptime_s=maybe(FLOAT), load=maybe(st.lists(FINITE, max_size=3)),
        mem_total_kb=maybe(COUNTER), mem_avail_kb=maybe(COUNTER),
        rootfs_used_pct=maybe(FINITE))))
    ifaces = draw(st.lists(st.builds(
        fast.Iface, name=HOSTILE, up=maybe(st.booleans()),
        **{c: maybe(COUNTER) for c in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets",
                                       "rx_errors", "tx_errors")}), max_size=2))
    radios = draw(st.lists(st.builds(
        fast.Radio, iface=HOSTILE, freq_mhz=maybe(FLOAT), channel=maybe(COUNTER),
        width_mhz=maybe(FLOAT), noise_dbm=maybe(FLOAT), txpower_dbm=maybe(FLOAT),
        busy_pct=maybe(FLOAT), clients=maybe(COUNTER)), max_size=2))
    report_links = draw(st.lists(links(), max_size=4))
    ts = draw(st.floats(0, 4e9))
    r = fast.Report(v=1, node=draw(HOSTILE.filter(bool)), ts=ts, seq=draw(COUNTER),
                    interval_s=draw(FINITE), clients=draw(maybe(COUNTER)), sys=sys,
                    ifaces=ifaces, radios=radios, links=report_links)
    dsts = [draw(maybe(HOSTILE)) for _ in report_links]
    received_at = ts + draw(st.floats(-1e6, 1e6))
    return r, dsts, received_at


@settings(max_examples=80, deadline=None)
@given(reports())
def test_generated_reports_are_written_as_before(case: tuple[fast.Report, list[str | None],
                                                              float]) -> None:
    r, dsts, received_at = case
    assert_same(r, received_at, dsts)


@settings(max_examples=25, deadline=None)
@given(reports())
def test_no_line_carries_a_value_line_protocol_cannot_hold(
        case: tuple[fast.Report, list[str | None], float]) -> None:
    r, dsts, received_at = case
    for line in report_lines(r, received_at, dsts):
        fields = line.rsplit(" ", 1)[0]
        assert "=nan" not in fields and "=inf" not in fields and "=-inf" not in fields
        assert "=null" not in fields and "\n" not in line


def test_a_value_that_is_not_finite_is_absent_in_every_measurement() -> None:
    nan = math.nan
    r = fast.Report(v=1, node="n1", ts=NOW, seq=1, interval_s=30.0,
                    sys=fast.Sys(uptime_s=math.inf, mem_total_kb=5),
                    radios=[fast.Radio(iface="wlan0", freq_mhz=nan, channel=36)],
                    links=[fast.Link(peer="n2", iface="wlan0", kind="wifi", snr_db=-math.inf,
                                     chains_dbm=[nan, -60.0])])
    assert report_lines(r, NOW + nan, [None]) == [
        f"node,node=n1 online=true,seq=1i,interval_s=30.0,links=1i,mem_total_kb=5i {NS}",
        f"link,dst=n2,iface=wlan0,kind=wifi,src=n1 chain1_dbm=-60.0 {NS}",
        f"radio,iface=wlan0,node=n1 channel=36i {NS}",
    ]


NS = 1_700_000_000_000_000_000

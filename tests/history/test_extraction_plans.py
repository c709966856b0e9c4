"""The per-type extraction plans give exactly the samples the field-by-field extraction
gave (`reference_extraction`, meshmon 4e589e7) on the same reports: the real agent's
capture and generated ones, as pydantic models and as decoded Structs, with absent
fields, counters (rates, resets, reboots, 32-bit wraps) and values that are not numbers
(booleans, text); by metric id as by name; and a field added to a model is kept."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmon.history.samples import COUNTERS, SKIPPED, WRAP_32, Extractor, SeriesKey, _is_number
from meshmon.history.tables import HistoryTables
from meshmon.model import fastwire, wire
from meshmon.model import wire_structs as fast
from meshmon.storage.database import open_database
from tests.history.reference_extraction import ReferenceExtractor

DATA = Path(__file__).resolve().parents[1] / "data"
T0 = 1_800_000_000.0
Samples = list[tuple[SeriesKey, dict[str, float]]]


def both_forms(doc: dict[str, Any]) -> tuple[wire.Report, fast.Report]:
    """A report as the pydantic model and as the Struct the ingest decodes."""
    payload = json.dumps(doc).encode()
    struct = fastwire.decode_report_fast(payload)
    assert struct is not None, "not on the fast path"
    return wire.Report.model_validate_json(payload), struct


def run_all(reports: list[tuple[dict[str, Any], float, list[str | None]]],
            spoil: list[tuple[int, int, str, Any]] | None = None) -> list[Samples]:
    """Every report through the reference and the plans, as model and as Struct (each
    extractor sees the whole sequence); the four answers must agree: the plans' one.
    `spoil`: (report, link, field, value) set after validation (a value of a type the
    models would not give)."""
    extractors = {name: (ReferenceExtractor() if name.startswith("ref") else Extractor())
                  for name in ("ref-model", "ref-struct", "new-model", "new-struct")}
    answers: list[Samples] = []
    for at, (doc, ts, dsts) in enumerate(reports):
        model, struct = both_forms(doc)
        for report_at, link_at, field, value in spoil or []:  # no validation on assignment
            if report_at == at and link_at < len(model.links):
                setattr(model.links[link_at], field, value)
                setattr(struct.links[link_at], field, value)
        got = {name: ex.samples(struct if name.endswith("struct") else model, ts, dsts)
               for name, ex in extractors.items()}
        want = got["ref-model"]
        for name, samples in got.items():
            assert samples == want, name
        answers.append(got["new-struct"])
    return answers


def capture() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / "wire" / "report-lr-test-1.json").read_text())
    return doc


def test_the_real_agents_report_gives_the_same_samples_through_counter_changes() -> None:
    doc = capture()
    assert doc["ifaces"] and doc["links"] and doc["sys"]
    dsts: list[str | None] = [f"peer-{i}" if i % 3 else None for i in range(len(doc["links"]))]
    steps = []
    ts = T0
    for k, (gap, grow, uptime) in enumerate([(0, 0, 1788.27), (30, 10**6, 1818.0),
                                             (30, 2 * 10**6, 1848.0), (30, 0, 5.0),
                                             (7200, 3 * 10**6, 7205.0)]):
        ts += gap
        step = copy.deepcopy(doc)
        step["seq"] = k
        step["sys"]["uptime_s"] = uptime
        for part in step["ifaces"] + step["links"]:
            for name in COUNTERS:
                if name in part:
                    part[name] += grow
        steps.append((step, ts, dsts))
    answers = run_all(steps)
    iface = dict(answers[1])[SeriesKey("iface", "lr-test-1", "", "lo")]
    assert iface["rx_bps"] == 10**6 * 8 / 30  # a rate: the counter grew by 10**6 in 30 s
    assert all("rx_bps" not in v for k, v in answers[3] if k.kind == "iface")  # reboot


def test_a_32_bit_wrap_and_a_reset_give_the_same_rates() -> None:
    doc = capture()
    link = {"peer": "b", "iface": "wlan0", "kind": "wifi", "signal_dbm": -60,
            "tx_retries": WRAP_32 - 100, "tx_failed": 10**12, "rx_bytes": 5}
    steps = []
    for k, (retries, failed) in enumerate([(WRAP_32 - 100, 10**12), (50, 10**12 + 60),
                                           (70, 30), (90, 60)]):
        step = dict(doc, links=[dict(link, tx_retries=retries, tx_failed=failed)], seq=k)
        steps.append((step, T0 + 30 * k, ["b"]))
    answers = run_all(steps)
    key = SeriesKey("link", "lr-test-1", "b", "wlan0", "wifi")
    assert dict(answers[1])[key]["tx_retries_per_s"] == 150 / 30  # across the wrap
    assert "tx_failed_per_s" not in dict(answers[2])[key]  # reset: no rate


def test_booleans_and_text_in_number_fields_are_not_numbers() -> None:
    doc = dict(capture(), links=[{"peer": "b", "iface": "wlan0", "kind": "wifi",
                                  "signal_dbm": -60, "tq": 200, "tx_retries": 5,
                                  "tx_rate_mbps": 130}])
    # first as numbers (their metrics known), then as what is no number
    spoil = [(1, 0, "tq", True), (1, 0, "signal_dbm", "loud"), (1, 0, "tx_retries", False)]
    answers = run_all([(doc, T0, ["b"]), (dict(doc, seq=1), T0 + 30, ["b"])], spoil)
    link = dict(answers[1])[SeriesKey("link", "lr-test-1", "b", "wlan0", "wifi")]
    assert link == {"tx_rate_mbps": 130}


def _bounds(model: type[wire.WireModel]) -> dict[str, tuple[bool, bool]]:
    """Numeric field → (integral, a counter)."""
    out = {}
    for name, field in model.model_fields.items():
        if name in SKIPPED or not _is_number(field.annotation):
            continue
        integral = "int" in str(field.annotation) and "float" not in str(field.annotation)
        out[name] = (integral, name in COUNTERS)
    return out


NUMERIC = {"sys": _bounds(wire.Sys), "iface": _bounds(wire.Iface),
           "radio": _bounds(wire.Radio), "link": _bounds(wire.Link)}
COUNTER_VALUES = [0, 1, 5, 1000, WRAP_32 // 2, WRAP_32 - 1, WRAP_32, 2**40, 2**53 + 1]


@st.composite
def part(draw: st.DrawFn, kind: str, base: dict[str, Any]) -> dict[str, Any]:
    """A report part: its counters (most of the time) and a few other numeric fields,
    each valid for every field's range (or null)."""
    out = dict(base)
    names = [n for n, (_, counter) in NUMERIC[kind].items() if counter and draw(st.booleans())]
    names += draw(st.lists(st.sampled_from(sorted(NUMERIC[kind])), max_size=6))
    for name in names:
        integral, counter = NUMERIC[kind][name]
        if counter:
            value: Any = draw(st.sampled_from(COUNTER_VALUES) | st.integers(0, 2**63 - 1))
        elif integral:
            value = draw(st.integers(0, 64))
        else:
            value = draw(st.floats(0.001, 1.0) | st.integers(1, 1))
        out[name] = None if draw(st.integers(0, 9)) == 0 else value
    return out


@st.composite
def report_sequences(draw: st.DrawFn) -> list[tuple[dict[str, Any], float, list[str | None]]]:
    """One node's reports: the same interfaces, radio and links with numbers that come
    and go, counters that grow, wrap and reset, gaps from none to hours, reboots."""
    ts = T0
    out = []
    ifaces = draw(st.lists(st.sampled_from(["eth0", "wlan0"]), max_size=2, unique=True))
    kinds = draw(st.lists(st.sampled_from(["wifi", "batman"]), max_size=3))
    radio = draw(st.booleans())
    for seq in range(draw(st.integers(1, 5))):
        ts += draw(st.sampled_from([0.0, 1.0, 30.0, 30.5, 3599.0, 3601.0, -5.0]))
        doc: dict[str, Any] = {
            "v": 1, "node": "gen-1", "ts": ts, "seq": seq, "interval_s": 30,
            "clients": draw(st.none() | st.integers(0, 50)),
            "ifaces": [draw(part("iface", {"name": n, "up": draw(st.none() | st.booleans())}))
                       for n in ifaces],
            "radios": [draw(part("radio", {"iface": "wlan0"}))] if radio else [],
            "links": [draw(part("link", {"peer": f"p{i}", "iface": "wlan0", "kind": kind}))
                      for i, kind in enumerate(kinds)],
        }
        if draw(st.booleans()):
            doc["sys"] = draw(part("sys", {"uptime_s": draw(st.none() | st.sampled_from(
                [5.0, 100.0, 1000.0, 1000.0 + ts - T0])), "load": draw(st.none() | st.lists(
                    st.floats(0, 4), max_size=3))}))
        dsts = [None if draw(st.integers(0, 5)) == 0 else f"p{i}" for i in range(len(kinds))]
        out.append((doc, ts, dsts))
    return out


@settings(max_examples=60, deadline=None)
@given(report_sequences(), st.lists(st.tuples(
    st.integers(0, 4), st.integers(0, 2),
    st.sampled_from(["tq", "signal_dbm", "tx_retries", "rx_bytes", "lq", "tx_rate_mbps"]),
    st.sampled_from([True, False, "7", None, 3, 2.5])), max_size=3))
def test_generated_reports_give_the_same_samples(
        reports: list[tuple[dict[str, Any], float, list[str | None]]],
        spoil: list[tuple[int, int, str, Any]]) -> None:
    run_all(reports, spoil)


def test_samples_by_metric_id_name_the_same_metrics_and_register_only_those_seen(
        tmp_path: Path) -> None:
    conn: sqlite3.Connection = open_database(tmp_path / "ids.sqlite")
    tables = HistoryTables(conn)
    by_id = Extractor(tables.metric_id)
    reference = ReferenceExtractor()
    seen: set[str] = set()
    doc = capture()
    for k in range(3):
        step = copy.deepcopy(doc)
        for iface in step["ifaces"]:
            iface["rx_bytes"] += 1000 * k
        model, struct = both_forms(step)
        want = reference.samples(model, T0 + 30 * k, [None] * len(model.links))
        got = by_id.samples(struct, T0 + 30 * k, [None] * len(struct.links))
        assert [(key, {tables.names[mid]: v for mid, v in values.items()})
                for key, values in got] == want
        seen |= {name for _, values in want for name in values}
    assert set(tables.metrics) == seen  # no id for a metric that never had a value


class BeamLink(wire.Link):
    """A link model with a metric added to the contract."""

    beam_deg: float | None = None
    beam_hits: int | None = None
    beam_on: bool | None = None


class BeamLinkStruct(fast.Link, kw_only=True, gc=False, omit_defaults=True):
    beam_deg: float | None = None
    beam_hits: int | None = None
    beam_on: bool | None = None


def test_a_field_added_to_a_model_is_extracted() -> None:
    link = {"peer": "b", "iface": "wlan0", "kind": "wifi", "signal_dbm": -60.0,
            "beam_deg": 12.5, "beam_hits": 3, "beam_on": True}
    model = wire.Report.model_validate(dict(capture(), links=[]))
    model.links = [BeamLink.model_validate(link)]
    struct = fastwire.decode_report_fast(json.dumps(dict(capture(), links=[])).encode())
    assert struct is not None
    struct.links = [msgspec.convert(link, BeamLinkStruct)]
    key = SeriesKey("link", "lr-test-1", "b", "wlan0", "wifi")
    for report in (model, struct):
        got = dict(Extractor().samples(report, T0, ["b"]))[key]
        assert got == {"signal_dbm": -60.0, "beam_deg": 12.5, "beam_hits": 3}
        assert got == dict(ReferenceExtractor().samples(report, T0, ["b"]))[key]

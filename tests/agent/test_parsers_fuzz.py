"""Every parser of both agents on reshaped, truncated and random text (hypothesis).

Real captures reshaped as devices and firmware differ — leading whitespace (also before
`Station`), tabs instead of spaces, CRLF line ends — parse to the same values; with lines
(fields) missing they parse to a subset of the same values; random or truncated text never
raises and still gives a wire-valid report. The Python parsers run in-process with many
examples; the sh agent runs under busybox with fewer (each example is a process).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from meshmon_agent.collect import Collector
from meshmon_agent.collectors import (
    babel,
    batman,
    iw_radio,
    iw_station,
    neighbours,
    olsr,
    system,
    wireguard,
)
from meshmon_agent.config import CollectSettings

from meshmon.model import wire
from tests.agent.router import DATA, Router
from tests.agent.test_conformance import ARP
from tests.agent.test_parse_iw import SURVEY

NJ = (DATA / "batman" / "nj-librerouter-2-radios.json").read_text()
OJ = (DATA / "batman" / "oj-librerouter-2-radios.json").read_text()
BABEL = (DATA / "babel" / "dump-3-namespaces.txt").read_text()
NET_DEV = Path("/proc/net/dev").read_text()

TEXT_FORMATS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "station": ((DATA / "iw" / "station-dump-3-mesh-peers-vht80.txt").read_text(),
                iw_station.station_links),
    "info": ((DATA / "iw" / "info-mesh-point-ch149-80mhz.txt").read_text(), iw_radio.radio),
    "info_ap": ((DATA / "iw" / "info-ap-ch11-20mhz.txt").read_text(), iw_radio.radio),
    "iw_dev": ("phy#0\n\tInterface mesh0\n\t\ttype mesh point\n\tInterface ap0\n",
               iw_radio.parse_dev),
    "survey": (SURVEY, iw_radio.parse_survey),
    "batctl_n": ((DATA / "batman" / "n-text-2-neighbours.txt").read_text(), batman.parse_text),
    "batctl_n_v": ((DATA / "batman" / "n-text-2019.4-v-3-bonded.txt").read_text(),
                   batman.parse_text),
    "batctl_o": ((DATA / "batman" / "o-text-2019.4-iv-3-bonded.txt").read_text(),
                 lambda text: batman.parse_text("", text)),
    "station_mlo": ((DATA / "iw" / "station-dump-mlo-eht-he-3-stations.txt").read_text(),
                    iw_station.station_links),
    "wg": ((DATA / "routing" / "netdiff" / "wg-dump.txt").read_text(), wireguard.parse_dump),
    "olsr_txt": ((DATA / "routing" / "netdiff" / "olsr-5-links.txt").read_text(), olsr.parse),
    "babel": (BABEL, babel.parse_dump),
    "arp": ("IP address HW type Flags HW address Mask Device\n" + ARP, neighbours.parse_arp),
    "net_dev": (NET_DEV, system.parse_net_dev),
    "meminfo": (Path("/proc/meminfo").read_text(), system.parse_meminfo),
}
JSON_FORMATS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "batctl_nj": (NJ, lambda text: batman.parse_json(text, OJ)),
    "batctl_oj": (OJ, lambda text: batman.parse_json(NJ, text)),
    "olsr_json": ((DATA / "olsr" / "jsoninfo-links-1-link.json").read_text(),
                  olsr.parse),
}
# what starts a record, or changes how the lines after it read (an MLO station's `Link N:`
# block, a `*`-marked best route: a table without one lists best routes only)
RECORD_STARTS = re.compile(
    r"^\s*(Station |Interface |phy#|frequency:|Table:|Local IP|Dest|IP |Link \d|\*)")

WHITESPACE = st.text(alphabet=" \t", min_size=1, max_size=4)


@st.composite
def reshaped(draw: st.DrawFn, text: str) -> str:
    """`text` with other indentation and separators (tabs or spaces) and maybe CRLF."""
    lines = []
    for line in text.splitlines():
        body = line.strip()
        # a run that separates fields (a tab, two or more spaces): any other run of blanks;
        # a single space may belong to a name (`signal avg`, `Local IP`) and stays
        parts = re.split(r"\t+ *|  +\t*", body)
        seps = [draw(WHITESPACE) for _ in parts[1:]]
        body = parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))
        lines.append(draw(st.sampled_from(["", " ", "\t", "    ", " \t "])) + body)
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return end.join(lines) + end


@st.composite
def thinned(draw: st.DrawFn, text: str) -> str:
    """`text` without some of its field lines (the lines that start a record stay)."""
    lines = text.splitlines()
    keep = [line for line in lines if RECORD_STARTS.match(line) or draw(st.booleans())]
    return "\n".join(keep) + "\n"


@st.composite
def rewritten_json(draw: st.DrawFn, text: str, drop: bool = False) -> str:
    """A JSON capture re-indented (spaces or tabs, CRLF), optionally without some keys."""
    data = json.loads(text)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items() if not (drop and draw(st.booleans()))}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    indent = draw(st.sampled_from([None, 1, 4, "\t"]))
    out = json.dumps(walk(data), indent=indent)
    return out.replace("\n", "\r\n") if draw(st.booleans()) else out


def _subset(smaller: Any, larger: Any) -> bool:
    """Every record of `smaller` is a record of `larger` with some of its fields."""
    if isinstance(smaller, dict):
        return isinstance(larger, dict) and all(
            k in larger and (smaller[k] == larger[k] or _subset(smaller[k], larger[k]))
            for k in smaller
        )
    if isinstance(smaller, list):
        return isinstance(larger, list) and all(
            any(_subset(item, other) for other in larger) for item in smaller)
    return bool(smaller == larger)


@pytest.mark.parametrize("name", sorted(TEXT_FORMATS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_python_parsers_read_reshaped_captures_alike(name: str, data: st.DataObject) -> None:
    text, parse = TEXT_FORMATS[name]
    assert parse(data.draw(reshaped(text))) == parse(text)
    if name != "meminfo":  # without MemAvailable, available memory is computed otherwise
        assert _subset(parse(data.draw(thinned(text))), parse(text))


@pytest.mark.parametrize("name", sorted(JSON_FORMATS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_python_parsers_read_reshaped_json_alike(name: str, data: st.DataObject) -> None:
    text, parse = JSON_FORMATS[name]
    assert parse(data.draw(rewritten_json(text))) == parse(text)
    assert _subset(parse(data.draw(rewritten_json(text, drop=True))), parse(text))


ALL_FORMATS = {**TEXT_FORMATS, **JSON_FORMATS}
GARBAGE = st.one_of(
    st.text(max_size=400),
    st.sampled_from(sorted(ALL_FORMATS)).flatmap(
        lambda n: st.integers(0, len(ALL_FORMATS[n][0])).map(lambda cut: ALL_FORMATS[n][0][:cut])),
    st.lists(st.sampled_from(["Station 02:00:00:00:00:01 (on wlan0)", "signal: -999 dBm",
                              "\ttx bitrate: 1e9 MBit/s", "inactive time: -5 ms", "{", "[",
                              '{"neigh_address":"02:00:00:00:00:01","hard_ifname":"x","tq":-1}',
                              "add neighbour x address fe80::1 if e reach 0 rxcost 99999999999",
                              "wg0\tAAAA\t(none)\t(none)\t(none)\t-1\t-1\t-1\toff", "\x00\xff"]),
             max_size=12).map("\n".join),
)


@pytest.mark.parametrize("name", sorted(ALL_FORMATS))
@settings(max_examples=40, deadline=None)
@given(garbage=GARBAGE)
def test_python_parsers_never_raise(name: str, garbage: str) -> None:
    ALL_FORMATS[name][1](garbage)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outputs=st.dictionaries(st.sampled_from(["iw", "batctl", "wg"]), GARBAGE))
def test_python_report_from_garbage_is_wire_valid(outputs: dict[str, str]) -> None:
    def runner(argv: Any) -> str | None:
        return outputs.get(argv[0])

    settings_ = CollectSettings(wifi_interfaces=["wlan0"])
    fields = Collector(settings_, runner, root="/nonexistent").report_fields()
    report = {"v": 1, "node": "fuzz-1", "ts": 1.0, "seq": 0, "interval_s": 30, **fields}
    wire.decode("meshmon", "meshmon/v1/node/fuzz-1/report", json.dumps(report).encode())


# ---------------------------------------------------------------- the sh agent
SH_COMMANDS = {
    "station": ("iw", "dev", "mesh0", "station", "dump"),
    "info": ("iw", "dev", "mesh0", "info"),
    "survey": ("iw", "dev", "mesh0", "survey", "dump"),
    "batctl_n": ("batctl", "n"),
    "batctl_n_v": ("batctl", "n"),
    "batctl_o": ("batctl", "o"),
    "station_mlo": ("iw", "dev", "mesh0", "station", "dump"),
    "batctl_nj": ("batctl", "nj"),
    "batctl_oj": ("batctl", "oj"),
    "wg": ("wg", "show", "all", "dump"),
}


class _Served(BaseHTTPRequestHandler):
    body: ClassVar[dict[str, bytes]] = {"text": b""}

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body["text"])

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def sh_router(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Router, dict[str, bytes]]]:
    """One fake router for all sh examples, with an olsrd stand-in whose answer can change."""
    body: dict[str, bytes] = {"text": b""}
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Served,), {"body": body}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    router = Router(tmp_path_factory.mktemp("fuzz"), arp=ARP)
    router.url = f"http://127.0.0.1:{server.server_address[1]}/links"  # type: ignore[attr-defined]
    yield router, body
    server.shutdown()
    server.server_close()


def _sh_links(router: Router, body: dict[str, bytes], name: str, text: str) -> dict[str, Any]:
    """The sh agent's report with `text` as the output of format `name`'s command."""
    captures: dict[tuple[str, ...], Path | str] = {
        ("iw", "dev", "mesh0", "info"): TEXT_FORMATS["info"][0]}
    config = 'node = "fuzz-sh"\n[collect]\nwifi_interfaces = ["mesh0"]\n'
    if name in SH_COMMANDS:
        if name == "batctl_oj":
            captures[("batctl", "nj")] = NJ
        captures[SH_COMMANDS[name]] = text
    elif name in ("olsr_txt", "olsr_json"):
        body["text"] = text.encode()
        config += f'olsr_url = "{router.url}"\n'  # type: ignore[attr-defined]
    router.captures = captures
    router.write()
    report = router.sh_report(config)
    wire.decode("meshmon", "meshmon/v1/node/fuzz-sh/report", json.dumps(report).encode())
    return {"links": report["links"], "radios": report["radios"]}


SH_FORMATS = sorted(set(SH_COMMANDS) | {"olsr_txt", "olsr_json"})
ORIGINALS: dict[str, dict[str, Any]] = {}


@pytest.mark.parametrize("name", SH_FORMATS)
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_sh_agent_reads_reshaped_captures_alike(
    sh_router: tuple[Router, dict[str, bytes]], name: str, data: st.DataObject
) -> None:
    router, body = sh_router
    text = ALL_FORMATS[name][0]
    if name not in ORIGINALS:
        ORIGINALS[name] = _sh_links(router, body, name, text)
    original = ORIGINALS[name]
    if name in JSON_FORMATS:
        same, fewer = data.draw(rewritten_json(text)), data.draw(rewritten_json(text, drop=True))
    else:
        same, fewer = data.draw(reshaped(text)), data.draw(thinned(text))
    assert _sh_links(router, body, name, same) == original
    assert _subset(_sh_links(router, body, name, fewer), original)


@pytest.mark.parametrize("name", SH_FORMATS)
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(garbage=GARBAGE)
def test_sh_agent_report_from_garbage_is_wire_valid(
    sh_router: tuple[Router, dict[str, bytes]], name: str, garbage: str
) -> None:
    router, body = sh_router
    _sh_links(router, body, name, garbage.replace("\x00", ""))

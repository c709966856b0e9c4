"""Both agents on the same captures: wire-valid reports with the same values, link by link.

The sh agent runs under `busybox sh` with only busybox applets on PATH; the Python agent
runs the same fake tools through its subprocess runner. Routing daemons are reached as
they are on a router: olsrd's info plugins over HTTP, babeld's local interface over TCP
(served here from the captures).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from meshmon.model import wire
from tests.agent.router import DATA, Router, chromiumos_libremesh
from tests.agent.test_parse_iw import SURVEY

ROUTING = DATA / "routing" / "netdiff"


def _valid(report: dict[str, Any], node: str) -> wire.Report:
    decoded = wire.decode("meshmon", f"meshmon/v1/node/{node}/report", json.dumps(report).encode())
    assert isinstance(decoded, wire.Report)
    return decoded


def _key(link: dict[str, Any]) -> tuple[str, ...]:
    return (link["kind"], link["iface"], link.get("peer") or "", link.get("peer_mac") or "")


def assert_same(sh: dict[str, Any], py: dict[str, Any], node: str) -> None:
    """Both reports validate and agree on every value (rootfs usage within 0.5 points: the
    filesystem is shared with running tests)."""
    _valid(sh, node), _valid(py, node)
    sh_sys, py_sys = dict(sh["sys"]), dict(py["sys"])
    assert abs(sh_sys.pop("rootfs_used_pct") - py_sys.pop("rootfs_used_pct")) <= 0.5
    assert sh_sys == py_sys
    for part in ("ifaces", "radios", "clients"):
        assert sh.get(part) == py.get(part), part
    assert [_key(link) for link in sh["links"]] == [_key(link) for link in py["links"]]
    for mine, theirs in zip(sh["links"], py["links"], strict=True):
        assert mine == theirs, _key(mine)


def test_wifi_batman_and_wireguard_captures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = chromiumos_libremesh(tmp_path)
    config = 'node = "conf-1"\n'
    sh, py = router.sh_report(config), router.py_report(config, monkeypatch)
    assert_same(sh, py, "conf-1")
    kinds = [link["kind"] for link in sh["links"]]
    assert kinds == ["wifi"] * 3 + ["batman"] * 4 + ["vpn"] * 5
    wifi = {link["peer_mac"]: link for link in sh["links"] if link["kind"] == "wifi"}
    assert wifi["dd:ee:ff:33:44:55"]["rx_bytes"] == 2883498
    assert wifi["dd:ee:ff:33:44:55"]["tx_packets"] == 6615
    # netdiff asserts 5 edges for this dump: the peers that have had a handshake
    vpn = [link for link in sh["links"] if link["kind"] == "vpn"]
    assert {link["iface"] for link in vpn} == {"wg0", "wg1"}
    first = next(link for link in vpn if link["handshake_ts"] == 1654535018)
    assert first == {"peer": "wg-pLj2T3b1YYug", "iface": "wg0", "kind": "vpn",
                     "handshake_ts": 1654535018, "rx_bytes": 37384, "tx_bytes": 35848}
    assert sh["radios"] == [{"iface": "wlan-2400mhz", "freq_mhz": 5745, "channel": 149,
                             "width_mhz": 80}]
    assert {i["name"]: i.get("up") for i in sh["ifaces"]}.get("lo", "absent") in (None, "absent")


def test_two_radios_ap_clients_survey_and_batctl_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iw = DATA / "iw"
    router = Router(tmp_path, captures={
        ("iw", "dev", "mesh0", "station", "dump"): iw / "station-dump-3-mesh-peers-vht80.txt",
        ("iw", "dev", "mesh0", "info"): iw / "info-mesh-point-ch149-80mhz.txt",
        ("iw", "dev", "mesh0", "survey", "dump"): SURVEY,
        ("iw", "dev", "ap0", "station", "dump"):
            (iw / "station-dump-3-mesh-peers-vht80.txt").read_text().replace("mesh-5000mhz", "ap0"),
        ("iw", "dev", "ap0", "info"): iw / "info-ap-ch11-20mhz.txt",
        ("batctl", "meshif", "bat0", "n"): DATA / "batman" / "n-text-2-neighbours.txt",
        ("wg", "show", "all", "dump"): ROUTING / "wg-dump-allowed-ip-absent.txt",
    })
    config = ('node = "conf-2"\n[collect]\nwifi_interfaces = ["mesh0", "ap0"]\n'
              'batman_mesh_if = "bat0"\n[collect.peer_names]\n'
              '"pLj2T3b1YYugGIx238T+tD9WYRgtEIpcRSfW6kkJsnE=" = "gw-1"\n')
    sh, py = router.sh_report(config), router.py_report(config, monkeypatch)
    assert_same(sh, py, "conf-2")
    assert sh["clients"] == 3
    mesh, ap = sh["radios"]
    assert (mesh["noise_dbm"], mesh["busy_pct"]) == (-95, 0.8)
    assert ap == {"iface": "wlan-2400mhz", "freq_mhz": 2462, "channel": 11, "width_mhz": 20,
                  "clients": 3}
    batman = [link for link in sh["links"] if link["kind"] == "batman"]
    assert [(b["peer_mac"], b["inactive_ms"]) for b in batman] == [
        ("16:7b:3c:c2:bf:b8", 4612), ("ae:1b:bf:52:25:58", 740)]
    (vpn,) = [link for link in sh["links"] if link["kind"] == "vpn"]
    assert vpn["peer"] == "gw-1"


class _Capture(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@contextmanager
def serve_http(body: bytes) -> Iterator[str]:
    """An olsrd info plugin stand-in on loopback answering every GET with `body`."""
    handler = type("H", (_Capture,), {"body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/links"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_babel(capture: str) -> Iterator[str]:
    """A babeld local-interface stand-in: the captured answer to `dump`, then close on `quit`."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                buf = b""
                while b"quit" not in buf:
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    buf += chunk
                conn.sendall(capture.encode())

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


ARP = ("176.62.53.97     0x1         0x2         02:ca:fe:00:00:97     *        wlan0\n"
       "10.36.197.6      0x1         0x2         02:ca:fe:00:06:01     *        bbbdigger\n"
       "10.150.0.2       0x1         0x2         02:ca:fe:00:00:02     *        mesh0\n")


TXTINFO_LINK = {"peer_mac": "02:ca:fe:00:00:97", "iface": "wlan0", "kind": "olsr", "lq": 1.0,
                "nlq": 1.0, "etx": 1.0}


@pytest.mark.parametrize(("capture", "expected"), [
    # txtinfo's own link table (netdiff's capture): LQ, NLQ, ETX as printed
    (ROUTING / "olsr-2-links.txt", [TXTINFO_LINK]),
    (ROUTING / "olsr-5-links.txt", [TXTINFO_LINK]),
    # jsoninfo /links of olsrd 0.9 (float ETX); the interface comes from the answer
    (DATA / "olsr" / "jsoninfo-links-1-link.json", [
        {"peer_mac": "02:ca:fe:00:06:01", "iface": "bbbdigger", "kind": "olsr", "lq": 1.0,
         "nlq": 0.234, "etx": 4.25}]),
    # jsoninfo's topology is the whole network's: no own links from it
    (ROUTING / "olsr-2-links.json", []),
], ids=lambda v: v.name if isinstance(v, Path) else "")
def test_olsr_own_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture: Path,
                        expected: list[dict[str, Any]]) -> None:
    router = Router(tmp_path, arp=ARP)
    with serve_http(capture.read_bytes()) as url:
        config = f'node = "olsr-1"\n[collect]\nolsr_url = "{url}"\n'
        sh, py = router.sh_report(config), router.py_report(config, monkeypatch)
    assert_same(sh, py, "olsr-1")
    assert sh["links"] == expected


def test_netjsoninfo_links_from_the_router_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = json.loads((ROUTING / "netjson-2-links.json").read_text())
    # netdiff's capture names no router; an olsrd netjsoninfo answer does (router_id)
    graph["router_id"] = "10.150.0.3"
    router = Router(tmp_path, arp=ARP)
    with serve_http(json.dumps(graph, indent=2).encode()) as url:
        config = (f'node = "olsr-2"\n[collect]\nolsr_url = "{url}"\n'
                  '[collect.peer_names]\n"10.150.0.4" = "hill-4"\n')
        sh, py = router.sh_report(config), router.py_report(config, monkeypatch)
    assert_same(sh, py, "olsr-2")
    # 10.150.0.2 resolves through the ARP table, 10.150.0.4 only through its configured name
    assert sh["links"] == [
        {"peer_mac": "02:ca:fe:00:00:02", "iface": "mesh0", "kind": "olsr", "etx": 28334},
    ]


def test_babel_neighbours_from_a_real_babeld_dump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = Router(tmp_path)
    with serve_babel((DATA / "babel" / "dump-3-namespaces.txt").read_text()) as address:
        config = f'node = "babel-1"\n[collect]\nbabel_socket = "{address}"\n'
        sh, py = router.sh_report(config), router.py_report(config, monkeypatch)
    assert_same(sh, py, "babel-1")
    # the neighbours' EUI-64 link-local addresses carry the MACs of their veth ends
    assert sh["links"] == [
        {"peer_mac": "0e:b0:60:a3:59:af", "iface": "shagab0", "kind": "babel", "rxcost": 96,
         "txcost": 96, "cost": 96},
        {"peer_mac": "3e:36:92:78:b5:0f", "iface": "shagac0", "kind": "babel", "rxcost": 96,
         "txcost": 96, "cost": 96},
    ]

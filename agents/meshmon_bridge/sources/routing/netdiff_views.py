"""Routing data parsed by netdiff (openwisp's parsers), turned into `RoutingView`s.

netdiff does the parsing; each function here only reads its NetworkX graph (directed,
so every link keeps the side that states it) and says what the numbers mean in the
wire contract:

- OLSRv1 jsoninfo/txtinfo: topology entries `lastHop → destination` with ETX, LQ, NLQ.
  netdiff reads olsrd's costs as olsrd before 0.9 prints them (integers, ETX × 1024);
  olsrd 0.9 prints the ETX itself as a decimal, so such a dump is scaled for it. A
  broken link (ETX 4096, olsrd's "infinite") is no link.
- NetJSON NetworkGraph (OLSRv2, any daemon): `cost` is ETX when the graph's metric is ETX;
  LQ/NLQ from link properties `lq`/`link_quality`, `nlq`/`neighbor_link_quality`.
- batman-adv vis (alfred/batadv-vis JSON and the text table): the metric is 255/TQ.
  `batadv-vis -f json` prints one object per line (`primary`, `secondary … of`,
  `router … neighbor … label`, `router … gateway … label: TT`); such lines are gathered
  into the document netdiff reads (`-f jsondoc`).
- BMX6 (b6m topology): rxRate/txRate are the percentages of packets received from and
  delivered to the neighbour: LQ and NLQ as fractions.
- CNML (guifi.net): devices, with the working links between them (wds, ap/client: wifi;
  cable: ethernet); model, firmware, location of the device's node and its MACs.
- WireGuard (`wg show all dump`): peers with a handshake in the last `max_age_s`.
- OpenVPN status log: the connected clients.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import networkx as nx
from libcnml import libcnml
from netdiff import (
    BatmanParser,
    Bmx6Parser,
    CnmlParser,
    NetJsonParser,
    OlsrParser,
    OpenvpnParser,
    WireguardParser,
)

from meshmon_bridge.sources.routing.view import RoutingView, ViewLink


def _number(value: Any, low: float = 0.0, high: float = 1_000_000.0) -> float | None:
    """`value` as a float when it is a finite number in [low, high], else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and low <= number <= high else None


def _metrics(**values: float | None) -> dict[str, float]:
    return {k: v for k, v in values.items() if v is not None}


def _graph_view(
    graph: nx.DiGraph,
    iface: str,
    kind: str,
    metrics: Callable[[dict[str, Any]], dict[str, float]],
) -> RoutingView:
    view = RoutingView(nodes={}, links=[])
    for key, attrs in graph.nodes(data=True):
        view.node(str(key)).aliases = [str(a) for a in attrs.get("local_addresses") or ()]
    for src, dst, attrs in graph.edges(data=True):
        view.links.append(ViewLink(str(src), str(dst), iface, kind, metrics(attrs)))
    return view


OLSR_COST_SCALE = 1024
"""olsrd before 0.9 prints link costs as integers: the ETX × 1024 (what netdiff expects)"""
OLSR_BROKEN_ETX = 4096.0
"""olsrd's cost of a broken link (LINK_COST_BROKEN = 1 << 22, / 1024): no link"""


def olsr1_view(text: str) -> RoutingView:
    """OLSRv1 jsoninfo (`/all`, `/topology`+`/mid`; olsrd 0.6 to 0.9) or txtinfo."""
    graph = OlsrParser(_olsr_costs_for_netdiff(text), directed=True).graph
    graph.remove_edges_from([(a, b) for a, b, w in graph.edges(data="weight")
                             if w is not None and w >= OLSR_BROKEN_ETX])
    return _graph_view(graph, "olsr", "olsr", lambda a: _metrics(
        etx=_number(a.get("weight")),
        lq=_number(a.get("link_quality"), high=1),
        nlq=_number(a.get("neighbor_link_quality"), high=1),
    ))  # fmt: skip


def _olsr_costs_for_netdiff(text: str) -> Any:
    """The dump as netdiff reads it: olsrd 0.9's decimal costs (`"tcEdgeCost": 1.000000`)
    in the older integer unit; txtinfo and older jsoninfo as they are."""
    try:
        document = json.loads(text)
    except ValueError:
        return text  # txtinfo
    if not isinstance(document, dict):
        return text
    topology = document.get("topology")
    for entry in topology if isinstance(topology, list) else ():
        cost = entry.get("tcEdgeCost") if isinstance(entry, dict) else None
        if isinstance(cost, float):
            entry["tcEdgeCost"] = cost * OLSR_COST_SCALE
    return document


PROTOCOL_KINDS = (("olsr", "olsr"), ("batman", "batman"), ("bmx", "bmx7"), ("babel", "babel"),
                  ("openvpn", "vpn"), ("wireguard", "vpn"), ("zerotier", "vpn"))  # fmt: skip


def kind_of_protocol(protocol: str | None) -> str:
    """The wire link kind of a NetJSON graph's `protocol` (`OLSRv2` → olsr …), else other."""
    name = (protocol or "").lower()
    return next((kind for word, kind in PROTOCOL_KINDS if word in name), "other")


def netjson_view(text: str, kind: str | None = None) -> RoutingView:
    """A NetJSON NetworkGraph, or a NetworkCollection of them (OLSRv2's netjsoninfo prints
    one graph per routing domain and address family); `kind` overrides the link kind the
    graph's protocol suggests."""
    document = json.loads(text)
    graphs = list(_network_graphs(document))
    if not graphs:
        raise ValueError("no NetJSON NetworkGraph in it")
    view = RoutingView(nodes={}, links=[])
    for graph in graphs:
        _merge(view, _one_netjson_graph(graph, kind))
    return view


def _network_graphs(document: Any) -> Iterator[dict[str, Any]]:
    if isinstance(document, dict) and document.get("type") == "NetworkCollection":
        for item in document.get("collection") or ():
            yield from _network_graphs(item)
    elif isinstance(document, dict) and document.get("type") == "NetworkGraph":
        yield document


def _one_netjson_graph(document: dict[str, Any], kind: str | None) -> RoutingView:
    parser = NetJsonParser(document, directed=True)
    link_kind = kind or kind_of_protocol(parser.protocol)
    etx = str(parser.metric or "").lower() == "etx"

    def metrics(a: dict[str, Any]) -> dict[str, float]:
        cost = _number(a.get("weight"))
        return _metrics(
            etx=cost if etx else None,
            cost=None if etx else cost,
            lq=_number(a.get("lq", a.get("link_quality")), high=1),
            nlq=_number(a.get("nlq", a.get("neighbor_link_quality")), high=1),
        )

    iface = str(parser.protocol or "netjson").lower()[:32]
    view = _graph_view(parser.graph, iface, link_kind, metrics)
    for key, attrs in parser.graph.nodes(data=True):
        node = view.nodes[str(key)]
        names = [attrs.get(k) for k in ("label", "hostname", "name")]
        node.name = next((str(n) for n in names if isinstance(n, str) and n.strip()), None)
        hostname = attrs.get("hostname")
        node.hostname = hostname if isinstance(hostname, str) else node.name
    return view


def _merge(into: RoutingView, view: RoutingView) -> None:
    for key, node in view.nodes.items():
        known = into.nodes.setdefault(key, node)
        if known is not node:
            known.aliases += [a for a in node.aliases if a not in known.aliases]
            known.name = known.name or node.name
            known.hostname = known.hostname or node.hostname
    into.links += view.links


def batman_view(text: str) -> RoutingView:
    """batman-adv vis data (alfred / batadv-vis JSON, JSON lines, or the text table)."""
    graph = BatmanParser(_vis_lines_as_document(text) or text, directed=True).graph
    view = _graph_view(graph, "batman-adv", "batman", lambda a: _metrics(tq=_tq(a.get("weight"))))
    for key, attrs in graph.nodes(data=True):
        clients = attrs.get("clients")
        if isinstance(clients, list):
            view.nodes[str(key)].clients = len(set(map(str, clients)))
    return view


def _vis_lines_as_document(text: str) -> dict[str, Any] | None:
    """`batadv-vis -f json` output (an object per line) as a `-f jsondoc` document; None
    when the text is not that."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not all(line.startswith("{") for line in lines):
        return None
    try:
        entries = [json.loads(line) for line in lines]
    except ValueError:
        return None
    if not all(isinstance(e, dict) for e in entries):
        return None
    primary_of = {str(e["secondary"]): str(e["of"]) for e in entries
                  if "secondary" in e and "of" in e}
    nodes: dict[str, dict[str, Any]] = {}

    def node(mac: str) -> dict[str, Any]:
        primary = primary_of.get(mac, mac)
        return nodes.setdefault(primary, {"primary": primary, "secondary": [],
                                          "neighbors": [], "clients": []})

    for entry in entries:
        if "primary" in entry:
            node(str(entry["primary"]))
        elif "secondary" in entry and "of" in entry:
            node(str(entry["of"]))["secondary"].append(str(entry["secondary"]))
        elif "router" in entry and "neighbor" in entry:
            node(str(entry["router"]))["neighbors"].append(
                {"router": str(entry["router"]), "neighbor": str(entry["neighbor"]),
                 "metric": str(entry.get("label", ""))})
        elif "router" in entry and "gateway" in entry:  # a client (label "TT")
            node(str(entry["router"]))["clients"].append(str(entry["gateway"]))
    return {"vis": list(nodes.values())} if nodes else None


def _tq(vis_metric: Any) -> int | None:
    # batadv-vis prints 255 / TQ
    metric = _number(vis_metric)
    return None if not metric else min(255, round(255 / metric))


def bmx6_view(text: str) -> RoutingView:
    """BMX6's b6m topology (node names are the daemon's own)."""
    graph = Bmx6Parser(text, directed=True).graph
    view = _graph_view(graph, "bmx6", "bmx7", lambda a: _metrics(
        lq=_percent(a.get("rx_rate")), nlq=_percent(a.get("tx_rate")),
    ))  # fmt: skip
    for node in view.nodes.values():
        node.name = node.hostname = node.key
    return view


def _percent(value: Any) -> float | None:
    number = _number(value, high=100)
    return None if number is None else number / 100


CNML_LINK_KINDS = {"wds": "wifi", "ap/client": "wifi", "cable": "ethernet"}


def cnml_view(path: Path) -> RoutingView:
    """A guifi.net CNML file: devices and the working links between them."""
    parser = CnmlParser(str(path), directed=True)
    cnml = parser.original_data
    if not cnml.loaded:
        raise ValueError("not a CNML document (libcnml could not load it)")
    owner: dict[str, Any] = {}  # interface address → (device, interface name)
    for interface in cnml.get_interfaces():
        parent = interface.parent
        radio = parent if isinstance(parent, libcnml.CNMLRadio) else None
        device = radio.parentDevice if radio is not None else parent
        name = (radio.snmp_name if radio is not None else None) or interface.type or "cnml"
        owner.setdefault(interface.ipv4, (device, str(name)[:64]))
    kinds = {}
    for link in cnml.get_inner_links():
        a, b = (i.ipv4 for i in link.get_linked_interfaces())
        kinds[(a, b)] = kinds[(b, a)] = CNML_LINK_KINDS.get(str(link.type).lower(), "other")
    view = RoutingView(nodes={}, links=[])
    for src, dst in parser.graph.edges():
        if src not in owner or dst not in owner:
            continue
        (a, iface), (b, _) = owner[src], owner[dst]
        for device in (a, b):
            _cnml_device(view, device)
        view.links.append(ViewLink(str(a.id), str(b.id), iface, kinds.get((src, dst), "other")))
    return view


def _cnml_device(view: RoutingView, device: Any) -> None:
    node = view.node(str(device.id))
    if node.name is not None:
        return
    node.name = node.hostname = str(device.title or f"guifi-{device.id}")
    addresses = [device.mainipv4] + [i.ipv4 for i in device.get_interfaces()]
    addresses += [i.ipv4 for r in device.get_radios() for i in r.get_interfaces()]
    macs = [i.mac for i in device.get_interfaces()]
    macs += [i.mac for r in device.get_radios() for i in r.get_interfaces()]
    node.aliases = list(dict.fromkeys(str(a) for a in addresses + macs if a))
    site = device.parentNode
    node.info = {k: str(v)[:128] for k, v in (("model", device.name),
                                               ("firmware", device.firmware)) if v}
    lat, lon = _number(site.latitude, -90, 90), _number(site.longitude, -180, 180)
    if lat is not None and lon is not None:
        node.info["location"] = {"lat": lat, "lon": lon}


def wireguard_view(text: str, as_of: float | None, max_age_s: float) -> RoutingView:
    """`wg show all dump`: the host (the local node) and its peers with a recent handshake.

    `as_of`: the time the dump is judged at (None: its newest handshake, for a saved dump).
    """
    own_time = None
    if as_of is None:
        stamps = (line.split("\t") for line in text.splitlines())
        as_of = max((int(f[5]) for f in stamps if len(f) == 9 and f[5].isdigit()), default=0)
        own_time = float(as_of) or None
    parser = _WireguardAsOf(text, directed=True, as_of=as_of, max_age_s=max_age_s)
    graph = parser.graph
    interfaces = [k for k, a in graph.nodes(data=True) if "listen_port" in a]
    keys = [str(graph.nodes[i].get("public_key") or i) for i in interfaces]
    local = keys[0] if keys else "wireguard"
    view = RoutingView(nodes={}, links=[], local=local, ts=own_time)
    view.node(local).aliases = keys[1:]
    for peer, interface in graph.edges():
        view.node(str(peer)).aliases = list(graph.nodes[peer].get("allowed_ips") or ())
        view.links.append(ViewLink(local, str(peer), str(interface)[:64], "vpn"))
    return view


class _WireguardAsOf(WireguardParser):
    """netdiff's parser, judging handshakes at a given time (it uses the clock)."""

    def __init__(self, *args: Any, as_of: float, max_age_s: float, **kwargs: Any) -> None:
        self._as_of = as_of
        self._max_age_s = max_age_s
        super().__init__(*args, **kwargs)

    def _parse_latest_handshake(self, latest_handshake: str) -> tuple[bool, datetime]:
        stamp = int(latest_handshake)
        fresh = stamp != 0 and self._as_of - stamp < self._max_age_s
        return fresh, datetime.fromtimestamp(stamp)


OPENVPN_SERVER = "openvpn-server"


def openvpn_view(text: str, duplicate_cn: bool = False) -> RoutingView:
    """An OpenVPN status log: the server (the local node) and its connected clients."""
    graph = OpenvpnParser(text, directed=True, duplicate_cn=duplicate_cn).graph
    view = RoutingView(nodes={}, links=[], local=OPENVPN_SERVER)
    view.node(OPENVPN_SERVER)
    for key, attrs in graph.nodes(data=True):
        if key != OPENVPN_SERVER:
            node = view.node(str(key))
            node.name = node.hostname = attrs.get("common_name") or attrs.get("label")
            node.aliases = [str(a) for a in attrs.get("local_addresses") or ()]
    for _, client in graph.edges():
        view.node(str(client))
        view.links.append(ViewLink(OPENVPN_SERVER, str(client), "openvpn", "vpn"))
    return view

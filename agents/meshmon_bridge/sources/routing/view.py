"""One routing daemon's view of the mesh, and how it becomes `NodeUpdate`s.

Every kind (netdiff's parsers, babeld's local interface) is first turned into a
`RoutingView`: the nodes the daemon knows by its own ids, and the links it states, each
from the side of the node that states it. `ViewPublisher` then names the nodes
(naming.py) and decides what this source speaks for:

- A link-state view (OLSR topology, NetJSON, batman-adv vis, BMX6, CNML) holds every
  node's own links: the source speaks for every node in it.
- A local view (Babel, WireGuard, OpenVPN) holds the links of the one node whose daemon
  is read (`local`); the others are known only as reachable (Babel routes, WireGuard peers
  with a recent handshake, OpenVPN clients). The source speaks for the local node, and for
  the others too unless `remote_nodes = false` (when they speak for themselves: their own
  agent, or another source reading their daemon — a node must have one voice).

A node it speaks for gets `info` (hostname, location, MACs for peer resolution — never
its addresses), `online` and a report with the links it states (none is a valid report:
it keeps the node online). A node that was in an earlier view and is no longer there
is published offline. Nodes in `exclude` are not spoken for (links to them still are).
The local node's id is `node` from the config when given.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from meshmon_bridge.source import NodeUpdate
from meshmon_bridge.sources.routing.naming import (
    MAC_RE,
    NameBook,
    address_key,
    looks_like_address,
)

log = logging.getLogger(__name__)
MAX_LINKS = 512
"""the contract's bound on links per report"""


@dataclass(slots=True)
class ViewNode:
    """A node as the daemon knows it."""

    key: str
    """the daemon's id of it (an address, router id, public key or name)"""
    aliases: list[str] = field(default_factory=list)
    """its other addresses, for `names` lookups (never published)"""
    name: str | None = None
    """a name every daemon of the mesh gives it (label, CN, title), if any"""
    hostname: str | None = None
    """for `info.hostname` (may be a name only this daemon knows)"""
    info: dict[str, Any] = field(default_factory=dict)
    """more `info` fields the source knows (model, firmware, location)"""
    clients: int | None = None


@dataclass(slots=True)
class ViewLink:
    """A link as the node `src` states it."""

    src: str
    dst: str
    iface: str
    kind: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class RoutingView:
    """What one poll of one daemon showed."""

    nodes: dict[str, ViewNode]
    links: list[ViewLink]
    local: str | None = None
    """the node whose daemon was read (local views); None: a link-state view"""
    ts: float | None = None
    """when the view is as of, if the data says (a saved dump); None: now"""

    def node(self, key: str) -> ViewNode:
        """The node `key`, added if the view has not seen it yet."""
        found = self.nodes.get(key)
        if found is None:
            found = self.nodes[key] = ViewNode(key)
        return found


PLACEHOLDER_MACS = frozenset(("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"))
"""not one device's address (registries fill them in): they would resolve to any node"""


def macs_among(addresses: Iterable[str]) -> list[str]:
    """The MAC addresses among `addresses`, lower case, in order, once each."""
    macs = (a.strip().lower() for a in addresses)
    return list(dict.fromkeys(m for m in macs if MAC_RE.match(m) and m not in PLACEHOLDER_MACS))


class ViewPublisher:
    """Turns successive views of one source into NodeUpdates (keeps who was seen)."""

    def __init__(
        self,
        book: NameBook,
        remote_nodes: bool = True,
        exclude: Iterable[str] = (),
        local_node: str | None = None,
    ) -> None:
        self._book = book
        self._remote_nodes = remote_nodes
        self._local_node = local_node
        self._exclude = {address_key(e) for e in exclude}
        self._seen: set[str] = set()

    def updates(self, view: RoutingView) -> list[NodeUpdate]:
        """The NodeUpdates for this view: spoken-for nodes, and offline ones that left it."""
        ids = self._name_all(view)
        spoken = [
            node for node in view.nodes.values()
            if self._speaks_for(view, node, ids[node.key])
        ]  # fmt: skip
        links_by_src: dict[str, list[dict[str, Any]]] = {}
        for link in view.links:
            src, dst = ids[link.src], ids[link.dst]
            if src != dst:
                links_by_src.setdefault(link.src, []).append(
                    {"peer": dst, "iface": link.iface, "kind": link.kind, **link.metrics}
                )
        by_id: dict[str, NodeUpdate] = {}
        for node in spoken:
            node_id = ids[node.key]
            links = links_by_src.get(node.key, [])
            update = by_id.get(node_id)
            if update is not None:  # two daemon ids the config names as one node
                assert update.report is not None
                update.report["links"] += links
                continue
            report: dict[str, Any] = {"links": links}
            if node.clients is not None:
                report["clients"] = node.clients
            by_id[node_id] = NodeUpdate(node_id, info=self._info(node), online=True,
                                        report=report, ts=view.ts)
        for node_id, update in by_id.items():
            assert update.report is not None
            if len(update.report["links"]) > MAX_LINKS:
                log.warning("%s states %d links; publishing the first %d",
                            node_id, len(update.report["links"]), MAX_LINKS)
                del update.report["links"][MAX_LINKS:]
        gone = [NodeUpdate(n, online=False, ts=view.ts) for n in sorted(self._seen - by_id.keys())]
        self._seen |= by_id.keys()
        return [*by_id.values(), *gone]

    def _name_all(self, view: RoutingView) -> dict[str, str]:
        # configured names first, so a daemon's name that happens to equal one of them
        # is the one that yields
        book = self._book
        if view.local is not None and self._local_node is not None:
            book.pin(view.local, self._local_node)
        order = sorted(view.nodes.values(),
                       key=lambda n: (book.configured(n.key, n.aliases) is None, n.key))
        ids = {n.key: book.node_id(n.key, n.aliases, n.name) for n in order}
        for link in view.links:  # a link to a node the view did not list
            for key in (link.src, link.dst):
                if key not in ids:
                    ids[key] = book.node_id(key)
        return ids

    def _speaks_for(self, view: RoutingView, node: ViewNode, node_id: str) -> bool:
        if self._exclude and self._exclude & {
            address_key(k) for k in (node_id, node.key, *node.aliases)
        }:
            return False
        return view.local is None or node.key == view.local or self._remote_nodes

    def _info(self, node: ViewNode) -> dict[str, Any]:
        info: dict[str, Any] = dict(node.info)
        if node.hostname and not looks_like_address(node.hostname):
            info["hostname"] = node.hostname[:128]
        macs = macs_among([node.key, *node.aliases])
        if macs:
            info["macs"] = macs[:128]
        return info

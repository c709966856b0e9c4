"""Which node announced which MAC address (`info.macs`): how a link's `peer_mac` becomes
a node id. The topology keeps one; so does each writer (`meshmon.writer`), fed by the same
retained `info` messages, so both name a link's peer the same way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from meshmon.model import wire
from meshmon.model import wire_structs as fast


class MacOwners:
    """MAC → node, the latest announcement of a MAC winning."""

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}
        self._macs: dict[str, frozenset[str]] = {}
        self.version = 0
        """counts the changes of `owner` (what was resolved before may resolve otherwise)"""

    def announce(self, node: str, macs: Iterable[str]) -> frozenset[str]:
        """`node` now has exactly these MACs (those it no longer lists are forgotten
        unless another node claimed them since); returns them lower-cased."""
        current = frozenset(m.lower() for m in macs)
        owner = self.owner
        for mac in self._macs.get(node, frozenset()) - current:
            if owner.get(mac) == node:
                del owner[mac]
                self.version += 1
        self._macs[node] = current
        for mac in current:
            if owner.get(mac) != node:
                owner[mac] = node
                self.version += 1
        return current

    def clear(self) -> None:
        self.owner.clear()
        self._macs.clear()
        self.version += 1

    def dsts(self, src: str, links: Sequence[wire.Link | fast.Link]) -> list[str | None]:
        """The node each link points at: its `peer`, else the owner of its `peer_mac`;
        None when the MAC is unknown or the link points back at `src` (as the topology
        resolves them)."""
        owner = self.owner
        out: list[str | None] = []
        for link in links:
            dst = link.peer
            if dst is None and link.peer_mac is not None:
                dst = owner.get(link.peer_mac.lower())
            out.append(None if dst == src else dst)
        return out

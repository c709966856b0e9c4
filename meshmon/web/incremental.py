"""The base of the whole-network JSON documents kept up to date from the topology's changes.

`/api/v1/nodes`, `/links`, `/topology` and `/map` describe every node and link. Encoding
them anew per request costs ~10 µs per link: at 2,000 nodes, ~0.1–0.2 s after each report
round, with the event loop blocked. Instead each renderer keeps an encoded fragment per
link, pair or node and re-encodes only what the core's change log names; the collector
hands the changes over after each ingest batch (`Documents.catch_up`), so a request finds
the fragments current and only splices the few per-node live fields (state, online, last
seen) and joins.
"""

from __future__ import annotations

from collections.abc import Collection

from meshmon.model.changelog import Changes
from meshmon.model.state import LinkKey
from meshmon.model.topology import Topology

Pair = tuple[str, str]
"""two node ids, the smaller first"""


def pair_of(a: str, b: str) -> Pair:
    """The pair of nodes `a` and `b`."""
    return (a, b) if a < b else (b, a)


class Incremental:
    """A document's fragments, built on first use and then updated from changes."""

    def __init__(self) -> None:
        self.built = False
        self.used_at = 0.0

    def update(self, topology: Topology, changes: Changes) -> None:
        """Re-encode what `changes` names (nothing while not built)."""
        if changes.reset:
            self.clear()
        elif self.built:
            if changes.link_set:
                self.links_came_or_went()
            self.apply(topology, changes.links, changes.nodes)

    def ready(self, topology: Topology) -> None:
        """Build from the whole topology if not built."""
        if not self.built:
            self.apply(topology, list(topology.links), list(topology.nodes))
            self.built = True

    def clear(self) -> None:
        """Forget every fragment (the next use builds anew)."""
        self.built = False
        self.forget()

    def apply(self, topology: Topology, links: Collection[LinkKey], nodes: Collection[str]
              ) -> None:
        """Bring the fragments of these links and nodes up to date (keys of links and
        nodes that are gone drop their fragments)."""
        raise NotImplementedError

    def forget(self) -> None:
        """Drop every fragment."""
        raise NotImplementedError

    def links_came_or_went(self) -> None:
        """Links were added or removed (not only new samples): drop what counts them."""

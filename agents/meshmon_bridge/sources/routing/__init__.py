"""`[[routing]]` sources: what routing daemons (OLSR, Babel, batman-adv, BMX6) and network
registries (CNML, WireGuard, OpenVPN) know about the mesh, published as nodes and links.
See docs/routing.md."""

from meshmon_bridge.sources.routing.config import RoutingConfig
from meshmon_bridge.sources.routing.source import RoutingSource, create_routing_sources

__all__ = ["RoutingConfig", "RoutingSource", "create_routing_sources"]

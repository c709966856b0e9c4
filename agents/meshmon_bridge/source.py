"""The interface every `meshmon-bridge` source kind implements.

A source polls one outside system (an SNMP device, a respondd multicast group, a
community's map file, a routing daemon) and answers with `NodeUpdate`s: what it now knows
about each node it speaks for. The bridge runtime turns them into v1 contract messages
(`PREFIX/v1/node/NODE/{info,status,report}`), adds `v`, `node`, `seq`, `ts` and
`info.source = {"kind": KIND, "via": BRIDGE_ID}`, publishes `info` (retained) only when it
changed, `status` (retained) when it changed, and a report for every update that has one.

Rules every source keeps:
- `node` is public: it never holds a MAC or IP address (map such ids to a stable name).
- A metric the source does not have is absent from the payload, never 0.
- Bad or partial input from the outside is logged and skipped; `poll()` raises
  `SourceError` only when the whole source failed this round (unreachable, unparsable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class SourceError(Exception):
    """This poll failed as a whole; the message says what and where (host, URL, file)."""


@dataclass(slots=True)
class NodeUpdate:
    """What one poll learned about one node."""

    node: str
    """the public node id it is published as"""
    info: dict[str, Any] | None = None
    """`info` payload fields (hostname, model, firmware, location, macs, gateway, public,
    tags, antennas, interval_s …) without v/node/ts/source; None: unknown this round"""
    online: bool | None = None
    """True/False: publish a retained `status`; None: unknown this round"""
    report: dict[str, Any] | None = None
    """`report` payload fields (sys, ifaces, radios, clients, links, interval_s …) without
    v/node/seq/ts; None: no report this round"""
    ts: float | None = None
    """when the data is as of (unix seconds; e.g. a snapshot's own time); None: now"""
    extra: dict[str, Any] = field(default_factory=dict)
    """source-private data (e.g. MACs kept only for peer resolution); never published"""


class Source(Protocol):
    """One configured source (one `[[snmp]]`, `[[respondd]]` … table)."""

    kind: str
    """`snmp`, `respondd`, `meshviewer`, `routing` … (goes into info.source.kind)"""
    name: str
    """for logs: e.g. `snmp 192.0.2.5:161 (hill-5-ap)`"""
    interval_s: float
    # Optional attribute `poll_deadline_s: float | None`: how long one poll may take before
    # the runtime cancels it (default max(3 × interval_s, 60 s)); None for a source that
    # bounds its own work, e.g. one that first waits for a shared concurrency slot.

    async def poll(self) -> list[NodeUpdate]:
        """Poll once; every node this source speaks for that it learned something about."""
        ...

    async def close(self) -> None:
        """Release sockets and tasks; called once when the bridge stops."""
        ...


@dataclass(frozen=True, slots=True)
class BridgeContext:
    """What a source kind's factory may need from the bridge around it."""

    bridge_id: str
    """`[bridge] id`"""
    base_dir: Path = field(default_factory=Path.cwd)
    """the config file's folder: resolve relative file paths of source tables against it"""

"""Wire contract v1: the MQTT topics and payloads agents and the collector speak.

These pydantic models are the source of truth; `docs/protocol.md` and
`docs/protocol.schema.json` are generated from them (`python -m meshmon.model.schema`).
Validation is strict where it protects the collector (types, ranges, sizes, topic and
payload agreeing on the node) and lenient where devices differ: unknown fields are ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from meshmon.model.addresses import looks_like_address, mac_from_id

PROTOCOL_VERSION = 1
MAX_PAYLOAD_BYTES = 65536
NODE_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAC_RE = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"
LINK_KINDS = ("wifi", "batman", "olsr", "babel", "bmx7", "ethernet", "vpn", "other")
MESSAGE_KINDS = ("status", "info", "report")
SOURCE_KIND_RE = r"^[a-z][a-z0-9_-]{0,31}$"

NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_RE)]
Mac = Annotated[str, StringConstraints(pattern=MAC_RE, to_lower=True)]
ShortText = Annotated[str, StringConstraints(max_length=128)]
LinkKind = Literal["wifi", "batman", "olsr", "babel", "bmx7", "ethernet", "vpn", "other"]
INT64_MAX = 2**63 - 1
Counter = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""a count: SQLite and InfluxDB keep 64-bit signed integers"""
Dbm = Annotated[float, Field(ge=-150, le=40)]
Mbps = Annotated[float, Field(ge=0, le=1_000_000)]


class WireModel(BaseModel):
    """Base of every payload model: unknown fields from newer or odd agents are ignored."""

    # NaN and ±Infinity (`1e999` too) are no measurement, and JSON cannot write them back:
    # a saved report with `"ts": null` would not load after a restart
    model_config = ConfigDict(extra="ignore", frozen=False, allow_inf_nan=False)


class Status(WireModel):
    """Retained online flag; the agent's last will is the same with `online: false`."""

    v: Literal[1]
    node: NodeId
    online: bool
    ts: float | None = Field(default=None, ge=0, description="agent clock, unix seconds")


class Location(WireModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float | None = Field(default=None, ge=-500, le=10_000)


class Owner(WireModel):
    """Private: never shown in public output."""

    contact: Annotated[str, StringConstraints(max_length=256)] | None = None
    notify: bool = False
    """the owner opts in to notices about this node (sent to `contact` if it is an email
    address and the collector has `alerts.owner_notifier`)"""


class Antenna(WireModel):
    """A directional (sector) antenna, for coverage drawing."""

    iface: ShortText | None = None
    azimuth_deg: float = Field(ge=0, lt=360)
    width_deg: float = Field(gt=0, le=360)
    range_m: float | None = Field(default=None, gt=0, le=100_000)


class NodeSource(WireModel):
    """Who speaks for a node that runs no agent: a `meshmon-bridge` and its source kind."""

    kind: Annotated[str, StringConstraints(pattern=SOURCE_KIND_RE)] = Field(
        description="snmp, respondd, meshviewer, hopglass, openwifimap, routing, …")
    via: NodeId = Field(description="the bridge id (`[bridge] id`)")


class Info(WireModel):
    """Retained node description, sent on start and when it changes."""

    v: Literal[1]
    node: NodeId
    ts: float | None = Field(default=None, ge=0)
    hostname: ShortText | None = None
    model: ShortText | None = None
    firmware: ShortText | None = None
    agent: ShortText | None = None
    location: Location | None = None
    macs: list[Mac] = Field(default_factory=list, max_length=128)
    gateway: bool = False
    owner: Owner | None = None
    public: bool = True
    tags: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=32
    )
    antennas: list[Antenna] = Field(default_factory=list, max_length=16)
    interval_s: float | None = Field(default=None, gt=0, le=86_400)
    source: NodeSource | None = None
    """set by a bridge for the nodes it publishes; absent for a node's own agent"""


class Sys(WireModel):
    uptime_s: float | None = Field(default=None, ge=0)
    load: list[Annotated[float, Field(ge=0, le=10_000)]] | None = Field(default=None, max_length=3)
    mem_total_kb: Counter | None = None
    mem_avail_kb: Counter | None = None
    rootfs_used_pct: float | None = Field(default=None, ge=0, le=100)


class Iface(WireModel):
    name: ShortText
    up: bool | None = None
    rx_bytes: Counter | None = None
    tx_bytes: Counter | None = None
    rx_packets: Counter | None = None
    tx_packets: Counter | None = None
    rx_errors: Counter | None = None
    tx_errors: Counter | None = None


Pct = Annotated[float, Field(ge=0, le=100)]
Rssi = Annotated[float, Field(ge=-150, le=150)]
Metres = Annotated[float, Field(ge=0, le=1_000_000)]


class RadioMetrics(WireModel):
    """Optional readings that radios (SNMP devices) report per interface or per peer; the
    vendor MIB each comes from is in docs/snmp.md. None of them is stored as a link metric
    column yet (LINK_METRICS)."""

    ccq_pct: Pct | None = None
    tx_ccq_pct: Pct | None = None
    rx_ccq_pct: Pct | None = None
    quality_pct: Pct | None = Field(default=None, description="airMAX / 60 GHz link quality")
    capacity_pct: Pct | None = Field(default=None, description="airMAX capacity")
    rssi: Rssi | None = Field(default=None, description="the vendor's RSSI as reported")
    chains_rssi: list[Rssi] | None = Field(default=None, max_length=8)
    tx_capacity_mbps: Mbps | None = None
    rx_capacity_mbps: Mbps | None = None
    distance_m: Metres | None = None
    remote_signal_dbm: Dbm | None = None
    remote_chains_dbm: list[Dbm] | None = Field(default=None, max_length=8)
    remote_rssi: Rssi | None = None
    remote_snr_db: float | None = Field(default=None, ge=-50, le=150)
    mcs: int | None = Field(default=None, ge=0, le=64)


class Radio(RadioMetrics):
    iface: ShortText
    freq_mhz: float | None = Field(default=None, gt=0, le=100_000)
    channel: int | None = Field(default=None, ge=0, le=1000)
    width_mhz: float | None = Field(default=None, gt=0, le=2000)
    noise_dbm: Dbm | None = None
    txpower_dbm: float | None = Field(default=None, ge=-50, le=60)
    busy_pct: float | None = Field(default=None, ge=0, le=100)
    clients: Counter | None = None
    ssid: ShortText | None = None
    rx_freq_mhz: float | None = Field(default=None, gt=0, le=100_000)
    signal_dbm: Dbm | None = None
    chains_dbm: list[Dbm] | None = Field(default=None, max_length=8)
    chains_snr_db: list[Annotated[float, Field(ge=-150, le=150)]] | None = Field(
        default=None, max_length=8)
    chains_noise_dbm: list[Dbm] | None = Field(
        default=None, max_length=8, description="noise per chain, in the order of chains_dbm")
    chains_freq_mhz: list[Annotated[float, Field(gt=0, le=100_000)]] | None = Field(
        default=None, max_length=8,
        description="centre frequency per chain, in the order of chains_dbm (a dual-carrier "
                    "radio's chains are on two frequencies)")
    snr_db: float | None = Field(default=None, ge=-50, le=150)
    snr_min_db: float | None = Field(default=None, ge=-50, le=150)
    snr_max_db: float | None = Field(default=None, ge=-50, le=150)
    tx_rate_mbps: Mbps | None = None
    rx_rate_mbps: Mbps | None = None
    tx_rate_min_mbps: Mbps | None = None
    tx_rate_max_mbps: Mbps | None = None
    rx_rate_min_mbps: Mbps | None = None
    rx_rate_max_mbps: Mbps | None = None
    streams_tx_mbps: list[Mbps] | None = Field(default=None, max_length=16)
    streams_rx_mbps: list[Mbps] | None = Field(default=None, max_length=16)
    rx_util_pct: Pct | None = None
    tx_util_pct: Pct | None = None
    other_bss_pct: Pct | None = None
    tx_error_pct: Pct | None = None
    rx_error_pct: Pct | None = None
    rsrp_dbm: Dbm | None = None
    rsrq_db: float | None = Field(default=None, ge=-50, le=50)
    sinr_db: float | None = Field(default=None, ge=-50, le=100)


class Link(RadioMetrics):
    """One neighbour seen on one interface by one mechanism, from this node's side."""

    peer: NodeId | None = None
    peer_mac: Mac | None = None
    iface: ShortText
    kind: LinkKind
    signal_dbm: Dbm | None = None
    signal_avg_dbm: Dbm | None = None
    chains_dbm: list[Dbm] | None = Field(default=None, max_length=8)
    noise_dbm: Dbm | None = None
    snr_db: float | None = Field(default=None, ge=-50, le=150)
    tx_rate_mbps: Mbps | None = None
    rx_rate_mbps: Mbps | None = None
    expected_tput_mbps: Mbps | None = None
    tx_retries: Counter | None = None
    tx_failed: Counter | None = None
    inactive_ms: Counter | None = None
    tq: int | None = Field(default=None, ge=0, le=255)
    lq: float | None = Field(default=None, ge=0, le=1)
    nlq: float | None = Field(default=None, ge=0, le=1)
    etx: float | None = Field(default=None, ge=0, le=1_000_000)
    cost: float | None = Field(default=None, ge=0, le=1_000_000)
    rxcost: float | None = Field(default=None, ge=0, le=1_000_000)
    txcost: float | None = Field(
        default=None, ge=0, le=1_000_000,
        description="Babel: the cost the neighbour reports for hearing this node (IHU)",
    )  # fmt: skip
    ideal_chains_dbm: list[Dbm] | None = Field(default=None, max_length=8)
    chain_levels_pct: list[Pct] | None = Field(default=None, max_length=8)
    freq_mhz: float | None = Field(default=None, gt=0, le=100_000)
    width_mhz: float | None = Field(default=None, gt=0, le=2000)
    # traffic of this neighbour (Wi-Fi station, WireGuard peer), counted since the
    # association or tunnel start; not in LINK_METRICS (no history columns yet)
    rx_bytes: Counter | None = None
    tx_bytes: Counter | None = None
    rx_packets: Counter | None = None
    tx_packets: Counter | None = None
    handshake_ts: float | None = Field(
        default=None, ge=0, description="latest WireGuard handshake, unix seconds"
    )

    @model_validator(mode="after")
    def _needs_a_peer(self) -> Link:
        if self.peer is None and self.peer_mac is None:
            raise ValueError("a link needs `peer` or `peer_mac`")
        if self.peer is not None and looks_like_address(self.peer):
            # a MAC- or IP-derived neighbour id would be public: a MAC id resolves like
            # peer_mac; an IP id is dropped (and with it the link, unless it has a MAC)
            if self.peer_mac is None:
                self.peer_mac = mac_from_id(self.peer)
            self.peer = None
        return self


LINK_METRICS: tuple[str, ...] = (
    "signal_dbm", "signal_avg_dbm", "noise_dbm", "snr_db", "tx_rate_mbps", "rx_rate_mbps",
    "expected_tput_mbps", "tx_retries", "tx_failed", "inactive_ms", "tq", "lq", "nlq", "etx",
    "cost", "rxcost",
)  # fmt: skip
"""Scalar link metrics, in a fixed order (storage and line protocol use it)."""


class Report(WireModel):
    """Periodic report of one node: system, interfaces, radios and links."""

    v: Literal[1]
    node: NodeId
    ts: float = Field(ge=0, description="agent clock, unix seconds")
    seq: Counter
    interval_s: float = Field(gt=0, le=86_400)
    sys: Sys | None = None
    ifaces: list[Iface] = Field(default_factory=list, max_length=128)
    radios: list[Radio] = Field(default_factory=list, max_length=32)
    clients: Counter | None = None
    links: list[Link] = Field(default_factory=list, max_length=512)

    @model_validator(mode="after")
    def _drop_anonymous_links(self) -> Report:
        # a link whose only peer id was an IP address has nothing public left to name it
        if any(link.peer is None and link.peer_mac is None for link in self.links):
            # the container it had: a list in this model, a tuple in fastwire's Struct
            kept = (ln for ln in self.links if ln.peer is not None or ln.peer_mac)
            self.links = type(self.links)(kept)
        return self


class BridgeStatus(WireModel):
    """Retained on `PREFIX/v1/bridge/ID/status`; the bridge's last will is the same with
    `online: false` (and no `ts`)."""

    v: Literal[1]
    bridge: NodeId
    online: bool
    ts: float | None = Field(default=None, ge=0, description="bridge clock, unix seconds")


class Command(WireModel):
    """Collector → agent, on `…/NODE/cmd`; e.g. installer mode `fast`."""

    cmd: Literal["fast"]
    interval_s: float = Field(default=1, gt=0, le=60)
    duration_s: float = Field(default=600, gt=0, le=3600)


Message = Status | Info | Report | BridgeStatus
BRIDGE_STATUS = "bridge_status"
"""the kind `parse_topic` gives `PREFIX/v1/bridge/ID/status`"""
_MODELS: dict[str, type[Status] | type[Info] | type[Report] | type[BridgeStatus]] = {
    "status": Status,
    "info": Info,
    "report": Report,
    BRIDGE_STATUS: BridgeStatus,
}
_NODE_RE = re.compile(NODE_ID_RE)


class Rejected(Exception):
    """A message that does not follow the contract; `reason` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def topic_for(prefix: str, node: str, kind: str) -> str:
    """The topic of one node's message of `kind` (status, info, report, cmd)."""
    return f"{prefix}/v1/node/{node}/{kind}"


def parse_topic(prefix: str, topic: str) -> tuple[str, str]:
    """Split `PREFIX/v1/node/NODE/KIND` into (node, kind) and `PREFIX/v1/bridge/ID/status`
    into (ID, BRIDGE_STATUS); raise Rejected for any other topic."""
    head = f"{prefix}/v1/"
    if not topic.startswith(head):
        raise Rejected("topic", f"not under {head}node/ or {head}bridge/: {topic[:200]!r}")
    rest = topic[len(head) :].split("/")
    if len(rest) != 3 or not _NODE_RE.match(rest[1]):
        raise Rejected("topic", f"unexpected topic {topic[:200]!r}")
    scope, ident, kind = rest
    if scope == "node" and kind in MESSAGE_KINDS:
        who = "agent"
    elif scope == "bridge" and kind == "status":
        who, kind = "bridge", BRIDGE_STATUS
    else:
        raise Rejected("topic", f"unexpected topic {topic[:200]!r}")
    if looks_like_address(ident):
        raise Rejected("node_id", f"{scope} id {ident!r} holds a MAC or IP address, and "
                       f"{scope} ids are public: give the {who} another id")
    return ident, kind


def decode(prefix: str, topic: str, payload: bytes) -> Message:
    """Turn one MQTT message into a validated model, or raise Rejected with the reason."""
    ident, kind = parse_topic(prefix, topic)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected("oversize", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        # one pass in pydantic-core: parsing and validation together (the hot path)
        message = _MODELS[kind].model_validate_json(payload)
    except ValidationError as exc:
        raise rejection(exc) from None
    if isinstance(message, BridgeStatus):
        if message.bridge != ident:
            raise Rejected("node_mismatch",
                           f"topic bridge {ident!r} != payload bridge {message.bridge!r}")
    elif message.node != ident:
        raise Rejected("node_mismatch", f"topic node {ident!r} != payload node {message.node!r}")
    return message


def rejection(exc: ValidationError) -> Rejected:
    """The Rejected (reason and detail) for a payload the models refused."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return Rejected("json", first["msg"][:200])
    for err in errors:
        if err["loc"] == ("v",):
            return Rejected("version", f"unsupported or missing version: {err['msg']}")
    where = ".".join(str(p) for p in first["loc"]) or "(payload)"
    return Rejected("schema", f"{where}: {first['msg']}"[:300])

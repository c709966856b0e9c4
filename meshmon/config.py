"""The collector's TOML configuration, checked once at start-up.

Every section is a strict pydantic model with `extra="forbid"`: a typo or a value of the
wrong type (`port = "1883"`, `coverage_radius_m = true`) is an error that names its TOML
path and line, and an unknown key gets the closest known one as a suggestion. Integers are
accepted where a number with a fraction is expected. `config.example.toml` shows every key
with its default.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from meshmon.config_errors import (
    ConfigError,
    KeyProblem,
    located_problems,
    suggestion,
    syntax_problem,
)


class Section(BaseModel):
    # strict: TOML has types, so "1883" is a mistake to point at, not a number to guess
    model_config = ConfigDict(extra="forbid", strict=True)


class EmbeddedBrokerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=0, le=65535)
    password_file: str = ""
    """`user:hash[:role[:nodes]]` lines (`meshmon passwd`; docs/security.md): each user is
    held to its role's topics. Empty: no logins (anonymous clients only). Not
    mosquitto_passwd's format (`$7$`), which the embedded broker cannot verify."""
    allow_anonymous: bool | Literal["auto"] = "auto"
    """clients without a user name: "auto" = allowed only on a loopback `host` without a
    password file; true = allowed anywhere (they may publish as any node); false = never"""


def is_loopback(host: str) -> bool:
    """Whether a listener on `host` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every interface), "0.0.0.0"-like names, other host names


def anonymous_allowed(mqtt: MqttConfig) -> bool:
    """Whether the embedded broker lets clients in without a user name."""
    embedded = mqtt.embedded
    if embedded.allow_anonymous != "auto":
        return embedded.allow_anonymous is True
    return not embedded.password_file and is_loopback(embedded.host)


class MqttConfig(Section):
    broker: Literal["embedded", "external"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: str = ""
    tls_insecure: bool = False
    client_id: str = ""
    persistent_session: bool = True
    """keep the subscription at the broker while the collector restarts (QoS 1 messages wait)"""
    topic_prefix: str = Field(default="meshmon", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    queue_max: int = Field(default=100_000, ge=100)
    control_username: str = ""
    """login of the control connection (status and info, read ahead of the reports); empty:
    the same as `username`. Give it a login of its own where the broker makes the client id
    the user name (Mosquitto's use_username_as_clientid)"""
    control_password: str = ""
    session_expiry_s: int = Field(default=7 * 86_400, ge=0, le=0xFFFFFFFF)
    """MQTT 5: how long the broker keeps a persistent session (and queues QoS 1 messages)
    after the collector disconnects"""
    embedded: EmbeddedBrokerConfig = EmbeddedBrokerConfig()

    @model_validator(mode="after")
    def _collector_login(self) -> MqttConfig:
        embedded = self.embedded
        if self.broker != "embedded":
            return self
        if embedded.password_file and not self.username:
            raise KeyProblem(
                ("username",),
                "the collector logs in to its own embedded broker too: with "
                "embedded.password_file set, give mqtt.username and mqtt.password "
                "of a user in that file")
        if not embedded.password_file and not anonymous_allowed(self):
            key = "allow_anonymous" if embedded.allow_anonymous is False else "host"
            where = ("allow_anonymous = false" if key == "allow_anonymous"
                     else f"embedded.host = {embedded.host!r} is not a loopback address")
            raise KeyProblem(("embedded", key),
                f"nobody could log in to the embedded broker: {where} and there is no "
                "embedded.password_file. Give one (`meshmon passwd FILE USER`, "
                "docs/security.md), or set embedded.allow_anonymous = true to let anyone "
                "who reaches the port publish as any node")
        return self


class RolesConfig(Section):
    """`meshmon serve --role core|writer`: writers share the time series through an MQTT 5
    shared subscription (docs/scaling.md)."""

    share_group: str = Field(default="meshmon-writers", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """the writers' group: they subscribe to `$share/GROUP/PREFIX/v1/node/+/report`"""
    stand_in: bool = True
    """a writer takes over the session of a writer of its group that died (its last will
    on `PREFIX/v1/writer/ID/status`), so the dead one's share is written without waiting
    for its restart; off, that share waits in the broker until it is back"""
    writer_nice: int = Field(default=10, ge=0, le=19)
    """how much a writer lowers its CPU priority at start (`nice`; 0 keeps it): on a host
    it shares with the core, the core's alerts and pages go first when the cores are
    busy, and a writer's backlog waits in the broker meanwhile (docs/scaling.md)"""


class HttpConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    admin_token: str = ""
    """token for /admin and the maintainer APIs; empty = generated once and kept in
    `admin-token` next to the SQLite file"""
    session_lifetime_h: float = Field(default=168, gt=0, le=24 * 366)
    """how long a sign-in to /admin lasts (hours); signing out, or a new admin_token, ends
    sessions sooner"""


class StorageConfig(Section):
    path: str = "meshmon.sqlite"
    sample_retention_h: float = Field(default=48, gt=0)
    """raw samples (every report) are kept this long (hours)"""
    history_5min_days: float = Field(default=30, gt=0)
    """5-minute min/mean/max of every node and link metric are kept this long (days)"""
    history_1h_days: float = Field(default=366, gt=0)
    """hourly min/mean/max are kept this long (days)"""
    flush_interval_s: float = Field(default=0.2, gt=0, le=60)
    """the least time between the starts of two writes: a write starts as soon as something
    is queued and the previous one ended, but not sooner (a report waits at most this long
    plus one write while the store keeps up; batches grow with the load)"""
    queue_max: int = Field(default=200_000, ge=100)
    """reports waiting for the next write, and samples waiting while the file cannot be
    written; beyond it the oldest are dropped and counted"""
    max_clock_skew_s: float = Field(default=600, gt=0)
    """a sample whose agent `ts` is further than this from its arrival is stored at arrival
    time (SQLite and InfluxDB); such reports are counted as `clock_fallbacks`"""
    worker: Literal["thread", "process"] = "thread"
    """where the store's SQLite work runs: a thread of the collector (one process), or a
    process of its own (the collector then uses a second core: for a machine with one to
    spare, ~100 MB more; docs/scaling.md)"""


class InfluxConfig(Section):
    enabled: bool = False
    api: Literal["v1", "v2"] = "v2"
    url: str = "http://127.0.0.1:8086"
    token: str = ""
    org: str = ""
    bucket: str = "meshmon"
    database: str = "meshmon"
    username: str = ""
    password: str = ""
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=0.2, gt=0, le=60)
    """the least time between the starts of two writes (as `[storage] flush_interval_s`;
    a full `batch_size` goes at once)"""
    buffer_max_points: int = Field(default=1_000_000, ge=1000)
    timeout_s: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _api_needs(self) -> InfluxConfig:
        if self.enabled and not self.url.startswith(("http://", "https://")):
            raise KeyProblem(("url",), "url must start with http:// or https://")
        return self


class TopologyConfig(Section):
    offline_after_intervals: float = Field(default=3, gt=1)
    """a node with no report for this many of its intervals is offline"""
    offline_after_s: float = Field(default=0, ge=0)
    """when > 0: a node with no report for this many seconds is offline, whatever its
    interval (overrides offline_after_intervals)"""
    link_timeout_s: float = Field(default=300, gt=0)
    """a link neither end has reported for this long is removed"""


class PrivacyConfig(Section):
    coarsen_grid_deg: float = Field(default=0.01, ge=0, le=10)
    """non-public nodes are shown snapped to this grid (0 = hide them from the map)"""


class MapConfig(Section):
    """The public map (`/`)."""

    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    """slippy-map tiles; empty = no background (the map still works offline)"""
    attribution: str = "&copy; OpenStreetMap contributors"
    max_zoom: int = Field(default=19, ge=1, le=22)
    refresh_s: float = Field(default=5, ge=1, le=600)
    """how often an open map fetches fresh data"""
    coverage_radius_m: float = Field(default=150, gt=0, le=50_000)
    """radius drawn around an online node without sector antennas"""


class PlannedLink(Section):
    """A link budget: the signal the planners expect on src → dst."""

    src: str
    dst: str
    signal_dbm: float = Field(ge=-120, le=0)


class InstallerConfig(Section):
    """The installer view (`/install/NODE`)."""

    good_signal_dbm: float = Field(default=-65, ge=-120, le=0)
    """at or above: good"""
    marginal_signal_dbm: float = Field(default=-75, ge=-120, le=0)
    """at or above (and below good): fair, as the map says; below: poor"""
    fast_interval_s: float = Field(default=1, ge=0.5, le=60)
    """report interval asked of the agent while the page is open (`fast` command)"""
    fast_duration_s: float = Field(default=120, ge=10, le=3600)
    """how long each `fast` lasts; the page renews it while it stays open"""
    planned: list[PlannedLink] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> InstallerConfig:
        if self.marginal_signal_dbm > self.good_signal_dbm:
            raise KeyProblem(("marginal_signal_dbm",),
                             "marginal_signal_dbm must not be above good_signal_dbm")
        return self


class HealthConfig(Section):
    """When a link counts as degraded."""

    signal_dbm: float = Field(default=-80, ge=-120, le=0)
    """degraded below this signal (dBm)"""
    snr_db: float = Field(default=15, ge=0, le=100)
    """degraded below this SNR (dB)"""
    tq: int = Field(default=100, ge=0, le=255)
    """degraded below this batman TQ (0–255)"""
    etx: float = Field(default=4.0, ge=1)
    """degraded above this ETX"""
    baseline_drop_db: float = Field(default=10, ge=0)
    """degraded when the signal is this far below the link's own baseline (0 = off)"""
    baseline_window_h: float = Field(default=24, gt=0, le=24 * 14)
    """the baseline is the median of the link's hourly mean signals over this window"""
    baseline_min_h: float = Field(default=3, ge=1)
    """hours of history a link needs before its baseline is used"""
    hysteresis_db: float = Field(default=3, ge=0)
    """signal/SNR must be this much better than the threshold to count as recovered"""
    hysteresis_tq: int = Field(default=15, ge=0)
    hysteresis_etx: float = Field(default=0.5, ge=0)
    samples_to_change: int = Field(default=3, ge=1, le=100)
    """consecutive samples on the other side of a threshold before a link changes state"""


class AlertsConfig(Section):
    """Noise control for alerts; see docs/alerts.md."""

    group_wait_s: float = Field(default=0.5, ge=0, le=600)
    """nodes failing within this time are grouped into one outage before it fires"""
    hold_down_s: float = Field(default=0, ge=0, le=86_400)
    """an outage (or a silent bridge) must last this long before it fires (0: a last will
    fires at once)"""
    flap_changes: int = Field(default=3, ge=2, le=100)
    """this many failures of a node's or link's own within flap_window_s make it flapping
    (being cut off behind another failure does not count)"""
    flap_window_s: float = Field(default=600, gt=0)
    """and it stops flapping after this long without a change"""
    reminder_interval_s: float = Field(default=43_200, ge=0)
    """repeat a firing alert this often (0 = never)"""
    weak_points: bool = True
    """alert when a new single point of failure appears (after the first analysis)"""
    retry_max_s: float = Field(default=300, gt=0)
    """failed deliveries are retried with exponential backoff up to this interval"""
    give_up_after_h: float = Field(default=72, gt=0)
    """an undeliverable notification is dropped (counted, logged) after this long"""
    owner_notifier: str = ""
    """name of an email notifier for opt-in notices to node owners (info.owner.notify)"""
    owner_events: list[str] = Field(default_factory=lambda: ["outage", "recovery"])


EVENT_NAMES = ("outage", "recovery", "flapping", "silent", "degraded", "weak_point",
               "bridge_silent")
EventName = Literal["outage", "recovery", "flapping", "silent", "degraded", "weak_point",
                    "bridge_silent"]
Severity = Literal["info", "warning", "critical"]


class NotifierConfig(Section):
    """One `[[notifiers]]` table: a channel alerts are delivered through."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    type: Literal["webhook", "email", "apprise"]
    url: str = ""
    """webhook: the URL to POST to; apprise: one apprise URL (ntfy://, matrix://, tgram://…)"""
    urls: list[str] = Field(default_factory=list)
    """apprise: more URLs"""
    headers: dict[str, str] = Field(default_factory=dict)
    """webhook: extra HTTP headers (e.g. Authorization)"""
    timeout_s: float = Field(default=10, gt=0, le=300)
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password: str = ""
    sender: str = ""
    to: list[str] = Field(default_factory=list)
    max_per_minute: int = Field(default=-1, ge=-1, le=10_000)
    """rate limit; a burst beyond it goes out as one digest. -1 = by type (webhook 0 =
    unlimited, email and apprise 6)"""

    @model_validator(mode="after")
    def _needs(self) -> NotifierConfig:
        if self.type == "webhook" and not self.url.startswith(("http://", "https://")):
            raise KeyProblem(("url",), "a webhook needs url = \"http(s)://…\"")
        if self.type == "email" and not (self.smtp_host and self.sender and self.to):
            raise ValueError("an email notifier needs smtp_host, sender and to")
        if self.type == "apprise":
            if not (self.url or self.urls):
                raise KeyProblem(("url",), "an apprise notifier needs url or urls")
            import apprise  # only configs with an apprise notifier pay for the import

            if self.url and not apprise.Apprise().add(self.url):
                raise KeyProblem(("url",),
                                 "apprise cannot use url (unknown scheme or missing parts)")
            for i, url in enumerate(self.urls):
                if not apprise.Apprise().add(url):
                    raise KeyProblem(("urls", i), f"apprise cannot use urls[{i}] (unknown "
                                     "scheme or missing parts)")
        return self

    @property
    def rate_per_minute(self) -> int:
        """The effective rate limit (0 = unlimited)."""
        if self.max_per_minute >= 0:
            return self.max_per_minute
        return 0 if self.type == "webhook" else 6


class RouteConfig(Section):
    """One `[[routes]]` table: which alerts go to which notifiers."""

    notifiers: list[str] = Field(min_length=1)
    events: list[EventName] = Field(default_factory=list)
    """empty = every event"""
    nodes: list[str] = Field(default_factory=list)
    """glob patterns on the nodes an alert names (cause and affected); empty = any"""
    tags: list[str] = Field(default_factory=list)
    """any of these info tags on a node the alert names; empty = any"""
    min_severity: Severity = "info"


class Config(Section):
    mqtt: MqttConfig = MqttConfig()
    roles: RolesConfig = RolesConfig()
    http: HttpConfig = HttpConfig()
    storage: StorageConfig = StorageConfig()
    influxdb: InfluxConfig = InfluxConfig()
    topology: TopologyConfig = TopologyConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    map: MapConfig = MapConfig()
    installer: InstallerConfig = InstallerConfig()
    health: HealthConfig = HealthConfig()
    alerts: AlertsConfig = AlertsConfig()
    notifiers: list[NotifierConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _names_resolve(self) -> Config:
        names = [n.name for n in self.notifiers]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise KeyProblem(("notifiers", i, "name"),
                                 f"notifier names must be unique: {name!r} is used twice")
        for i, route in enumerate(self.routes):
            for j, name in enumerate(route.notifiers):
                if name not in names:
                    raise KeyProblem(("routes", i, "notifiers", j),
                                     f"routes[{i}] names unknown notifier {name!r}"
                                     f"{suggestion(name, names)}")
        owner = self.alerts.owner_notifier
        if owner and not any(n.name == owner and n.type == "email" for n in self.notifiers):
            raise KeyProblem(("alerts", "owner_notifier"),
                             f"alerts.owner_notifier {owner!r} is not an email notifier")
        for i, event in enumerate(self.alerts.owner_events):
            if event not in EVENT_NAMES:
                raise KeyProblem(("alerts", "owner_events", i),
                                 f"unknown event {event!r}{suggestion(event, EVENT_NAMES)}")
        return self


def parse(text: str, source: str = "<config>") -> Config:
    """Validate TOML text; raise ConfigError naming the TOML path and line of each problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [syntax_problem(exc)]) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, located_problems(exc, Config, text)) from None


def load(path: str | Path | None) -> Config:
    """Read a config file (None gives the embedded defaults)."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [("(file)", exc.strerror or str(exc))]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), [("(file)", f"not UTF-8 text: {exc.reason}")]) from None
    return parse(text, str(p))

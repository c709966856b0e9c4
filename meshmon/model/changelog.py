"""The core's one change log: what changed, in order, read by each consumer at its own pace.

`Core.apply` and `Core.tick` append entries and return the ones each call appended (its
effects). The health detectors observe each entry as it is appended and the sample and
event sinks take each call's effects at once; every other consumer (the SQLite state
saver, the web documents, the live views, the alert engine) holds a `Cursor` and reads
what was appended since its last read, after each ingest batch and tick. Pure: no
clock, no I/O.

Bounded: entries every cursor has read are dropped when a cursor reads; and the log never
holds more than `capacity` entries: a consumer that falls that far behind loses the
oldest and its next read says `reset` (everything may have changed: rebuild from the
current state). Entries are grouped per call (one `Reported` per report, one `Presence`
for every node one expiry found offline), so the bound counts messages and ticks, not
links or nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

from meshmon.model.state import LinkKey, LinkState

if TYPE_CHECKING:
    from meshmon.model.health.incidents import Change

CAPACITY = 16_384
"""entries kept for a consumer that has not read them (about 60 ingest batches)"""


class Reported(NamedTuple):
    """A report was applied: the node's last report and the samples of `keys` replaced.

    The report itself is not kept here: the sample sinks write it from the `apply` call's
    effects at once, and a log that held ~250 reports until the end of each ingest batch
    freed them cold (measured in `bench/drain.py --profile`: ~16 µs a report)."""

    at: float
    node: str
    dsts: tuple[str | None, ...]
    """the resolved peer node of each `report.links[i]` (None: MAC not known yet, or a
    link back to the node itself)"""
    keys: list[LinkKey]
    """the links the report upserted, in report order"""
    links: list[LinkState]
    """their states, as the report left them (`links[i].key == keys[i]`)"""
    new_links: int
    """how many of `keys` did not exist before (the set of links grew)"""


class InfoChanged(NamedTuple):
    """A node's info was replaced."""

    at: float
    node: str


class Presence(NamedTuple):
    """Nodes came online or went offline."""

    at: float
    nodes: tuple[str, ...]
    online: bool
    why: str
    """`report` (a report from an offline node), `status` (status or last will),
    `timeout` (silent for longer than its offline timeout)"""


class BridgePresence(NamedTuple):
    """A bridge came online or went offline (its status or last will)."""

    at: float
    bridge: str
    online: bool
    nodes: tuple[str, ...]
    """the nodes it speaks for: they wait for it while it is away (`unmonitored`)"""
    known: bool
    """False when this is the first status heard from it (offline before we knew it)"""


class LinksAdded(NamedTuple):
    """Links appeared other than by a report (a MAC resolved, a restart re-keyed them)."""

    at: float
    keys: tuple[LinkKey, ...]


class LinksRemoved(NamedTuple):
    """Links left the topology."""

    at: float
    keys: tuple[LinkKey, ...]
    why: str
    """`expired` (its source stopped reporting it) or `rekeyed` (an unresolved `mac:`
    link got its node; the new key is in a `LinksAdded` right after)"""


class IncidentsChanged(NamedTuple):
    """The health detectors opened, updated, resolved or cancelled incidents."""

    at: float
    changes: tuple[Change, ...]


class Restored(NamedTuple):
    """The whole state was replaced by a saved one (collector start)."""

    at: float


Entry = (Reported | InfoChanged | Presence | BridgePresence | LinksAdded | LinksRemoved
         | IncidentsChanged | Restored)


@dataclass(slots=True)
class Read:
    """What one cursor read: the entries since its last read, in order."""

    entries: Sequence[Entry]
    reset: bool = False
    """entries were lost (the consumer fell behind): rebuild from the current state"""
    lost: int = 0
    """how many entries were lost"""


class ChangeLog:
    """Append-only, bounded; positions are absolute (they keep counting when trimmed)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: list[Entry] = []
        self._first = 0
        """position of `_entries[0]`"""
        self._cursors: list[Cursor] = []
        self.lost = 0
        """entries consumers fell too far behind to read, in total"""

    @property
    def followed(self) -> bool:
        """Whether any consumer holds a cursor."""
        return bool(self._cursors)

    @property
    def end(self) -> int:
        """The position the next entry gets."""
        return self._first + len(self._entries)

    def append(self, entry: Entry) -> None:
        """Add one entry (drops the oldest beyond `capacity`)."""
        entries = self._entries
        entries.append(entry)
        if len(entries) > self.capacity:
            self._drop(len(entries) - self.capacity // 2)

    def since(self, position: int) -> list[Entry]:
        """The entries from `position` on (those still kept)."""
        return self._entries[max(0, position - self._first) :]

    def follow(self) -> Cursor:
        """A new consumer's cursor, at the end (it reads what is appended from now on)."""
        cursor = Cursor(self, self.end)
        self._cursors.append(cursor)
        return cursor

    def trim(self) -> None:
        """Drop what every cursor has read (everything, when nobody follows)."""
        cursors = self._cursors
        done = min(c.position for c in cursors) if cursors else self.end
        if done > self._first:
            self._drop(done - self._first)

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, count: int) -> None:
        del self._entries[:count]
        self._first += count

    def _read(self, cursor: Cursor) -> Read:
        first = self._first
        lost = max(0, first - cursor.position)
        entries = self._entries[cursor.position - first :] if not lost else list(self._entries)
        cursor.position = self.end
        self.trim()
        self.lost += lost
        return Read(entries, reset=lost > 0, lost=lost)


@dataclass(eq=False, slots=True)
class Cursor:
    """One consumer's position in the log."""

    log: ChangeLog
    position: int

    def read(self) -> Read:
        """Everything appended since the last read."""
        return self.log._read(self)

    def skip(self) -> None:
        """Move to the end without reading (nothing to do with what was appended)."""
        self.position = self.log.end
        self.log.trim()

    @property
    def pending(self) -> int:
        """How many entries wait for this cursor."""
        return self.log.end - self.position

    def close(self) -> None:
        """Stop following (the log no longer keeps entries for this cursor)."""
        cursors = self.log._cursors
        if self in cursors:
            cursors.remove(self)
        self.log.trim()


class Follower(Protocol):
    """A consumer of the log that the collector lets catch up after each batch and tick."""

    def catch_up(self) -> None:
        """Read and act on what was appended since the last call."""


@dataclass(slots=True)
class Changes:
    """Which links and nodes a read names: what derived views must refresh."""

    links: set[LinkKey] = field(default_factory=set)
    """links whose sample was replaced, that were added or removed, and both keys of a
    re-keyed one"""
    nodes: set[str] = field(default_factory=set)
    """nodes whose info or report was replaced (online flags and last_seen are not
    noted: they are cheap to read for every node)"""
    link_set: bool = False
    """links were added or removed (not only new samples)"""
    reset: bool = False
    """everything may have changed (state restored, or the reader fell behind)"""

    @classmethod
    def of(cls, read: Read) -> Changes:
        """The changes one read names."""
        out = cls(reset=read.reset)
        links, nodes = out.links, out.nodes
        for entry in read.entries:
            if isinstance(entry, Reported):
                links.update(entry.keys)
                nodes.add(entry.node)
                if entry.new_links:
                    out.link_set = True
            elif isinstance(entry, InfoChanged):
                nodes.add(entry.node)
            elif isinstance(entry, LinksAdded | LinksRemoved):
                links.update(entry.keys)
                out.link_set = True
            elif isinstance(entry, Restored):
                out.reset = True
        return out


def nodes_named(entries: Iterable[Entry]) -> set[str]:
    """Every node an entry is about: reporters and their resolved peers, both ends of
    added or removed links, nodes whose info or presence changed (their bridge's too)."""
    named: set[str] = set()
    for entry in entries:
        if isinstance(entry, Reported):
            named.add(entry.node)
            named.update(d for d in entry.dsts if d is not None)
        elif isinstance(entry, InfoChanged):
            named.add(entry.node)
        elif isinstance(entry, Presence | BridgePresence):
            named.update(entry.nodes)
        elif isinstance(entry, LinksAdded | LinksRemoved):
            for key in entry.keys:
                named.add(key.src)
                named.add(key.peer)
    return named

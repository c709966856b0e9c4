"""The edge to pysnmp: GET, GETNEXT and multi-column GETBULK walks with numeric OIDs.

Every value leaves as a plain Python value (`int`, `bytes`, or an `Oid` tuple for OBJECT
IDENTIFIERs); no pysnmp type goes further. One `SnmpEngine` (one UDP socket) is shared by
every device of a bridge; each device has its own auth data and transport target.

Requests go through pysnmp's command generators (`pysnmp.entity.rfc3413.cmdgen`) with
numeric varbinds, configured once per device by the same LCD helper the high-level API
uses: the high-level calls resolve every OID against the MIB tree on every request, which
cost about a third of the bridge's CPU per device.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pyasn1.type import univ
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch import asyncio as hlapi
from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator
from pysnmp.proto import errind, rfc1902, rfc1905

from meshmon_bridge.sources.snmp.config import SnmpTable
from meshmon_bridge.sources.snmp.walkplan import Cursor, Oid, Subtrees, WalkMemory

Value = int | bytes | Oid
"""INTEGER/Counter/Gauge/TimeTicks → int; OCTET STRING/IpAddress → bytes; OID → Oid"""

RESPONSE_BUDGET = 48
"""varbinds asked for per GETBULK; small enough for one Ethernet frame on most devices"""

_AUTH = {
    "md5": hlapi.usmHMACMD5AuthProtocol,
    "sha": hlapi.usmHMACSHAAuthProtocol,
    "sha224": hlapi.usmHMAC128SHA224AuthProtocol,
    "sha256": hlapi.usmHMAC192SHA256AuthProtocol,
    "sha384": hlapi.usmHMAC256SHA384AuthProtocol,
    "sha512": hlapi.usmHMAC384SHA512AuthProtocol,
}
_PRIV = {
    "des": hlapi.usmDESPrivProtocol,
    "3des": hlapi.usm3DESEDEPrivProtocol,
    "aes": hlapi.usmAesCfb128Protocol,
    "aes128": hlapi.usmAesCfb128Protocol,
    "aes192": hlapi.usmAesCfb192Protocol,
    "aes256": hlapi.usmAesCfb256Protocol,
}
_LCD = CommandGeneratorLcdConfigurator()
_GET = cmdgen.GetCommandGenerator()
_NEXT = cmdgen.NextCommandGenerator()
_BULK = cmdgen.BulkCommandGenerator()
_NULL = rfc1902.Null("")
_ABSENT = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView, rfc1902.Null)


class SnmpError(Exception):
    """A request failed as a whole (timeout, authentication, error status)."""


class SnmpTimeout(SnmpError):
    """The device did not answer within timeout × (retries + 1)."""


def oid(text: str) -> Oid:
    """`"1.3.6.1.2.1.1.3.0"` (a leading dot is fine) as a tuple of ints."""
    return tuple(int(part) for part in text.strip(".").split("."))


def plain_value(raw: Any) -> Value | None:
    """One pysnmp value as a plain one; None for "no such object/instance", end of MIB, Null."""
    if isinstance(raw, _ABSENT):
        return None
    # pyasn1's base types: every SMI type (Counter32, Gauge32, IpAddress, …) derives from them
    if isinstance(raw, univ.ObjectIdentifier):
        return tuple(raw)
    if isinstance(raw, rfc1902.Bits):
        return None  # nothing a profile reads
    if isinstance(raw, univ.OctetString):
        return bytes(raw)
    if isinstance(raw, univ.Integer):
        return int(raw)
    return None


def _before(name: Oid) -> Oid:
    """The OID a GETNEXT asks for to get `name` itself: `x.0` → `x` (nothing lies between);
    `x.n` → `x.(n-1)` (only objects under `x.(n-1)` could lie between)."""
    if len(name) < 2:
        return name
    return name[:-1] if name[-1] == 0 else (*name[:-1], name[-1] - 1)


def _take_scalar(asked: Oid, name: Oid, raw: Any, out: dict[Oid, Value],
                 unresolved: list[Oid]) -> None:
    """File a GETNEXT answer for scalar `asked`: its value when the answer is `asked`; absent
    when the answer lies beyond it; else (an object in between, or an agent that did not
    move forward) `asked` goes to `unresolved`, for a GET."""
    if name == asked:
        value = plain_value(raw)
        if value is not None:
            out[name] = value
    elif name < asked and not isinstance(raw, rfc1905.EndOfMibView):
        unresolved.append(asked)


@dataclass
class SnmpClient:
    """Requests to one device."""

    engine: hlapi.SnmpEngine
    target_name: str
    context: hlapi.ContextData
    max_repetitions: int = 24
    requests: int = 0
    memory: WalkMemory = field(default_factory=WalkMemory)
    """what the last walk found (plans the next one)"""

    @classmethod
    async def open(cls, engine: hlapi.SnmpEngine, table: SnmpTable) -> SnmpClient:
        """A client for one `[[snmp]]` table (resolves the host name once)."""
        target = await hlapi.UdpTransportTarget.create(
            (table.host, table.port), timeout=table.timeout_s, retries=table.retries)
        context = hlapi.ContextData(contextName=table.v3.context if table.v3 else "")
        target_name, _ = _LCD.configure(engine, auth_data(table), target, context.contextName)
        return cls(engine, target_name, context, table.max_repetitions)

    async def _send(self, generator: Any, what: str, oids: list[Oid], *bulk: int
                    ) -> list[tuple[Oid, Any]]:
        """One request; the response's varbinds as (OID tuple, raw value)."""
        future: asyncio.Future[tuple[Any, Any, Any, Any]] = (
            asyncio.get_running_loop().create_future())

        def done(engine: Any, handle: Any, error_indication: Any, error_status: Any,
                 error_index: Any, varbinds: Any, context: Any) -> None:
            if not future.done():
                future.set_result((error_indication, error_status, error_index, varbinds))

        self.requests += 1
        varbinds = [(rfc1902.ObjectName(o), _NULL) for o in oids]
        generator.send_varbinds(self.engine, self.target_name, self.context.contextEngineId,
                                self.context.contextName, *bulk, varbinds, done)
        error_indication, error_status, error_index, answer = await future
        if error_indication:
            if isinstance(error_indication, errind.RequestTimedOut):
                raise SnmpTimeout(f"no answer to {what}")
            raise SnmpError(f"{what}: {error_indication}")
        if error_status and int(error_status):
            raise SnmpError(f"{what}: {error_status.prettyPrint()} at varbind {error_index}")
        return [(tuple(name), raw) for name, raw in answer]

    async def get(self, oids: list[Oid]) -> dict[Oid, Value]:
        """GET in requests of at most RESPONSE_BUDGET varbinds; absent OIDs are left out."""
        out: dict[Oid, Value] = {}
        for start in range(0, len(oids), RESPONSE_BUDGET):
            for name, raw in await self._send(_GET, "GET", oids[start:start + RESPONSE_BUDGET]):
                value = plain_value(raw)
                if value is not None:
                    out[name] = value
        return out

    async def probe(self, scalars: list[Oid], roots: list[Oid]
                    ) -> tuple[dict[Oid, Value], set[Oid]]:
        """Scalars, and the roots under which the device has at least one object: one
        GETNEXT for both (a discovery costs one request)."""
        values: dict[Oid, Value] = {}
        found: set[Oid] = set()
        unresolved: list[Oid] = []
        queries = [(s, True) for s in scalars] + [(r, False) for r in roots]
        for start in range(0, len(queries), RESPONSE_BUDGET):
            chunk = queries[start:start + RESPONSE_BUDGET]
            answer = await self._send(_NEXT, "GETNEXT", [
                _before(o) if scalar else o for o, scalar in chunk])
            for (asked, scalar), (name, raw) in zip(chunk, answer, strict=False):
                if scalar:
                    _take_scalar(asked, name, raw, values, unresolved)
                elif plain_value(raw) is not None and name[:len(asked)] == asked:
                    found.add(asked)
        values.update(await self.get(unresolved) if unresolved else {})
        return values, found

    async def walk(self, roots: list[Oid], scalars: list[Oid] | None = None
                   ) -> dict[Oid, Value]:
        """`scalars` and every object under each root, in as few GETBULKs as fit.

        Each request carries the scalars still to read as non-repeaters (a GETNEXT of the
        OID just before each, see `_before`) and the walk's cursors as repeaters, planned
        from what the last walk found (`walkplan`); a response stays within RESPONSE_BUDGET
        varbinds. A cursor ends past its part, at the first OID outside its roots, at end
        of MIB, or when the agent stops increasing (a broken agent must not loop us
        forever).
        """
        roots = list(dict.fromkeys(roots))
        tree = Subtrees(roots)
        queue, reps = self.memory.plan(tree, roots, len(scalars or ()), RESPONSE_BUDGET,
                                       self.max_repetitions)
        pending = list(dict.fromkeys(scalars or ()))
        out: dict[Oid, Value] = {}
        unresolved: list[Oid] = []
        found: dict[Oid, list[Oid]] = {root: [] for root in roots}
        after: dict[Oid, Oid] = {}
        while pending or queue:
            asked, active, repetitions = self._pack(pending, queue, reps)
            answer = await self._send(
                _BULK, "GETBULK", [_before(s) for s in asked] + [c.at for c in active],
                len(asked), repetitions)
            if not answer:
                break  # nothing at all: end here rather than ask again forever
            for scalar, (name, raw) in zip(asked, answer, strict=False):
                _take_scalar(scalar, name, raw, out, unresolved)
            # scalars the agent cut from its answer are asked again
            pending = pending[min(len(answer), len(asked)):]
            for position, (name, raw) in enumerate(answer[len(asked):]):
                cursor = active[position % len(active)]
                if cursor.done:
                    continue
                if isinstance(raw, rfc1905.EndOfMibView) or name <= cursor.at:
                    cursor.done = True
                    continue
                after[cursor.at] = name
                root = tree.root_of(name)
                if root is not None:
                    found[root].append(name)
                    value = plain_value(raw)
                    if value is not None:
                        out[name] = value
                cursor.step(name, root)
            # a cursor whose slot the agent cut from its answer goes on in the next request
            queue = [c for c in queue if not c.done]
        self.memory.learn(found, after)
        if unresolved:
            out.update(await self.get(unresolved))
        return out

    def _pack(self, pending: list[Oid], queue: list[Cursor], reps: int | None
              ) -> tuple[list[Oid], list[Cursor], int]:
        """The scalars and cursors of the next request, and its repetitions."""
        if not queue:
            return pending[:RESPONSE_BUDGET], [], 0
        if reps is None:  # nothing known yet: one varbind per cursor, the budget shared out
            active = queue[:RESPONSE_BUDGET]
            asked = pending[:RESPONSE_BUDGET - len(active)]
            share = (RESPONSE_BUDGET - len(asked)) // len(active)
            return asked, active, max(1, min(self.max_repetitions, share))
        asked = pending[:max(0, RESPONSE_BUDGET - reps)]
        return asked, queue[:max(1, (RESPONSE_BUDGET - len(asked)) // reps)], reps


def auth_data(table: SnmpTable) -> hlapi.CommunityData | hlapi.UsmUserData:
    """v2c community or v3 user data for a table."""
    v3 = table.v3
    if v3 is None:
        return hlapi.CommunityData(table.community or "public", mpModel=1)
    return hlapi.UsmUserData(
        v3.user,
        authKey=v3.auth_key or None,
        privKey=v3.priv_key or None,
        authProtocol=_AUTH[v3.auth_protocol] if v3.auth_protocol else hlapi.usmNoAuthProtocol,
        privProtocol=_PRIV[v3.priv_protocol] if v3.priv_protocol else hlapi.usmNoPrivProtocol,
    )

"""MQTT 3.1.1 and 5 packets a subscribing client sends and receives, encoded and parsed.

Pure: bytes in, bytes out. Only what the collector needs: CONNECT/CONNACK, SUBSCRIBE/
SUBACK, UNSUBSCRIBE/UNSUBACK, PUBLISH both ways (QoS 0 and 1), PUBACK, PINGREQ/PINGRESP,
DISCONNECT. Incoming PUBLISH packets are parsed many at a time from one buffer
(`parse_packets`): the hot path of ingest, kept to a few slicing operations per message
(paho's per-packet Python machinery cost ~45 µs a message, this ~2 µs; bench/README.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MQTT_311 = 4
MQTT_5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 0x82, 0x90, 0xC0, 0xD0, 0xE0
UNSUBSCRIBE, UNSUBACK = 0xA2, 0xB0
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"

# MQTT 5 property identifiers used here, and the wire type of every property (to skip them)
SESSION_EXPIRY_INTERVAL = 0x11
RECEIVE_MAXIMUM = 0x21
REASON_STRING = 0x1F
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A
_BYTE, _TWO, _FOUR, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
_PROPERTY_TYPES = {
    0x01: _BYTE, 0x02: _FOUR, 0x03: _UTF8, 0x08: _UTF8, 0x09: _BINARY, 0x0B: _VARINT,
    0x11: _FOUR, 0x12: _UTF8, 0x13: _TWO, 0x15: _UTF8, 0x16: _BINARY, 0x17: _BYTE,
    0x18: _FOUR, 0x19: _BYTE, 0x1A: _UTF8, 0x1C: _UTF8, 0x1F: _UTF8, 0x21: _TWO,
    0x22: _TWO, 0x23: _TWO, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _FOUR,
    0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}  # fmt: skip

CONNACK_311_REASONS = {
    1: "Unacceptable protocol version", 2: "Identifier rejected", 3: "Server unavailable",
    4: "Bad user name or password", 5: "Not authorized",
}  # fmt: skip
REASONS_5 = {
    0x80: "Unspecified error", 0x81: "Malformed packet", 0x82: "Protocol error",
    0x83: "Implementation specific error", 0x84: "Unsupported protocol version",
    0x85: "Client identifier not valid", 0x86: "Bad user name or password",
    0x87: "Not authorized", 0x88: "Server unavailable", 0x89: "Server busy", 0x8A: "Banned",
    0x8B: "Server shutting down", 0x8C: "Bad authentication method",
    0x8D: "Keep alive timeout", 0x8E: "Session taken over", 0x8F: "Topic filter invalid",
    0x90: "Topic name invalid", 0x93: "Receive maximum exceeded", 0x95: "Packet too large",
    0x97: "Quota exceeded", 0x98: "Administrative action", 0x99: "Payload format invalid",
    0x9E: "Shared subscriptions not supported", 0x9F: "Connection rate exceeded",
    0xA2: "Wildcard subscriptions not supported",
}  # fmt: skip
UNSUPPORTED_VERSION = ("Unacceptable protocol version", "Unsupported protocol version")


class ProtocolError(Exception):
    """The peer sent something that is not MQTT (the connection is closed)."""


def varint(n: int) -> bytes:
    """MQTT's variable byte integer (remaining length, property lengths)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


@dataclass(frozen=True, slots=True)
class Will:
    """What the broker publishes for us when our connection ends without a DISCONNECT."""

    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """What one CONNECT asks for."""

    client_id: str
    version: int = MQTT_5
    clean_start: bool = True
    keepalive_s: int = 30
    username: str = ""
    password: str = ""
    session_expiry_s: int = 0
    """MQTT 5: how long the broker keeps the session after a disconnect (0: not at all)"""
    receive_maximum: int = 65535
    """MQTT 5: QoS 1 messages the broker may send before we acknowledge them"""
    will: Will | None = None


def connect_packet(req: ConnectRequest) -> bytes:
    """A CONNECT packet (3.1.1 or 5)."""
    flags = 0x02 if req.clean_start else 0
    will = req.will
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if req.username:
        flags |= 0x80
        if req.password:
            flags |= 0x40
    body = bytearray(_string("MQTT"))
    body += bytes((req.version, flags)) + struct.pack("!H", req.keepalive_s)
    if req.version == MQTT_5:
        props = struct.pack("!BHBI", RECEIVE_MAXIMUM, req.receive_maximum,
                            SESSION_EXPIRY_INTERVAL, req.session_expiry_s)
        body += varint(len(props)) + props
    body += _string(req.client_id)
    if will is not None:
        if req.version == MQTT_5:
            body += b"\x00"  # no will properties
        body += _string(will.topic) + _string(will.payload)
    if req.username:
        body += _string(req.username)
        if req.password:
            body += _string(req.password)
    return _packet(CONNECT, bytes(body))


def subscribe_packet(packet_id: int, filters: list[tuple[str, int]], version: int) -> bytes:
    """A SUBSCRIBE packet for (topic filter, maximum QoS) pairs; MQTT 5 asks for retained
    messages only where the subscription is new (retain handling 1)."""
    body = bytearray(struct.pack("!H", packet_id))
    options = 0
    if version == MQTT_5:
        body += b"\x00"  # no properties
        options = 0x10
    for topic, qos in filters:
        body += _string(topic) + bytes((qos | options,))
    return _packet(SUBSCRIBE, bytes(body))


def unsubscribe_packet(packet_id: int, filters: list[str], version: int) -> bytes:
    """An UNSUBSCRIBE packet for these topic filters."""
    body = bytearray(struct.pack("!H", packet_id))
    if version == MQTT_5:
        body += b"\x00"  # no properties
    for topic in filters:
        body += _string(topic)
    return _packet(UNSUBSCRIBE, bytes(body))


def publish_packet(topic: str, payload: bytes, qos: int, retain: bool, packet_id: int,
                   version: int, dup: bool = False) -> bytes:
    """An outgoing PUBLISH packet (`dup`: sent again, it may have arrived before)."""
    body = bytearray(_string(topic))
    if qos:
        body += struct.pack("!H", packet_id)
    if version == MQTT_5:
        body += b"\x00"
    body += payload
    return _packet(PUBLISH | (0x08 if dup else 0) | (qos << 1) | int(retain), bytes(body))


def disconnect_packet(version: int, end_session: bool) -> bytes:
    """A normal DISCONNECT; MQTT 5 with `end_session` also ends the session (session
    expiry 0): the broker forgets the subscriptions instead of queueing for them."""
    if version == MQTT_5 and end_session:
        props = bytes((SESSION_EXPIRY_INTERVAL,)) + (0).to_bytes(4, "big")
        return _packet(DISCONNECT, b"\x00" + varint(len(props)) + props)
    return DISCONNECT_PACKET


def pubacks(packet_ids: list[int]) -> bytes:
    """PUBACKs (success) for these packet ids, in order, as one write."""
    return b"".join(b"\x40\x02" + pid.to_bytes(2, "big") for pid in packet_ids)


@dataclass(slots=True)
class Connack:
    """The broker's answer to CONNECT."""

    session_present: bool
    reason: str
    """"Success" or why the broker refused"""
    properties: dict[int, object] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.reason == "Success"


@dataclass(slots=True)
class Packet:
    """A control packet other than PUBLISH: type (first byte's high nibble), body."""

    kind: int
    flags: int
    body: bytes


Message = tuple[str, bytes, int, bool]
"""An incoming PUBLISH: (topic, payload, packet id — 0 for QoS 0, DUP: sent again)."""


def parse_packets(buf: bytearray, version: int, messages: list[Message],
                  others: list[Packet]) -> int:
    """Parse the complete packets at the start of `buf`: PUBLISH packets go to `messages`,
    the others to `others`. Returns how many bytes were used (a partial packet stays)."""
    pos = 0
    end_of_data = len(buf)
    v5 = version == MQTT_5
    append = messages.append
    while end_of_data - pos >= 2:
        first = buf[pos]
        length = 0
        shift = 0
        p = pos + 1
        while True:
            if p >= end_of_data:
                return pos
            byte = buf[p]
            p += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("remaining length longer than 4 bytes")
        end = p + length
        if end > end_of_data:
            return pos
        if first & 0xF0 == PUBLISH:
            if length < 2:
                raise ProtocolError("PUBLISH without a topic")
            tlen = (buf[p] << 8) | buf[p + 1]
            q = p + 2 + tlen
            topic = buf[p + 2 : q].decode("utf-8", "replace")
            packet_id = 0
            if first & 0x06:
                packet_id = (buf[q] << 8) | buf[q + 1]
                q += 2
            if v5:
                plen, q = _read_varint(buf, q)
                q += plen
            if q > end:
                raise ProtocolError("PUBLISH shorter than its header")
            append((topic, bytes(buf[q:end]), packet_id, first & 0x08 != 0))
        else:
            others.append(Packet(first & 0xF0, first & 0x0F, bytes(buf[p:end])))
        pos = end
    return pos


def _read_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ProtocolError("variable byte integer longer than 4 bytes")


def parse_properties(body: bytes, pos: int) -> tuple[dict[int, object], int]:
    """MQTT 5 properties at `pos`: ({identifier: value}, position after them)."""
    length, pos = _read_varint(body, pos)
    end = pos + length
    props: dict[int, object] = {}
    while pos < end:
        ident = body[pos]
        pos += 1
        kind = _PROPERTY_TYPES.get(ident)
        value: object
        if kind == _BYTE:
            value, pos = body[pos], pos + 1
        elif kind == _TWO:
            value, pos = int.from_bytes(body[pos : pos + 2], "big"), pos + 2
        elif kind == _FOUR:
            value, pos = int.from_bytes(body[pos : pos + 4], "big"), pos + 4
        elif kind == _VARINT:
            value, pos = _read_varint(body, pos)
        elif kind in (_UTF8, _BINARY):
            n = int.from_bytes(body[pos : pos + 2], "big")
            raw = body[pos + 2 : pos + 2 + n]
            value, pos = (raw.decode("utf-8", "replace") if kind == _UTF8 else raw), pos + 2 + n
        elif kind == _PAIR:
            for _ in range(2):
                n = int.from_bytes(body[pos : pos + 2], "big")
                pos += 2 + n
            continue
        else:
            raise ProtocolError(f"unknown MQTT 5 property 0x{ident:02x}")
        props[ident] = value
    if pos != end:
        raise ProtocolError("MQTT 5 properties overrun their length")
    return props, end


def parse_connack(body: bytes, version: int) -> Connack:
    """A CONNACK body."""
    if len(body) < 2:
        raise ProtocolError("CONNACK too short")
    session_present = bool(body[0] & 1)
    code = body[1]
    if version == MQTT_5:
        props, _ = parse_properties(body, 2) if len(body) > 2 else ({}, 2)
        reason = "Success" if code == 0 else REASONS_5.get(code, f"reason code 0x{code:02x}")
        return Connack(session_present, reason, props)
    reason = "Success" if code == 0 else CONNACK_311_REASONS.get(code, f"return code {code}")
    return Connack(session_present, reason)


def parse_suback(body: bytes, version: int) -> tuple[int, list[int]]:
    """A SUBACK body: (packet id, granted QoS or failure code per filter)."""
    packet_id = int.from_bytes(body[:2], "big")
    pos = 2
    if version == MQTT_5:
        _, pos = parse_properties(body, pos)
    return packet_id, list(body[pos:])


def reason_text(code: int) -> str:
    """The name of a reason code (SUBACK, DISCONNECT)."""
    return REASONS_5.get(code, f"0x{code:02x}")


def parse_disconnect(body: bytes) -> str:
    """Why an MQTT 5 broker disconnected us (the reason code, and its reason string)."""
    if not body:
        return "normal disconnection"
    reason = reason_text(body[0]) if body[0] else "normal disconnection"
    if len(body) > 1:
        props, _ = parse_properties(body, 1)
        if REASON_STRING in props:
            reason += f" ({props[REASON_STRING]})"
    return reason

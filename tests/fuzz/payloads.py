"""Hypothesis strategies for MQTT traffic: topics with odd node ids and kinds, random bytes,
and real payloads (made by the real agent from real captures, `tests/data/wire/`) with
mutated fields: wrong types, values out of range, NaN/Infinity literals, huge numbers,
huge arrays, deep nesting, duplicate keys, unicode, lone surrogates, MAC/IP node ids.

JSON that `json.dumps` cannot write (duplicate keys, `NaN`, `1e999`, invalid UTF-8) is
spelled with `Token` and `Pairs` and written by `render`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from meshmon.model.wire import MESSAGE_KINDS, NODE_ID_RE

PREFIX = "meshmon"
DATA = Path(__file__).parents[1] / "data" / "wire"
BASES: dict[str, dict[str, Any]] = {
    kind: json.loads((DATA / f"{kind}-lr-test-1.json").read_text()) for kind in MESSAGE_KINDS
}
"""one real payload per message kind (status, info, report) of node `lr-test-1`"""

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Token:
    """A raw piece of JSON text, written as it is (`NaN`, `1e999`, `[[[[…]]]]`)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object that may repeat a key (the parser keeps one of them)."""

    items: tuple[tuple[str, Any], ...]


def render(value: Any, ascii_only: bool = True) -> str:
    """JSON text of a tree of dicts, lists, scalars, `Token`s and `Pairs`."""
    if isinstance(value, Token):
        return value.text
    if isinstance(value, Pairs):
        items = value.items
    elif isinstance(value, dict):
        items = tuple(value.items())
    elif isinstance(value, list):
        return "[" + ",".join(render(v, ascii_only) for v in value) + "]"
    elif isinstance(value, float) and value != value:
        return "NaN"
    elif isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    else:
        return json.dumps(value, ensure_ascii=ascii_only)
    return "{" + ",".join(
        f"{json.dumps(k, ensure_ascii=ascii_only)}:{render(v, ascii_only)}" for k, v in items
    ) + "}"


# ---------------------------------------------------------------------------- node ids, topics
MACS = ["02:00:00:00:00:01", "02-00-00-00-00-01", "020000000001", "DE:AD:BE:EF:00:01"]
IPS = ["10.0.0.1", "192.168.1.254", "fe80::1", "2001:db8::42", "::1", "10.0.0.1.x"]
HOSTILE_IDS = [
    "", " ", "-lead", ".hidden", "a" * 64, "a" * 65, "a/b", "+", "#", "a+b", "../etc",
    "node\u202eevil", "nöde", "node\u200b", "\U0001f4a9", "x\ty", "CON", "a" * 1000,
]


def node_ids() -> st.SearchStrategy[str]:
    """Valid node ids, ids that hold a MAC or IP address, and hostile text."""
    return st.one_of(
        st.from_regex(NODE_ID_RE, fullmatch=True),
        st.sampled_from(MACS + IPS + HOSTILE_IDS),
        st.builds(lambda a, b: f"{a}-{b}", st.sampled_from(["n", "hill"]),
                  st.sampled_from(MACS + IPS)),
        st.text(max_size=70),
    )


def kinds() -> st.SearchStrategy[str]:
    """The three message kinds, and others."""
    return st.one_of(
        st.sampled_from(MESSAGE_KINDS),
        st.sampled_from(["cmd", "Report", "report/", "", "status/x", "info "]),
        st.text(max_size=12),
    )


def topics() -> st.SearchStrategy[tuple[str, str]]:
    """(topic, node in it): well-formed topics with odd parts, and random text."""
    shaped = st.builds(lambda n, k: (f"{PREFIX}/v1/node/{n}/{k}", n), node_ids(), kinds())
    other = st.builds(lambda p, n, k: (f"{p}/{n}/{k}", n),
                      st.sampled_from([PREFIX, f"{PREFIX}/v2/node", f"{PREFIX}/v1/bridge",
                                       f"{PREFIX}/v1", "other/v1/node", f"{PREFIX}/v1/node/x",
                                       "", "/" + PREFIX + "/v1/node"]),
                      node_ids(), kinds())
    return st.one_of(shaped, shaped, other, st.builds(lambda t: (t, ""), st.text(max_size=200)))


# ---------------------------------------------------------------------------- odd values
NUMBER_TOKENS = [
    "NaN", "-NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400", "-0", "-0.0", "0e0",
    "4e-400", "1" + "0" * 400, "9" * 30, "18446744073709551616", "9223372036854775808",
    "-9223372036854775809", "00012", "1.", ".5", "+1", "0x10", "1_000",
]
STRING_TOKENS = [
    '"\\ud800"', '"\\udfff\\ud800"', '"a\\u0000b"', '"\\u202eevil"', '"\\\\"', '"\\x41"',
    '"<script>alert(1)</script>"', '"<img src=x onerror=alert(1)>"', "'single'", '"unterminated',
]
ODD_STRINGS = [
    "", " ", "02:00:00:00:00:01", "10.0.0.1", "fe80::1", "owner@example.org", "wifi", "WIFI",
    "\u0000", "\u202e", "\ufeff", "\U0001f4a9", "a" * 200, "a" * 100_000, "1", "true", "null",
]
BIG_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**64 + 1, -(2**63) - 1, 10**30, -1]


def odd_numbers() -> st.SearchStrategy[Any]:
    """Numbers a field may not expect: NaN and infinities, past int64, negative, tiny."""
    return st.one_of(
        st.sampled_from([Token(t) for t in NUMBER_TOKENS]),
        st.sampled_from([*BIG_INTS, 0, -0.0, 1e308, -1e308, 5e-324, 0.5, 255, 256, 65536]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**70), max_value=2**70),
    )


def odd_values() -> st.SearchStrategy[Any]:
    """Values of the wrong type, out of range or otherwise hostile."""
    scalars = st.one_of(
        st.none(), st.booleans(),
        odd_numbers(), st.sampled_from([Token(t) for t in STRING_TOKENS]),
        st.text(max_size=40), st.sampled_from(ODD_STRINGS),
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=5),
        st.dictionaries(st.text(max_size=8), scalars, max_size=4),
        st.builds(deeply_nested, st.integers(1, 5000), st.booleans()),
    )


def deeply_nested(depth: int, objects: bool) -> Token:
    """`[[[…]]]` or `{"a":{"a":…}}` `depth` levels deep."""
    if objects:
        return Token('{"a":' * depth + "1" + "}" * depth)
    return Token("[" * depth + "]" * depth)


# ---------------------------------------------------------------------------- mutations
def paths(value: Any, here: Path_ = ()) -> Iterator[Path_]:
    """Every position in a JSON tree, the root first."""
    yield here
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*here, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from paths(child, (*here, i))


def _get(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _delete(doc: Any, path: Path_) -> Any:
    if path:
        del _get(doc, path[:-1])[path[-1]]
    return doc


MUTATIONS = ("replace", "replace", "replace", "delete", "add_key", "duplicate_key", "grow",
             "nest")


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """`doc` (changed in place) with one mutation at a random position."""
    path = draw(st.sampled_from(list(paths(doc))))
    target = _get(doc, path)
    op = draw(st.sampled_from(MUTATIONS))
    if op == "delete":
        return _delete(doc, path)
    if op == "add_key" and isinstance(target, dict):
        target[draw(st.text(max_size=10))] = draw(odd_values())
        return doc
    if op == "duplicate_key" and isinstance(target, dict) and target:
        key = draw(st.sampled_from(sorted(target)))
        extra = (key, draw(odd_values()))
        items = list(target.items())
        items.insert(draw(st.integers(0, len(items))), extra)
        return _set(doc, path, Pairs(tuple(items)))
    if op == "grow" and isinstance(target, list) and target:
        times = draw(st.sampled_from([2, 33, 129, 513]))
        return _set(doc, path, [copy.deepcopy(target[0]) for _ in range(times)])
    if op == "grow":
        return _set(doc, path, Token("[" + ",".join(["1"] * 100_000) + "]"))
    if op == "nest":
        return _set(doc, path, deeply_nested(draw(st.integers(2, 3000)), draw(st.booleans())))
    if isinstance(target, int | float) and not isinstance(target, bool) and draw(st.booleans()):
        return _set(doc, path, draw(odd_numbers()))  # most fields are numbers: aim at them
    return _set(doc, path, draw(odd_values()))


@st.composite
def mutated_payloads(draw: st.DrawFn, kind: str, node: str) -> bytes:
    """A real payload of `kind` for `node`, with 0–4 mutations, rendered in an odd way."""
    base = BASES.get(kind, BASES["report"])
    doc: Any = copy.deepcopy(base)
    doc["node"] = node
    for _ in range(draw(st.integers(0, 4))):
        doc = draw(mutated(doc))
    text = render(doc, ascii_only=draw(st.booleans()))
    data = text.encode("utf-8", "surrogatepass")
    framing = draw(st.sampled_from(["plain"] * 6 + ["bom", "spaces", "truncated", "trailing",
                                                    "utf16"]))
    if framing == "bom":
        return b"\xef\xbb\xbf" + data
    if framing == "spaces":
        return b" \r\n\t" + data + b"\n"
    if framing == "truncated":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if framing == "trailing":
        return data + draw(st.sampled_from([b"x", b"{}", b"\x00", b",", b"]"]))
    if framing == "utf16":
        return text.encode("utf-16", "surrogatepass")
    return data


def subscribed_topics() -> st.SearchStrategy[tuple[str, str]]:
    """(topic, node): topics the collector subscribes to (`PREFIX/v1/node/+/KIND`), with
    any node id that is one topic level."""
    nodes = st.one_of(st.just("lr-test-1"), st.from_regex(NODE_ID_RE, fullmatch=True),
                      node_ids().filter(lambda n: "/" not in n))
    return st.builds(lambda n, k: (f"{PREFIX}/v1/node/{n}/{k}", n), nodes,
                     st.sampled_from(MESSAGE_KINDS))


@st.composite
def messages(draw: st.DrawFn, subscribed: bool = False) -> tuple[str, bytes]:
    """(topic, payload): mutated real payloads on odd topics (only on topics the collector
    subscribes to if `subscribed`), and random bytes."""
    topic, node = draw(subscribed_topics() if subscribed else topics())
    kind = topic.rsplit("/", 1)[-1]
    if draw(st.integers(0, 3)) == 0:
        return topic, draw(st.binary(max_size=3000))
    return topic, draw(mutated_payloads(kind, node))

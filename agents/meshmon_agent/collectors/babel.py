"""Babel neighbours from babeld's local interface (`dump`): one `babel` link per neighbour."""

from __future__ import annotations

from typing import Any

_COSTS = ("rxcost", "txcost", "cost")
COST_MAX = 1_000_000


def parse_dump(text: str) -> list[dict[str, Any]]:
    """`dump` answer → `[{"address", "iface", "rxcost", "txcost", "cost"}]`, one per neighbour.

    A neighbour line is `add neighbour ID address A if IF reach R … rxcost N txcost N … cost N`
    (`change neighbour` in monitor output); a value that is not a number is left out.
    """
    neighbours: list[dict[str, Any]] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] not in ("add", "change") or words[1] != "neighbour":
            continue
        pairs = dict(zip(words[3::2], words[4::2], strict=False))
        address, iface = pairs.get("address"), pairs.get("if")
        if not address or not iface:
            continue
        entry: dict[str, Any] = {"address": address, "iface": iface}
        for key in _COSTS:
            value = pairs.get(key, "")
            if value.isdigit() and int(value) <= COST_MAX:
                entry[key] = int(value)
        neighbours.append(entry)
    return neighbours

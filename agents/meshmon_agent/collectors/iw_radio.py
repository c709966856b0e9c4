"""Radio state from `iw dev` (interface list), `iw dev IF info` and `iw dev IF survey dump`."""

from __future__ import annotations

import re
from typing import Any

_CHANNEL = re.compile(
    r"channel\s+(\d+)\s+\((\d+(?:\.\d+)?)\s*MHz\)(?:,\s*width:\s*(\d+(?:\.\d+)?)\s*MHz)?"
)
_TXPOWER = re.compile(r"txpower\s+(-?\d+(?:\.\d+)?)\s*dBm")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_dev(text: str) -> list[dict[str, str]]:
    """`iw dev` → `[{"iface", "type", "addr"}]`, one per wireless interface."""
    ifaces: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "Interface":
            current = {"iface": words[1]}
            ifaces.append(current)
        elif current is not None and len(words) >= 2 and words[0] in ("type", "addr"):
            current[words[0]] = " ".join(words[1:])
    return ifaces


def parse_info(text: str) -> dict[str, Any]:
    """`iw dev IF info` → radio fields `iface`, `channel`, `freq_mhz`, `width_mhz`, `txpower_dbm`.

    The interface's `addr` and `type` are returned too (under `mac` and `mode`), for `info.macs`.
    """
    out: dict[str, Any] = {}
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "Interface" and len(words) >= 2:
            out["iface"] = words[1]
        elif words[0] == "addr" and len(words) >= 2:
            out["mac"] = words[1].lower()
        elif words[0] == "type" and len(words) >= 2:
            out["mode"] = " ".join(words[1:])
        elif words[0] == "channel":
            match = _CHANNEL.search(line)
            if match:
                out["channel"] = int(match.group(1))
                out["freq_mhz"] = float(match.group(2))
                if match.group(3):
                    out["width_mhz"] = float(match.group(3))
        elif words[0] == "txpower":
            power = _TXPOWER.search(line)
            if power:
                out["txpower_dbm"] = float(power.group(1))
    return out


def parse_survey(text: str) -> dict[str, Any]:
    """`iw dev IF survey dump` → `noise_dbm` and `busy_pct` of the channel marked `[in use]`.

    busy_pct is busy/active time since the counters started (a long-run average).
    """
    blocks: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        number = _NUMBER.search(value)
        if key == "frequency":
            current = {"in_use": "[in use]" in value}
            if number:
                current["freq_mhz"] = float(number.group())
            blocks.append(current)
        elif current is not None and number is not None:
            current[key] = float(number.group())
    in_use = next((b for b in blocks if b["in_use"]), None)
    if in_use is None:
        return {}
    out: dict[str, Any] = {}
    if "noise" in in_use:
        out["noise_dbm"] = in_use["noise"]
    active = in_use.get("channel active time")
    busy = in_use.get("channel busy time")
    if active and busy is not None and active > 0:
        out["busy_pct"] = round(min(100.0, 100.0 * busy / active), 1)
    return out


RADIO_FIELDS = ("iface", "freq_mhz", "channel", "width_mhz", "txpower_dbm")
"""The `iw info` fields that are part of a wire-contract radio."""


def radio(info_text: str, survey_text: str | None = None) -> dict[str, Any]:
    """One wire radio from `iw dev IF info` and optionally its survey dump."""
    info = parse_info(info_text)
    out = {k: v for k, v in info.items() if k in RADIO_FIELDS}
    if survey_text:
        out.update(parse_survey(survey_text))
    return out

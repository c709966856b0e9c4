"""Alerts as short human text, for email subjects and bodies and chat messages.

Pure functions of the `Alert`: no clock, no config. Everything shown comes from the alert
itself (which holds node ids, never contacts, MACs or IPs). Node ids and summaries come
from the network in the end, so every value is squeezed onto one line before it is
placed: a node id must not be able to forge a line of the message or an email header.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from meshmon.alerts.model import Alert
from meshmon.model.plaintext import one_line as _one_line

PREFIX = "[meshmon]"
MAX_AFFECTED_LISTED = 20
MAX_CAUSES_IN_TITLE = 3
MAX_TITLE_CHARS = 200
MAX_DIGEST_ENTRIES = 50
MAX_DETAIL_CHARS = 200

_FIRING_VERB = {
    "outage": "down",
    "flapping": "flapping",
    "silent": "silent",
    "degraded": "degraded",
    "weak_point": "is a weak point",
    "bridge_silent": "silent",
}
_RESOLVED_VERB = {
    "outage": "back",
    "flapping": "stable again",
    "silent": "reporting again",
    "degraded": "recovered",
    "weak_point": "no longer a weak point",
    "bridge_silent": "back",
}
_AFFECTED = {"bridge_silent": ("device", "unmonitored", "unmonitored (its bridge is silent)")}
"""kind → how its affected nodes are counted: (noun, state, state in the body); the
default is (node, cut off, cut off from every gateway)"""
_CUT_OFF = ("node", "cut off", "cut off from every gateway")


def human_duration(seconds: float) -> str:
    """A duration as its two largest units: "45s", "12m 3s", "3h 5m", "2d 4h"."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _two_units(days, "d", hours, "h")
    if hours:
        return _two_units(hours, "h", minutes, "m")
    if minutes:
        return _two_units(minutes, "m", secs, "s")
    return f"{secs}s"


def title(alert: Alert) -> str:
    """One line: `[meshmon] FIRING outage: node-b down, 10 nodes cut off`."""
    return _clip(f"{PREFIX} {_status_word(alert)} {_one_line(alert.kind)}: {headline(alert)}")


def headline(alert: Alert) -> str:
    """The title without prefix and status: `node-b down, 10 nodes cut off`."""
    what = _cause_text(alert)
    if not what:
        return _one_line(alert.summary) or "(no details)"
    if alert.status == "resolved":
        verb = _RESOLVED_VERB.get(alert.kind, "resolved")
        duration = alert.duration_s
        return f"{what} {verb}" + ("" if duration is None else f" after {human_duration(duration)}")
    text = f"{what} {_FIRING_VERB.get(alert.kind, 'firing')}"
    if alert.reminder:
        text += f" for {human_duration(_elapsed(alert))}"
    if alert.affected:
        noun, state, _ = _AFFECTED.get(alert.kind, _CUT_OFF)
        text += f", {_count(len(alert.affected), noun)} {state}"
    if alert.reminder:
        text += " (reminder)"
    return text


def body(alert: Alert) -> str:
    """Several lines: what, where, since when (UTC) and how long, who is affected, the link."""
    lines = [_one_line(alert.summary) or headline(alert), ""]
    status = alert.status + (" (reminder)" if alert.reminder else "")
    lines.append(f"Status:   {status}")
    lines.append(f"Kind:     {_one_line(alert.kind)} ({_one_line(alert.severity)})")
    if alert.cause_nodes:
        lines.append(f"Cause:    {', '.join(_one_line(n) for n in alert.cause_nodes)}")
    for link in alert.cause_links:
        lines.append(f"Link:     {_one_line(str(link))} ({_one_line(link.kind)})")
    lines.append(f"Since:    {_utc(alert.started_at)}")
    if alert.ended_at is not None:
        lines.append(f"Ended:    {_utc(alert.ended_at)}")
        lines.append(f"Lasted:   {human_duration(alert.duration_s or 0.0)}")
    elif alert.sent_at:
        lines.append(f"For:      {human_duration(_elapsed(alert))} so far")
    lines.extend(_affected_lines(alert))
    lines.extend(_detail_lines(alert.details))
    if alert.url:
        lines += ["", f"More:     {_one_line(alert.url)}"]
    return "\n".join(lines)


def digest_summary(alerts: Sequence[Alert]) -> str:
    """One line for a burst: `5 alerts: 3 firing, 2 resolved`."""
    firing = sum(1 for a in alerts if a.status == "firing")
    counts = ((firing, "firing"), (len(alerts) - firing, "resolved"))
    return f"{_count(len(alerts), 'alert')}: " + ", ".join(f"{n} {w}" for n, w in counts if n)


def digest_title(alerts: Sequence[Alert]) -> str:
    """One line: `[meshmon] 5 alerts: 3 firing, 2 resolved`."""
    return _clip(f"{PREFIX} {digest_summary(alerts)}")


def digest_body(alerts: Sequence[Alert]) -> str:
    """One short paragraph per alert (at most MAX_DIGEST_ENTRIES), firing ones first."""
    ordered = sorted(alerts, key=lambda a: a.status != "firing")
    lines = [digest_summary(alerts), ""]
    for alert in ordered[:MAX_DIGEST_ENTRIES]:
        lines.append(f"{_status_word(alert)} {_one_line(alert.kind)}: {headline(alert)}")
        lines.append(f"  since {_utc(alert.started_at)}")
        if alert.summary:
            lines.append(f"  {_one_line(alert.summary)}")
        if alert.url:
            lines.append(f"  {_one_line(alert.url)}")
        lines.append("")
    if len(ordered) > MAX_DIGEST_ENTRIES:
        lines.append(f"and {len(ordered) - MAX_DIGEST_ENTRIES} more")
    return "\n".join(lines).rstrip("\n")


def _status_word(alert: Alert) -> str:
    return "RESOLVED" if alert.status == "resolved" else "FIRING"


def _cause_text(alert: Alert) -> str:
    # cause nodes when there are any: the links next to them are details for the body
    names = [_one_line(n) for n in alert.cause_nodes]
    if not names and alert.cause_links:
        links = "link " if len(alert.cause_links) == 1 else "links "
        names = [links + _one_line(str(alert.cause_links[0]))]
        names += [_one_line(str(link)) for link in alert.cause_links[1:]]
    shown = names[:MAX_CAUSES_IN_TITLE]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _affected_lines(alert: Alert) -> list[str]:
    if not alert.affected:
        return []
    listed = [_one_line(n) for n in alert.affected[:MAX_AFFECTED_LISTED]]
    more = len(alert.affected) - len(listed)
    noun, _, state = _AFFECTED.get(alert.kind, _CUT_OFF)
    lines = ["", f"Affected: {_count(len(alert.affected), noun)} {state}"]
    lines.append("  " + ", ".join(listed) + (f" and {more} more" if more else ""))
    return lines


def _detail_lines(details: dict[str, Any]) -> list[str]:
    if not details:
        return []
    lines = ["", "Details:"]
    for key in sorted(details, key=str):
        value = details[key]
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"  {_one_line(str(key))}: {_clip(_one_line(text), MAX_DETAIL_CHARS)}")
    return lines


def _elapsed(alert: Alert) -> float:
    return max(0.0, alert.sent_at - alert.started_at)


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit} {small}{small_unit}" if small else f"{big}{big_unit}"


def _clip(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

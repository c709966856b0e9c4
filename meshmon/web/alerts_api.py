"""Outages and weak points (public), the alert log and silences (maintainer token).

Maintainer endpoints take the token as `Authorization: Bearer TOKEN` (or `?token=` for a
browser link); a missing token is a 401 "token required", a wrong one a 401 "token
rejected", both with a JSON error.
"""

from __future__ import annotations

import asyncio
import difflib
import math
from collections.abc import Collection
from typing import Any

from aiohttp import web

from meshmon.alerts.model import Silence
from meshmon.alerts.runtime import Alerting
from meshmon.alerts.store import MAX_ROW_ID
from meshmon.web.admin import bearer, session_authorized, token_matches
from meshmon.web.context import CTX, json_error, json_response
from meshmon.web.incident_reason import explained

MAX_SILENCE_S = 90 * 86_400.0
MAX_UNIX_S = 253_402_300_799.0
"""9999-12-31T23:59:59Z: the last second an ISO date can show"""
GLOB_CHARS = frozenset("*?[")


def _given_token(request: web.Request) -> str:
    return bearer(request) or request.query.get("token", "")


def authorized(request: web.Request) -> bool:
    """Whether the request carries the maintainer token, or else a maintainer session
    cookie from signing in at /admin (a token that is given must be right)."""
    if not request.app[CTX].admin_token():
        return False
    given = _given_token(request)
    if given:
        return token_matches(request, given)
    return session_authorized(request)


def _alerting(request: web.Request) -> Alerting:
    alerting = request.app[CTX].alerting
    if alerting is None:
        raise web.HTTPServiceUnavailable(reason="alerting is not running")
    return alerting


def _deny(request: web.Request) -> web.Response:
    if _given_token(request):
        message = "maintainer token rejected: it is not the collector's token"
    else:
        message = "maintainer token required (Authorization: Bearer TOKEN)"
    response = json_error(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="meshmon"'
    return response


async def outages(request: web.Request) -> web.Response:
    """Open outages: cause, affected node ids, since when, why (public)."""
    views = explained(_alerting(request).outages(), request.app[CTX].topology)
    return json_response({"outages": views})


async def weak_points(request: web.Request) -> web.Response:
    """Single points of failure with the nodes each would cut off, and fading links."""
    return json_response(_alerting(request).weak_points())


async def alerts(request: web.Request) -> web.Response:
    """The alert log (maintainers): `?since=UNIX&limit=N`, plus what is firing now."""
    if not authorized(request):
        return _deny(request)
    alerting = _alerting(request)
    try:
        since = float(request.query.get("since", "0"))
        limit = min(5000, max(1, int(request.query.get("limit", "500"))))
    except ValueError:
        return json_error(400, "since must be a number, limit an integer")
    if not math.isfinite(since):
        return json_error(400, "since must be a finite number (unix seconds)")
    log = await alerting.alert_log(since, limit)
    views = explained(alerting.incidents(), request.app[CTX].topology)
    return json_response({"open": views, "log": log})


async def silences(request: web.Request) -> web.Response:
    """Active and future silences; `?all=1` includes ended ones, `?ended_since=UNIX` those
    that ended since then."""
    if not authorized(request):
        return _deny(request)
    ended_since: float | None = None
    if "ended_since" in request.query:
        try:
            ended_since = float(request.query["ended_since"])
        except ValueError:
            ended_since = math.nan
        if not math.isfinite(ended_since):
            return json_error(400, "ended_since must be a finite number (unix seconds)")
    every = request.query.get("all") == "1" or ended_since is not None
    found = await _alerting(request).silences(include_expired=every)
    if ended_since is not None and request.query.get("all") != "1":
        # active and future ones end after now; an ended one's ends_at is when it ended
        since = min(ended_since, request.app[CTX].clock())
        found = [s for s in found if s.ends_at >= since]
    return json_response({"silences": [s.to_dict() for s in found]})


async def add_silence(request: web.Request) -> web.Response:
    """Create a silence: `{"node": "glob", "tag": "", "duration_s": 7200, "reason": "…",
    "created_by": "…", "starts_at": unix (default now), "force": false}`. A literal node id
    the collector does not know is refused (422) unless `force` is true."""
    if not authorized(request):
        return _deny(request)
    try:
        body = await request.json()
    except (ValueError, LookupError):  # not JSON, not in its charset, an unknown charset
        return json_error(400, "body must be JSON")
    problem, silence = parse_silence(body, request.app[CTX].clock())
    if silence is None:
        return json_error(400, problem)
    topology = request.app[CTX].topology
    nodes = topology.nodes
    bridges = topology.bridges.states  # a silent bridge's alert names it as its cause
    if body.get("force") is not True and not (
            is_known_or_pattern(silence.node, nodes) or silence.node in bridges):
        # difflib over every node id takes ~0.6 s at 35,000 nodes: not on the event loop
        close = await asyncio.to_thread(closest_node, silence.node, [*nodes, *bridges])
        hint = f"; did you mean {close!r}?" if close else "."
        return json_response({
            "error": f"unknown node {silence.node!r}{hint} Give a known node id, a glob "
                     f"such as '{silence.node}*', or a tag.",
            "status": 422, "unknown_node": silence.node, "did_you_mean": close,
        }, status=422)
    saved = await _alerting(request).add_silence(silence)
    return json_response(saved.to_dict(), status=201)


async def end_silence(request: web.Request) -> web.Response:
    """End a silence now."""
    if not authorized(request):
        return _deny(request)
    silence_id = row_id(request.match_info["id"])
    if silence_id is None:
        return json_error(404, "unknown silence")
    if not await _alerting(request).end_silence(silence_id):
        return json_error(404, "unknown or already ended silence")
    return json_response({"ended": silence_id})


def is_known_or_pattern(pattern: str, known: Collection[str]) -> bool:
    """Whether a silence's node is a known node id, a glob or empty (any node): a literal
    id the collector has never heard of is more likely a typo than a plan."""
    return not pattern or bool(GLOB_CHARS & set(pattern)) or pattern in known


def closest_node(node: str, known: list[str]) -> str:
    """The known node id closest to a mistyped one ('' when none is close)."""
    close = difflib.get_close_matches(node, known, n=1)
    return close[0] if close else ""


def row_id(text: str) -> int | None:
    """A row id from a path segment: plain ASCII digits, 1 … 2⁶³-1; None for anything else
    (`int()` alone takes ` 7`, `+7`, `7_0`, `٧` and numbers SQLite cannot hold)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ROW_ID else None


def _seconds(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (bools, huge integers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_silence(body: Any, now: float) -> tuple[str, Silence | None]:
    """A Silence from a request body, or the reason it is not one."""
    if not isinstance(body, dict):
        return "body must be a JSON object", None
    node, tag = body.get("node", ""), body.get("tag", "")
    reason, by = body.get("reason", ""), body.get("created_by", "")
    if not all(isinstance(v, str) for v in (node, tag, reason, by)):
        return "node, tag, reason and created_by must be strings", None
    if not node and not tag:
        return "give node (a glob, * for all) or tag", None
    duration = _seconds(body.get("duration_s"))
    starts = _seconds(body.get("starts_at", now))
    if duration is None or not 0 < duration <= MAX_SILENCE_S:
        return f"duration_s must be a number of seconds in (0, {MAX_SILENCE_S:.0f}]", None
    if starts is None or not 0 <= starts <= MAX_UNIX_S - duration:
        return "starts_at must be unix seconds (before the year 10000)", None
    silence = Silence(node=node[:200], tag=tag[:64], starts_at=starts,
                      ends_at=starts + duration, reason=reason[:500],
                      created_by=by[:100], created_at=now)
    return "", silence


def register(app: web.Application) -> None:
    app.router.add_get("/api/v1/outages", outages)
    app.router.add_get("/api/v1/weak-points", weak_points)
    app.router.add_get("/api/v1/alerts", alerts)
    app.router.add_get("/api/v1/silences", silences)
    app.router.add_post("/api/v1/silences", add_silence)
    app.router.add_delete("/api/v1/silences/{id}", end_silence)

"""Maintainer commands that talk to a running collector over its HTTP API:
`meshmon silence`, `meshmon silences`, `meshmon weak-points`, `meshmon outages`."""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from meshmon.admin_token import read_admin_token, token_path
from meshmon.alerts.messages import human_duration
from meshmon.config import Config
from meshmon.model.plaintext import one_line

DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_ROWS = 40
DEFAULT_CONFIGS = ("meshmon.toml", "/etc/meshmon/meshmon.toml")
"""where the client commands look for the collector's config when -c is not given: the
working directory, then the path docs/deploy.md installs it at"""


class ClientError(Exception):
    """A request the collector refused or could not answer; the message says why."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        """the HTTP status (0: no answer)"""
        self.body = body
        """the collector's JSON error, when it sent one"""


def parse_duration(text: str) -> float:
    """`2h`, `30m`, `1h30m`, `90s`, `1d` → seconds; a bare number is minutes, as on /admin."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text) * 60
    parts = DURATION_RE.findall(text)
    if not parts or DURATION_RE.sub("", text).strip():
        raise ValueError(f"not a duration: {text!r} (use e.g. 2h, 30m, 1h30m, 1d)")
    return sum(float(n) * UNIT_S[u.lower()] for n, u in parts)


def default_config() -> str | None:
    """The first of DEFAULT_CONFIGS that exists (None: the built-in defaults)."""
    return next((path for path in DEFAULT_CONFIGS if Path(path).is_file()), None)


def base_url(config: Config, url: str | None) -> str:
    """The collector to ask: `--url`, else `[http] host`:`port` of its config (a wildcard
    host means this machine), else `[http] public_url` (when the port is 0, chosen at start)."""
    if url:
        return url.rstrip("/")
    http = config.http
    if http.port:
        host = http.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"http://[{host}]:{http.port}" if ":" in host else f"http://{host}:{http.port}"
    if http.public_url:
        return http.public_url.rstrip("/")
    raise ClientError("the config sets [http] port = 0 (chosen at start) and no public_url: "
                      "give --url")


def token_of(config: Config, token: str | None) -> str:
    return token or config.http.admin_token or read_admin_token(config.storage.path)


def request(url: str, token: str = "", method: str = "GET", body: Any = None) -> Any:
    """One JSON request; errors become ClientError with the collector's message."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
            message = answer.get("error", exc.reason)
        except (ValueError, AttributeError):
            answer, message = None, exc.reason
        if exc.code == 401:
            message = (f"token rejected by {url}: it is not that collector's maintainer token "
                       "(check --token, [http] admin_token or the admin-token file)"
                       if token else f"token required by {url}: give --token")
        raise ClientError(f"{exc.code}: {message}", exc.code, answer) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError(f"cannot reach the collector at {url}: {reason}") from None


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Rows under headers, columns padded to their widest cell; cells come from the
    network, so control characters (an ANSI escape in a hostname) never reach the terminal."""
    rows = [[one_line(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _names(nodes: list[str], limit: int = 6) -> str:
    more = f" +{len(nodes) - limit}" if len(nodes) > limit else ""
    return ", ".join(nodes[:limit]) + more


def _more(hidden: int) -> str:
    return f"… {hidden} more, use --all"


def format_weak_points(data: dict[str, Any], limit: int | None = MAX_ROWS) -> str:
    """The readable table of `meshmon weak-points` (at most `limit` rows a table; None: all)."""
    rows = [["node", p["node"], str(p["cut_off_count"]), _names(p["cut_off"])]
            for p in data["nodes"]]
    rows += [["link", f"{p['a']} – {p['b']}", str(p["cut_off_count"]), _names(p["cut_off"])]
             for p in data["links"]]
    rows.sort(key=lambda r: -int(r[2]))
    out = []
    if rows:
        out.append("Single points of failure (if it fails, these nodes lose every gateway):")
        out.append(table(["what", "which", "cut off", "nodes"], rows[:limit]))
        if limit is not None and len(rows) > limit:
            out.append(_more(len(rows) - limit))
    else:
        out.append("No single point of failure: every node keeps a gateway if any one "
                   "node or link fails.")
    if data.get("without_gateway"):
        out.append(f"\nNodes that reach no gateway now: {_names(data['without_gateway'], 20)}")
    fading = data.get("fading_links") or []
    if fading:
        out.append("\nLinks fading against their baseline:")
        out.append(table(
            ["link", "kind", "signal", "baseline", "degraded"],
            [[f"{f['src']} → {f['dst']}", f["kind"], f"{f['signal_dbm']} dBm",
              f"{f['baseline_dbm']} dBm", "yes" if f["degraded"] else "no"]
             for f in fading[:limit]],
        ))
        if limit is not None and len(fading) > limit:
            out.append(_more(len(fading) - limit))
    return "\n".join(out)


def format_outages(data: dict[str, Any], now: float) -> str:
    outages = data["outages"]
    if not outages:
        return "No outage."
    rows = []
    for o in outages:
        cause = o["cause"]["nodes"] + [f"{ln['a']}–{ln['b']}" for ln in o["cause"]["links"]]
        rows.append([o["started_at"], human_duration(now - o["started_at_ts"]),
                     ", ".join(cause), str(o["affected_count"]), _names(o["affected"])])
    return table(["since", "for", "cause", "cut off", "nodes"], rows)


def format_silences(data: dict[str, Any]) -> str:
    silences = data["silences"]
    if not silences:
        return "No silence."
    rows = [[str(s["id"]), s["node"] or "*", s["tag"] or "-", s["starts_at_iso"],
             s["ends_at_iso"], s["reason"]] for s in silences]
    return table(["id", "node", "tag", "from", "until", "reason"], rows)


def cmd_silence(args: argparse.Namespace, config: Config) -> int:
    """Silence alerts naming NODE (a glob) for a while."""
    try:
        seconds = parse_duration(args.duration)
    except ValueError as exc:
        print(f"meshmon silence: {exc}", file=sys.stderr)
        return 2
    body = {"node": args.node, "tag": args.tag or "", "duration_s": seconds,
            "reason": args.reason or "", "created_by": args.by or "cli", "force": args.force}
    url = base_url(config, args.url)
    try:
        saved = request(f"{url}/api/v1/silences", _token(config, args), "POST", body)
    except ClientError as exc:
        if exc.status != 422 or not isinstance(exc.body, dict):
            raise
        close = exc.body.get("did_you_mean")
        hint = f" (did you mean {close}?)" if close else ""
        raise ClientError(
            f"the collector knows no node {args.node!r}{hint}; give a glob such as "
            f"'{args.node}*' or --tag, or --force to silence it anyway") from None
    print(f"silence {saved['id']}: alerts naming {one_line(saved['node']) or '*'} held until "
          f"{saved['ends_at_iso']} ({human_duration(seconds)})")
    return 0


def cmd_silences(args: argparse.Namespace, config: Config) -> int:
    """List silences, or end one."""
    url = base_url(config, args.url)
    token = _token(config, args)
    if args.end is not None:
        request(f"{url}/api/v1/silences/{args.end}", token, "DELETE")
        print(f"silence {args.end} ended")
        return 0
    data = request(f"{url}/api/v1/silences{'?all=1' if args.all else ''}", token)
    print(format_silences(data))
    return 0


def cmd_weak_points(args: argparse.Namespace, config: Config) -> int:
    data = request(f"{base_url(config, args.url)}/api/v1/weak-points")
    limit = None if args.all else MAX_ROWS
    print(json.dumps(data, indent=2) if args.json else format_weak_points(data, limit))
    return 0


def cmd_outages(args: argparse.Namespace, config: Config) -> int:
    import time

    data = request(f"{base_url(config, args.url)}/api/v1/outages")
    print(json.dumps(data, indent=2) if args.json else format_outages(data, time.time()))
    return 0


def _token(config: Config, args: argparse.Namespace) -> str:
    token = token_of(config, args.token)
    if not token:
        raise ClientError(
            f"no maintainer token: give --token, set [http] admin_token, or run this where "
            f"{token_path(config.storage.path)} is readable")
    return token


def add_commands(sub: Any) -> None:
    """Add the maintainer subcommands to the `meshmon` parser."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", metavar="FILE",
                       help="the collector's config, for its URL and token (default: "
                            f"{' or '.join(DEFAULT_CONFIGS)} if there is one)")
        p.add_argument("--url", help="the collector's base URL (default: [http] host and port "
                                     "of the config, else its public_url)")

    token_help = ("maintainer token (default: [http] admin_token, else the admin-token file "
                  "next to [storage] path)")
    silence = sub.add_parser(
        "silence", help="hold alerts about a node (or a glob or tag) for a while",
        description="Hold alerts about NODE for a while, e.g. during an antenna swap. NODE is "
                    "a node id the collector knows, or a glob (bb-*, * = every node).")
    silence.add_argument("node", help="node id or glob pattern (* = all)")
    silence.add_argument("--for", dest="duration", required=True, metavar="DURATION",
                         help="e.g. 2h, 30m, 1h30m, 1d; a bare number is minutes")
    silence.add_argument("--reason", help="why (shown in the alert log)")
    silence.add_argument("--tag", help="only nodes with this info tag")
    silence.add_argument("--by", help="who (default: cli)")
    silence.add_argument("--force", action="store_true",
                         help="silence a node id the collector has not heard of (yet)")
    silence.add_argument("--token", help=token_help)
    common(silence)
    silence.set_defaults(client=cmd_silence)

    silences = sub.add_parser("silences", help="list silences, or end one with --end ID")
    silences.add_argument("--end", type=int, metavar="ID", help="end this silence now")
    silences.add_argument("--all", action="store_true", help="include ended silences")
    silences.add_argument("--token", help=token_help)
    common(silences)
    silences.set_defaults(client=cmd_silences)

    weak = sub.add_parser("weak-points", help="single points of failure and fading links")
    weak.add_argument("--all", action="store_true",
                      help=f"every row (default: the {MAX_ROWS} that cut off the most)")
    weak.add_argument("--json", action="store_true", help="print the API's JSON")
    common(weak)
    weak.set_defaults(client=cmd_weak_points)

    outages = sub.add_parser("outages", help="current outages with cause and cut-off nodes")
    outages.add_argument("--json", action="store_true", help="print the API's JSON")
    common(outages)
    outages.set_defaults(client=cmd_outages)

"""Security headers on every response the web app sends.

Text from the network is rendered as text (pages build DOM with textContent), and a
Content-Security-Policy without inline script makes sure that a slip there still runs
nothing: every HTML page may load script, style and data only from this origin (the map
also loads tile images from its tile server), may not be framed, and every response says
`nosniff` so that no browser reads JSON or text as HTML.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from aiohttp import web

from meshmon.config import Config

BASE_POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
)
HOST_SOURCE_RE = re.compile(r"^(\*\.)?[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$")
"""a host that can stand in a CSP source as it is (else the scheme alone is allowed)"""
HTML_HEADERS = {
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "Referrer-Policy": "same-origin",
}


def tile_source(tile_url: str) -> str:
    """The CSP source the map's tiles come from: `https://tile.example`, a wildcard for a
    `{s}` subdomain, the scheme alone for other templates in the host; "" for none/self."""
    if not tile_url or "://" not in tile_url:
        return ""  # no tiles, or a path on this collector
    parts = urlsplit(tile_url.replace("{", "%7B").replace("}", "%7D"))
    host = parts.netloc.replace("%7B", "{").replace("%7D", "}").rpartition("@")[2]
    if not parts.scheme or not host:
        return ""
    first, dot, rest = host.partition(".")
    if "{" in first and dot and "{" not in rest:
        host = f"*.{rest}"
    if not HOST_SOURCE_RE.match(host) or not parts.scheme.isalpha():
        return f"{parts.scheme}:" if parts.scheme.isalpha() else ""
    return f"{parts.scheme}://{host}"


def content_security_policy(config: Config) -> str:
    """The policy of every HTML page (tiles of `[map] tile_url` allowed as images)."""
    images = " ".join(filter(None, ("img-src 'self' data:", tile_source(config.map.tile_url))))
    return "; ".join((*BASE_POLICY, images))


def register(app: web.Application, config: Config) -> None:
    """Add the headers to every response, errors and streams included (they are set when
    the response is prepared, so no handler can send one without them)."""
    policy = content_security_policy(config)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        if response.content_type == "text/html":
            headers["Content-Security-Policy"] = policy
            for name, value in HTML_HEADERS.items():
                headers.setdefault(name, value)

    app.on_response_prepare.append(add_headers)

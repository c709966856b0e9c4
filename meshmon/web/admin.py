"""`/admin`: the maintainer view (outages, weak points, incidents, alert log, silences).

Signing in trades the maintainer token for a session cookie, so the page's scripts call
the maintainer APIs without ever holding the token. The cookie is a random value; the
session itself is kept on the server (`meshmon.storage.sessions`): it lasts `[http]
session_lifetime_h`, signing out ends it on the server (the old cookie is refused, also
after a restart), and a changed token ends every session.

The cookie is HttpOnly, SameSite=Strict, Path=/, and Secure when the request came over
https (directly, `X-Forwarded-Proto: https` from a reverse proxy, or addressed to the host
of an https `[http] public_url`); a request that changes something on the strength of the
cookie must also come from this origin (Origin header), as pages on another port of the
same host are "same-site" for the browser.

A maintainer may give a name when signing in; it is kept beside the session in a second
cookie (`meshmon_admin_name`, same lifetime and flags) and shown on the page, which
records it as who made a silence. Everyone signs in with the one maintainer token, so the
name says who it was, it does not prove it.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import unicodedata
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from meshmon.storage.database import StorageError
from meshmon.web.context import CTX

log = logging.getLogger(__name__)

SESSION_COOKIE = "meshmon_admin"
NAME_COOKIE = "meshmon_admin_name"
MAX_NAME_CHARS = 60
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PAGE_HEADERS = {"Cache-Control": "no-store"}
"""besides the CSP and the other headers every HTML page gets (meshmon/web/security.py)"""


# ---------------------------------------------------------------------- sessions
def _request_session(request: web.Request) -> str | None:
    """The request's session cookie if it is a live session (not expired, not signed out)."""
    ctx = request.app[CTX]
    value = request.cookies.get(SESSION_COOKIE, "")
    if ctx.sessions is None or not ctx.sessions.valid(ctx.admin_token(), value):
        return None
    return value


def _same_origin(request: web.Request) -> bool:
    """Whether the request's Origin (if any) is this server (or `[http] public_url`)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not sent by a browser's cross-origin request
    netloc = urlsplit(origin).netloc.lower()
    if netloc and netloc == request.host.lower():
        return True
    public = request.app[CTX].config.http.public_url
    return bool(public) and netloc == urlsplit(public).netloc.lower()


def session_authorized(request: web.Request) -> bool:
    """Whether the request carries a live maintainer session cookie (and, when it changes
    something, comes from this origin)."""
    if _request_session(request) is None:
        return False
    return request.method in SAFE_METHODS or _same_origin(request)


def _is_https(request: web.Request) -> bool:
    """Whether the browser reached us over TLS: directly, per the proxy's
    X-Forwarded-Proto, or by the host name of an https `[http] public_url`."""
    # a proxy's or the Host header's word is enough here: it can only make the cookie stricter
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if request.secure or forwarded == "https":
        return True
    public = urlsplit(request.app[CTX].config.http.public_url)
    return public.scheme == "https" and request.host.lower() == public.netloc.lower()


async def _set_session(request: web.Request, response: web.StreamResponse,
                       name: str | None = None) -> None:
    """Start a session; `name` (from the sign-in form) replaces the kept name, '' clears
    it, None (token in the query or a header) leaves it."""
    ctx = request.app[CTX]
    assert ctx.sessions is not None
    value = await ctx.sessions.create(ctx.admin_token())
    secure = True if _is_https(request) else None
    lifetime = int(ctx.sessions.lifetime_s)
    response.set_cookie(SESSION_COOKIE, value, max_age=lifetime, path="/", httponly=True,
                        samesite="Strict", secure=secure)
    if name:
        response.set_cookie(NAME_COOKIE, quote(name, safe=""), max_age=lifetime, path="/admin",
                            httponly=True, samesite="Strict", secure=secure)
    elif name is not None:
        response.del_cookie(NAME_COOKIE, path="/admin", httponly=True, samesite="Strict",
                            secure=secure)


def clean_name(text: str) -> str:
    """A maintainer's name as one short line of printable text ('' for none)."""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(kept.split())[:MAX_NAME_CHARS]


def session_name(request: web.Request) -> str:
    """The name given when this browser signed in ('' for none)."""
    return clean_name(unquote(request.cookies.get(NAME_COOKIE, "")[: 12 * MAX_NAME_CHARS]))


def bearer(request: web.Request) -> str:
    """The token of an `Authorization: Bearer TOKEN` header ('' without one)."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def token_matches(request: web.Request, given: str) -> bool:
    """Whether `given` is the maintainer token (never when there is none)."""
    expected = request.app[CTX].admin_token()
    # digests of equal length: the comparison does not even tell the token's length;
    # surrogateescape: header bytes that are not UTF-8 are a wrong token, not an error
    return bool(expected) and hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest(),
        hashlib.sha256(expected.encode("utf-8", "surrogateescape")).digest(),
    )


# ---------------------------------------------------------------------- pages
def _html(status: int, body: str) -> web.Response:
    response = web.Response(status=status, text=body, content_type="text/html")
    response.headers.update(PAGE_HEADERS)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="meshmon"'
    return response


def sign_in_page(message: str = "", status: int = 401) -> web.Response:
    """The sign-in form (never holds the token or any network data)."""
    note = f'<p class="error" id="signin-error" role="alert">{html.escape(message)}</p>' \
        if message else ""
    return _html(status, f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>meshmon · maintainers · sign in</title>
<link rel="stylesheet" href="/static/admin.css"></head>
<body class="signin"><main class="signin-box">
<h1>meshmon <span>maintainers</span></h1>
{note}
<form method="post" action="/admin/login" id="signin-form">
<label for="token">Maintainer token</label>
<input id="token" name="token" type="password" autocomplete="current-password"
 autocapitalize="off" spellcheck="false" required autofocus>
<label for="name">Your name <span class="optional">(optional: shown on the silences
you make)</span></label>
<input id="name" name="name" autocomplete="name" maxlength="60" spellcheck="false">
<button type="submit">Sign in</button>
</form>
<p class="hint">The token is <code>[http] admin_token</code> in the collector's config, or
the <code>admin-token</code> file next to its SQLite database.</p>
</main></body></html>
""")


ADMIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>meshmon · maintainers</title>
<link rel="stylesheet" href="/static/admin.css">
<script src="/static/admin.js" defer></script></head>
<body class="admin" data-user="{user}">
<header class="top">
<h1>meshmon <span>maintainers</span></h1>
<p class="status" id="status" aria-live="polite">loading…</p>
<nav id="nav">
<a href="#outages-h">Outages <span class="n" id="n-outages"></span></a>
<a href="#incidents-h">Incidents <span class="n" id="n-incidents"></span></a>
<a href="#weak-h">Weak points <span class="n" id="n-weak"></span></a>
<a href="#silences-h">Silences <span class="n" id="n-silences"></span></a>
<a href="#log-h">Alert log</a>
<a href="#bridges-h">Bridges <span class="n" id="n-bridges"></span></a>
</nav>
<form method="post" action="/admin/logout" class="logout">
<span class="who" id="who">{who}</span>
<button type="button" id="refresh">Refresh</button>
<button type="submit">Sign out</button></form>
</header>
<main>
<section aria-labelledby="outages-h"><h2 id="outages-h">Outages</h2>
<p class="explain">Biggest first: who is cut off from every gateway, and why.</p>
<div id="outages" class="cards"><p class="empty">loading…</p></div></section>

<section aria-labelledby="incidents-h"><h2 id="incidents-h">Other open incidents</h2>
<p class="explain">Flapping, silent agents, degraded links and new weak points.</p>
<div id="incidents" class="cards"><p class="empty">loading…</p></div></section>

<section aria-labelledby="weak-h"><h2 id="weak-h">Weak points</h2>
<p class="explain">What cuts nodes off from every gateway if it fails alone, the most
first; failures that would cut off the same nodes are one row.</p>
<div id="weak-points"><p class="empty">loading…</p></div>
<details id="fading-box"><summary>Fading links <span class="n" id="n-fading"></span>
</summary>
<p class="explain">Signal well below the link's own baseline.</p>
<div id="fading-links"><p class="empty">loading…</p></div></details></section>

<section aria-labelledby="silences-h"><h2 id="silences-h">Silences</h2>
<p class="explain">A silence holds every alert whose cause names a matching node until it
ends; an incident still open then fires at that moment.</p>
<form id="silence-form" class="silence-form" autocomplete="off">
<label>Node (glob)<input name="node" id="silence-node" placeholder="hill-3 or bb-*"
 maxlength="200" autocapitalize="off" spellcheck="false"></label>
<label>Tag (optional)<input name="tag" id="silence-tag" placeholder="backbone"
 maxlength="64" autocapitalize="off" spellcheck="false"></label>
<label>For<input name="duration" id="silence-duration" placeholder="2h, 30m, 1h30m"
 required autocapitalize="off" spellcheck="false"></label>
<label class="wide">Reason<input name="reason" id="silence-reason"
 placeholder="antenna swap" maxlength="500"></label>
<label>By<input name="by" id="silence-by" placeholder="your name" maxlength="60"
 autocomplete="name" spellcheck="false"></label>
<button type="submit">Silence</button>
<p class="form-msg" id="silence-msg" role="status"></p>
</form>
<div id="silences"><p class="empty">loading…</p></div>
<details id="ended-box"><summary>Recently ended <span class="n" id="n-ended"></span>
</summary><div id="silences-ended"><p class="empty">loading…</p></div></details></section>

<section aria-labelledby="log-h"><h2 id="log-h">Alert log</h2>
<p class="explain">Every notice made, newest first: where it went, or why it went
nowhere.</p>
<div id="alert-log"><p class="empty">loading…</p></div></section>

<section aria-labelledby="bridges-h"><h2 id="bridges-h">Bridges</h2>
<p class="explain">The meshmon-bridges that poll devices without an agent. While one is
silent, the nodes it speaks for are unmonitored (one alert for the bridge, no outages).</p>
<div id="bridges"><p class="empty">loading…</p></div></section>
</main>
<noscript><p class="error">This page needs JavaScript to load its data.</p></noscript>
</body></html>
"""


def _admin_page(request: web.Request) -> web.Response:
    name = session_name(request)
    who = f"Signed in as {html.escape(name)}" if name else ""
    return _html(200, ADMIN_PAGE.format(user=html.escape(name, quote=True), who=who))


def _to_admin() -> web.Response:
    response = web.Response(status=303, headers={"Location": "/admin"})
    response.headers["Cache-Control"] = "no-store"
    return response


async def _sign_in(request: web.Request, given: str, name: str | None = None) -> web.Response:
    ctx = request.app[CTX]
    if not ctx.admin_token():
        return sign_in_page("Signing in is off: the collector has no maintainer token.")
    if ctx.sessions is None:
        return sign_in_page("Signing in is off: the collector keeps no sessions.")
    if not token_matches(request, given.strip()):
        return sign_in_page("That token is not right.")
    response = _to_admin()
    try:
        await _set_session(request, response, name)
    except StorageError as exc:
        return _no_session(exc)
    return response


def _no_session(exc: StorageError) -> web.Response:
    log.warning("a maintainer could not sign in: sessions cannot be saved: %s", exc)
    return sign_in_page("Signing in is not possible right now: the collector cannot write "
                        "its database (is its disk full?). Try again later.", status=503)


async def admin_page(request: web.Request) -> web.Response:
    """The maintainer view with a live session; else the sign-in form (401).

    `?token=` signs in and redirects (so the token leaves the address bar); a Bearer
    header is enough for the page itself and also starts a session."""
    if "token" in request.query:
        return await _sign_in(request, request.query["token"])
    if _request_session(request) is not None:
        return _admin_page(request)
    given = bearer(request)
    if given and token_matches(request, given) and request.app[CTX].sessions is not None:
        response = _admin_page(request)
        try:
            await _set_session(request, response)
        except StorageError as exc:
            return _no_session(exc)
        return response
    return sign_in_page("That token is not right." if given else "")


async def login(request: web.Request) -> web.Response:
    """`POST /admin/login` with the form fields `token` and (optional) `name`."""
    try:
        form = await request.post()
    except (ValueError, LookupError, HttpProcessingError):
        # not UTF-8, an unknown charset, a broken multipart body: no browser's form
        return sign_in_page("The sign-in form could not be read; send it again.", status=400)
    given, name = form.get("token"), form.get("name")
    return await _sign_in(request, given if isinstance(given, str) else "",
                          clean_name(name) if isinstance(name, str) else "")


async def login_get(_request: web.Request) -> web.Response:
    return _to_admin()


async def logout(request: web.Request) -> web.Response:
    """End this session on the server and clear the cookie."""
    ctx = request.app[CTX]
    value = _request_session(request)
    if value is not None and ctx.sessions is not None:
        try:
            await ctx.sessions.end(ctx.admin_token(), value)
        except StorageError as exc:
            log.warning("a maintainer could not sign out: sessions cannot be saved: %s", exc)
            return sign_in_page("Signing out did not work: the collector cannot write its "
                                "database (is its disk full?). Try again later.", status=503)
    response = _to_admin()
    secure = True if _is_https(request) else None
    response.del_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict",
                        secure=secure)
    response.del_cookie(NAME_COOKIE, path="/admin", httponly=True, samesite="Strict",
                        secure=secure)
    return response


def register(app: web.Application) -> None:
    """Add `/admin`, `/admin/login` and `/admin/logout`."""
    app.router.add_get("/admin", admin_page, name="admin")
    app.router.add_post("/admin/login", login)
    app.router.add_get("/admin/login", login_get)
    app.router.add_post("/admin/logout", logout)

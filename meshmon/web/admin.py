"""`/admin`: the maintainer view (outages, weak points, incidents, alert log, silences).

Signing in trades the maintainer token for a session cookie, so the page's scripts call
the maintainer APIs without ever holding the token. The cookie is not the token:

    meshmon_admin = v1.ISSUED.NONCE.MAC
    MAC = base64url(HMAC-SHA256(KEY, "v1.ISSUED.NONCE"))
    KEY = HMAC-SHA256(key=token, msg="meshmon admin session v1")

ISSUED is unix seconds, NONCE 12 random bytes. A session is valid for
`SESSION_LIFETIME_S` after ISSUED while the token stays the same: changing the token
ends every session. Signing out ends that session (its nonce is remembered until it would
have expired; a restart forgets that, so a copied cookie would work again until expiry).
The cookie is HttpOnly, SameSite=Strict, Path=/, and Secure when the request came over
https; a request that changes something on the strength of the cookie must also come
from this origin (Origin header), as pages on another port of the same host are
"same-site" for the browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from meshmon.web.app import CTX

SESSION_COOKIE = "meshmon_admin"
SESSION_LIFETIME_S = 7 * 86_400
"""how long a sign-in lasts (a maintainer's phone should not ask every morning)"""
SESSION_VERSION = "v1"
CLOCK_SKEW_S = 60
"""a session issued this far in the future still counts (clock steps)"""
MAX_COOKIE_LEN = 200
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

REVOKED: web.AppKey[dict[str, float]] = web.AppKey("meshmon_admin_revoked", dict)
"""nonce → when that session would have expired, for sessions ended by signing out"""

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


# ---------------------------------------------------------------------- session values
def _session_key(token: str) -> bytes:
    return hmac.new(token.encode(), b"meshmon admin session v1", hashlib.sha256).digest()


def _mac(token: str, body: str) -> str:
    digest = hmac.new(_session_key(token), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_session(token: str, now: float) -> str:
    """A fresh session cookie value for `token`, issued at `now`."""
    body = f"{SESSION_VERSION}.{int(now)}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(token, body)}"


def session_nonce(value: str, token: str, now: float) -> str | None:
    """The nonce of a genuine, unexpired session value; None for anything else."""
    if not token or not value or len(value) > MAX_COOKIE_LEN:
        return None
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != SESSION_VERSION:
        return None
    _, issued_text, nonce, mac = parts
    if not hmac.compare_digest(_mac(token, ".".join(parts[:3])).encode(), mac.encode()):
        return None
    if not issued_text.isdigit() or len(issued_text) > 12:
        return None
    issued = int(issued_text)
    if not issued - CLOCK_SKEW_S <= now < issued + SESSION_LIFETIME_S:
        return None
    return nonce


def session_valid(value: str, token: str, now: float) -> bool:
    """Whether `value` is a genuine session for `token` that has not expired."""
    return session_nonce(value, token, now) is not None


def _request_session(request: web.Request) -> str | None:
    """The nonce of the request's live session (not expired, not signed out)."""
    ctx = request.app[CTX]
    now = ctx.clock()
    nonce = session_nonce(request.cookies.get(SESSION_COOKIE, ""), ctx.admin_token(), now)
    if nonce is None:
        return None
    revoked = request.app.get(REVOKED)
    if revoked and nonce in revoked:
        return None
    return nonce


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
    # a proxy's word is enough here: it can only make the cookie stricter
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def _set_session(request: web.Request, response: web.StreamResponse) -> None:
    ctx = request.app[CTX]
    response.set_cookie(
        SESSION_COOKIE, new_session(ctx.admin_token(), ctx.clock()),
        max_age=SESSION_LIFETIME_S, path="/", httponly=True, samesite="Strict",
        secure=True if _is_https(request) else None,
    )  # fmt: skip


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _token_matches(request: web.Request, given: str) -> bool:
    expected = request.app[CTX].admin_token()
    # digests of equal length: the comparison does not even tell the token's length
    return bool(expected) and hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
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
<body class="admin">
<header class="top">
<h1>meshmon <span>maintainers</span></h1>
<p class="status" id="status" aria-live="polite">loading…</p>
<nav>
<a href="#outages-h">Outages</a> <a href="#weak-h">Weak points</a>
<a href="#incidents-h">Incidents</a> <a href="#log-h">Alert log</a>
<a href="#silences-h">Silences</a>
</nav>
<form method="post" action="/admin/logout" class="logout">
<button type="button" id="refresh">Refresh</button>
<button type="submit">Sign out</button></form>
</header>
<main>
<section aria-labelledby="outages-h"><h2 id="outages-h">Outages</h2>
<div id="outages" class="cards"><p class="empty">loading…</p></div></section>

<section aria-labelledby="weak-h"><h2 id="weak-h">Weak points</h2>
<p class="explain">Who is cut off from every gateway if one node or link fails.</p>
<div id="weak-points"><p class="empty">loading…</p></div>
<h3>Fading links</h3>
<p class="explain">Signal well below the link's own baseline.</p>
<div id="fading-links"><p class="empty">loading…</p></div></section>

<section aria-labelledby="incidents-h"><h2 id="incidents-h">Open incidents</h2>
<div id="incidents"><p class="empty">loading…</p></div></section>

<section aria-labelledby="log-h"><h2 id="log-h">Alert log</h2>
<div id="alert-log"><p class="empty">loading…</p></div></section>

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
<button type="submit">Silence</button>
<p class="form-msg" id="silence-msg" role="status"></p>
</form>
<div id="silences"><p class="empty">loading…</p></div></section>
</main>
<noscript><p class="error">This page needs JavaScript to load its data.</p></noscript>
</body></html>
"""


def _admin_page() -> web.Response:
    return _html(200, ADMIN_PAGE)


def _to_admin() -> web.Response:
    response = web.Response(status=303, headers={"Location": "/admin"})
    response.headers["Cache-Control"] = "no-store"
    return response


def _sign_in(request: web.Request, given: str) -> web.Response:
    if not request.app[CTX].admin_token():
        return sign_in_page("Signing in is off: the collector has no maintainer token.")
    if not _token_matches(request, given.strip()):
        return sign_in_page("That token is not right.")
    response = _to_admin()
    _set_session(request, response)
    return response


async def admin_page(request: web.Request) -> web.Response:
    """The maintainer view with a live session; else the sign-in form (401).

    `?token=` signs in and redirects (so the token leaves the address bar); a Bearer
    header is enough for the page itself and also starts a session."""
    if "token" in request.query:
        return _sign_in(request, request.query["token"])
    if _request_session(request) is not None:
        return _admin_page()
    bearer = _bearer(request)
    if bearer and _token_matches(request, bearer):
        response = _admin_page()
        _set_session(request, response)
        return response
    return sign_in_page("That token is not right." if bearer else "")


async def login(request: web.Request) -> web.Response:
    """`POST /admin/login` with the form field `token`."""
    form = await request.post()
    given = form.get("token")
    return _sign_in(request, given if isinstance(given, str) else "")


async def login_get(_request: web.Request) -> web.Response:
    return _to_admin()


async def logout(request: web.Request) -> web.Response:
    """End this session (the cookie is cleared and its nonce refused until it expires)."""
    ctx = request.app[CTX]
    now = ctx.clock()
    nonce = _request_session(request)
    revoked = request.app.get(REVOKED)
    if nonce is not None and revoked is not None:
        for old, until in list(revoked.items()):
            if until <= now:
                del revoked[old]
        revoked[nonce] = now + SESSION_LIFETIME_S + CLOCK_SKEW_S
    response = _to_admin()
    response.del_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict",
                        secure=True if _is_https(request) else None)
    return response


def register(app: web.Application) -> None:
    """Add `/admin`, `/admin/login` and `/admin/logout`."""
    app[REVOKED] = {}
    app.router.add_get("/admin", admin_page, name="admin")
    app.router.add_post("/admin/login", login)
    app.router.add_get("/admin/login", login_get)
    app.router.add_post("/admin/logout", logout)

"""`/nodes`: every node of `/api/v1/nodes` in one list, located or not.

Sortable by state (problems first), name or last heard, filterable by state and by a
part of the name or id, in pages of `PAGE_SIZE`; each row links to the node's details on
the map (`/#node=ID`), its installer view and its history page. Plain HTML (no script):
the list works without JavaScript, and on a phone each row is a card. Names come from
the network and are escaped.

Query: `sort` = state | name | last_seen (default state), `dir` = asc | desc (each sort
has its natural direction: problems, A→Z, heard longest ago first), `state` = an API
state, `q` = text, `page` = 1…; anything else is a 400 that says what is allowed.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from meshmon.web.context import CTX
from meshmon.web.page_head import public_head
from meshmon.web.public import nodes_list, source_text
from meshmon.web.states import CONCERN, STATE_WORDS, STATES, state_word

Json = dict[str, Any]

PAGE_SIZE = 1000
SORTS = ("state", "name", "last_seen")
SORT_LABELS = {"state": "State", "name": "Name", "last_seen": "Last heard"}
MAX_QUERY = 64
DEFAULTS: dict[str, str | int] = {"sort": "state", "dir": "asc", "state": "", "q": "", "page": 1}


class BadQuery(ValueError):
    """A query parameter the page does not understand (the message says what would do)."""


def node_name(node: Json) -> str:
    """The name the map shows: the hostname when it is safe to show, else the id."""
    return str(node.get("hostname") or node["id"])


def _sort_key(sort: str) -> Callable[[Json], tuple[Any, ...]]:
    def name(n: Json) -> tuple[str, str]:
        return (node_name(n).casefold(), n["id"])

    if sort == "state":
        return lambda n: (CONCERN.get(n["state"], len(CONCERN)), *name(n))
    if sort == "name":
        return name
    # never heard sorts first: that is the longest silence
    return lambda n: (-math.inf if n["last_seen"] is None else n["last_seen"], *name(n))


def select(nodes: list[Json], query: Mapping[str, str]) -> tuple[list[Json], dict[str, str]]:
    """The nodes the query asks for, in its order, and the query as understood."""
    sort = query.get("sort", "state")
    if sort not in SORTS:
        raise BadQuery(f"sort must be one of {', '.join(SORTS)}")
    direction = query.get("dir", "asc")
    if direction not in ("asc", "desc"):
        raise BadQuery("dir must be asc or desc")
    state = query.get("state", "")
    if state and state not in STATE_WORDS:
        raise BadQuery(f"state must be one of {', '.join(STATE_WORDS)}")
    text = query.get("q", "").strip()[:MAX_QUERY]
    found = [n for n in nodes if not state or n["state"] == state]
    if text:
        needle = text.casefold()
        found = [n for n in found
                 if needle in n["id"].casefold() or needle in node_name(n).casefold()]
    found.sort(key=_sort_key(sort), reverse=direction == "desc")
    return found, {"sort": sort, "dir": direction, "state": state, "q": text}


def page_of(found: list[Json], raw: str) -> tuple[list[Json], int, int]:
    """(the rows of page `raw`, that page number, the number of pages)."""
    try:
        page = int(raw or "1")
    except ValueError:
        raise BadQuery("page must be a whole number") from None
    pages = max(1, math.ceil(len(found) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    return found[(page - 1) * PAGE_SIZE:page * PAGE_SIZE], page, pages


def ago(then: float | None, now: float) -> str:
    """`just now`, `5 min ago`, `3 h ago`, `2 d ago`; `never` without a time."""
    if then is None:
        return "never"
    s = max(0.0, now - then)
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{int(s // 60)} min ago"
    if s < 86400:
        return f"{int(s // 3600)} h ago"
    return f"{int(s // 86400)} d ago"


def _href(shown: Mapping[str, str], **changes: str | int) -> str:
    """This page with the query changed (defaults left out, so links stay short)."""
    merged: dict[str, str | int] = {**shown, **changes}
    kept = {k: v for k, v in merged.items() if v != DEFAULTS.get(k)}
    return "/nodes" + ("?" + urlencode(kept) if kept else "")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def sort_header(key: str, shown: Mapping[str, str]) -> str:
    """A column head that sorts by `key`; on the current sort it reverses it."""
    current = shown["sort"] == key
    direction = "desc" if current and shown["dir"] == "asc" else "asc"
    aria = ""
    if current:
        aria = f' aria-sort="{"ascending" if shown["dir"] == "asc" else "descending"}"'
    arrow = (" ▲" if shown["dir"] == "asc" else " ▼") if current else ""
    href = _href(shown, sort=key, dir=direction)
    return f'<th scope="col"{aria}><a href="{_esc(href)}">{SORT_LABELS[key]}{arrow}</a></th>'


def state_filters(nodes: list[Json], shown: Mapping[str, str]) -> str:
    """`all 833 · offline 3 · cut off 12 …`: links that show one state only."""
    counts = {state: 0 for state, _, _ in STATES}
    for n in nodes:
        counts[n["state"]] = counts.get(n["state"], 0) + 1
    items = [("", f"all {len(nodes)}")]
    items += [(state, f"{word} {counts[state]}") for state, word, _ in STATES if counts[state]]
    links = []
    for state, label in items:
        current = ' aria-current="true"' if shown["state"] == state else ""
        cls = f' class="state-{state}"' if state else ""
        links.append(f'<a href="{_esc(_href(shown, state=state))}"{current}{cls}>'
                     f"{_esc(label)}</a>")
    return " ".join(links)


def node_row(node: Json, now: float) -> str:
    """One node: state, name (to its details on the map), last heard, links, actions."""
    nid = node["id"]
    ref = quote(nid, safe="")
    name = node_name(node)
    where = node["location"]
    place = ("no location" if where is None
             else "approximate" if where.get("approximate") else "on the map")
    heard = ago(node["last_seen"], now)
    iso = ("" if node["last_seen"] is None else
           dt.datetime.fromtimestamp(node["last_seen"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    gateway = ' <span class="tag">gateway</span>' if node["gateway"] else ""
    source = source_text(node.get("source"))
    if source:  # a node that runs no agent: the bridge that speaks for it
        gateway += f' <span class="tag source">{_esc(source)}</span>'
    ident = f'<span class="id">{_esc(nid)}</span>' if name != nid else ""
    return (
        f'<tr class="row state-{_esc(node["state"])}">'
        f'<td data-label="State"><span class="pill state-{_esc(node["state"])}">'
        f'{_esc(state_word(node["state"]))}</span></td>'
        f'<td data-label="Name"><a class="name" href="/#node={ref}">{_esc(name)}</a>'
        f"{gateway}{ident}</td>"
        f'<td data-label="Last heard"><time datetime="{iso}">{heard}</time></td>'
        f'<td data-label="Links">{node["neighbours"]}</td>'
        f'<td data-label="Location">{place}</td>'
        f'<td class="actions"><a href="/#node={ref}">details</a> '
        f'<a href="/install/{ref}">installer</a> <a href="/node/{ref}">history</a></td>'
        "</tr>"
    )


def render(nodes: list[Json], query: Mapping[str, str], now: float) -> str:
    """The whole page for `query` (raises BadQuery)."""
    found, shown = select(nodes, query)
    rows, page, pages = page_of(found, query.get("page", ""))
    head = "".join(sort_header(k, shown) for k in SORTS[:2])
    head = (f"{head}{sort_header('last_seen', shown)}"
            '<th scope="col">Links</th><th scope="col">Location</th>'
            '<th scope="col"><span class="sr-only">Open</span></th>')
    first = (page - 1) * PAGE_SIZE
    counted = (f"{len(found)} of {len(nodes)} nodes" if len(found) != len(nodes)
               else f"{len(nodes)} nodes")
    if pages > 1:
        counted += f", {first + 1}–{first + len(rows)} shown"
    pager = ""
    if pages > 1:
        prev = (f'<a href="{_esc(_href(shown, page=page - 1))}">← previous</a>'
                if page > 1 else "")
        nxt = (f'<a href="{_esc(_href(shown, page=page + 1))}">next →</a>'
               if page < pages else "")
        pager = f'<nav class="pager" aria-label="Pages">{prev} page {page} of {pages} {nxt}</nav>'
    body = "".join(node_row(n, now) for n in rows)
    if not rows:
        body = '<tr><td colspan="6" class="muted">No node matches.</td></tr>'
    # the search box keeps the sort and the state filter
    hidden = "".join(f'<input type="hidden" name="{k}" value="{_esc(shown[k])}">'
                     for k in ("sort", "dir", "state") if shown[k] != DEFAULTS[k])
    return f"""{public_head("Nodes of the mesh network", "nodes.css")}
<body>
<header class="top">
  <h1>Nodes</h1>
  <a class="back" href="/">← map</a>
  <form class="filter" method="get" action="/nodes" role="search">{hidden}
    <label class="sr-only" for="q">Find a node by name or id</label>
    <input id="q" name="q" type="search" value="{_esc(shown["q"])}"
      placeholder="Name or id…" enterkeyhint="search">
    <button type="submit">Find</button>
  </form>
</header>
<main>
<p class="states">{state_filters(nodes, shown)}</p>
<p class="count" id="count">{_esc(counted)}</p>
<table class="nodes">
<thead><tr>{head}</tr></thead>
<tbody>{body}</tbody>
</table>
{pager}
</main>
</body></html>"""


async def node_list(request: web.Request) -> web.Response:
    """The node list page."""
    ctx = request.app[CTX]
    nodes = nodes_list(ctx.topology, ctx.config.privacy.coarsen_grid_deg, ctx.state_of)
    try:
        text = render(nodes, request.query, ctx.clock())
    except BadQuery as exc:
        return web.Response(status=400, text=f"Bad query: {exc}\n", content_type="text/plain")
    return web.Response(text=text, content_type="text/html")

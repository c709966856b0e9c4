"""`/nodes`: every node in one list, sortable, filterable, paged, over a real loopback
server and a topology built from real wire models (the demo-sized list and its phone
layout: tests/web/test_map_demo.py)."""

from __future__ import annotations

import re

import pytest

from meshmon.model.wire import Info, Status
from meshmon.web import nodelist
from tests.web.conftest import NOW, SECRETS, Served
from tests.web.privacy import assert_no_leaks


async def page(served: Served, query: str = "", status: int = 200) -> str:
    resp = await served.client.get("/nodes" + query)
    text = await resp.text()
    assert resp.status == status, text
    return text


def rows(text: str) -> list[tuple[str, str]]:
    """(node id, state) of each row, in order."""
    found = re.findall(r'<tr class="row state-([a-z]+)">.*?href="/#node=([^"]+)"', text)
    return [(nid, state) for state, nid in found]


async def test_lists_every_node_located_or_not_with_its_ways_onward(served: Served) -> None:
    resp = await served.client.get("/nodes")
    assert resp.content_type == "text/html"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    text = await resp.text()
    # problems first (delta never sent a status), then by name; charlie and delta have no
    # location and are listed all the same
    assert rows(text) == [("delta", "offline"), ("alpha", "online"), ("bravo", "online"),
                          ("charlie", "online")]
    for nid in ("alpha", "bravo", "charlie", "delta"):
        for href in (f"/#node={nid}", f"/install/{nid}", f"/node/{nid}"):
            assert f'href="{href}"' in text, href
    assert "alpha-roof" in text and "bravo-home" in text
    assert '<span class="pill state-offline">offline</span>' in text
    assert text.count("no location") == 2 and "approximate" in text  # bravo is private
    assert "<script" not in text  # a page without script, so it works without it
    assert_no_leaks(text, SECRETS)
    assert "192.168.7.1" not in text  # delta's "hostname" is an address: its id shows


async def test_sorts_by_state_name_and_last_heard_both_ways(served: Served) -> None:
    topo = served.ctx.topology
    topo.apply_status(Status(v=1, node="delta", online=True, ts=NOW), NOW - 3600)
    topo.nodes["charlie"].last_seen = NOW - 7200  # heard longest ago
    by_name = [nid for nid, _ in rows(await page(served, "?sort=name"))]
    assert by_name == ["alpha", "bravo", "charlie", "delta"]  # alpha-roof, bravo-home, …
    assert [nid for nid, _ in rows(await page(served, "?sort=name&dir=desc"))] == (
        by_name[::-1])
    heard = [nid for nid, _ in rows(await page(served, "?sort=last_seen"))]
    assert heard[:2] == ["charlie", "delta"]
    text = await page(served, "?sort=last_seen")
    assert 'aria-sort="ascending"' in text
    # the current sort's head reverses it; the others start in their own direction
    assert 'href="/nodes?sort=last_seen&amp;dir=desc">Last heard ▲</a>' in text
    assert 'href="/nodes?sort=name">Name</a>' in text
    assert "2 h ago" in text


async def test_filters_by_state_and_text_and_keeps_the_sort(served: Served) -> None:
    text = await page(served, "?state=offline")
    assert rows(text) == [("delta", "offline")]
    assert "1 of 4 nodes" in text
    assert '<a href="/nodes?state=offline" aria-current="true"' in text
    assert re.search(r">online 3</a>", text) and re.search(r">all 4</a>", text)
    assert [nid for nid, _ in rows(await page(served, "?q=ROOF"))] == ["alpha"]  # by name
    assert [nid for nid, _ in rows(await page(served, "?q=char"))] == ["charlie"]  # by id
    text = await page(served, "?q=nobody-at-all&sort=name")
    assert rows(text) == [] and "No node matches." in text
    # the search box carries the sort along
    assert '<input type="hidden" name="sort" value="name">' in text


@pytest.mark.parametrize("query, says", [
    ("?sort=uptime", "sort must be one of state, name, last_seen"),
    ("?dir=up", "dir must be asc or desc"),
    ("?state=down", "state must be one of"),
    ("?page=two", "page must be a whole number"),
])  # fmt: skip
async def test_a_query_it_does_not_understand_is_a_clear_400(served: Served, query: str,
                                                             says: str) -> None:
    assert says in await page(served, query, status=400)


async def test_pages_a_long_list(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodelist, "PAGE_SIZE", 3)
    first = await page(served, "?sort=name")
    assert [nid for nid, _ in rows(first)] == ["alpha", "bravo", "charlie"]
    assert "4 nodes, 1–3 shown" in first and "page 1 of 2" in first
    assert 'href="/nodes?sort=name&amp;page=2">next →</a>' in first
    second = await page(served, "?sort=name&page=2")
    assert [nid for nid, _ in rows(second)] == ["delta"]
    assert "← previous" in second and "next →" not in second
    assert rows(await page(served, "?sort=name&page=99")) == rows(second)  # the last one


async def test_names_from_the_network_are_text(served: Served) -> None:
    hostile = '<img src=x onerror="alert(1)">&amp;'
    served.ctx.core.apply(Info.model_validate(
        {"v": 1, "node": "echo", "hostname": hostile}), NOW)
    text = await page(served, "?q=echo")
    assert "<img" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;amp;" in text
    text = await page(served, "?q=" + "%3Cimg")
    assert 'value="&lt;img"' in text and [nid for nid, _ in rows(text)] == ["echo"]

"""The node documents behind OpenWiFiMap's newer view.

Since 2021 the API's `view_nodes_spatial` rows carry only hostname, position and times;
a node's links are in its document, `APIURL/db/ID` (what Berlin's own map scripts
fetch). When rows come without `links`, the source fetches those documents — a few at
a time, and again only when the row's `mtime` says the document changed, so a poll after
the first asks for the nodes that reported since. A document that cannot be had keeps its
previous version (asked for again next poll); one never had leaves its node without links.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

from meshmon_bridge.ratelog import RateLimitedLog
from meshmon_bridge.source import SourceError
from meshmon_bridge.sources.freifunk.fetch import read_json
from meshmon_bridge.sources.freifunk.openwifimap import documents, rows_of, without_links

log = logging.getLogger(__name__)
_rate_log = RateLimitedLog(log)
DOC_FETCHES = 8
"""documents asked for at once (Berlin's own scripts ask 50 at once of the same API)"""


def document_url(view_url: str, doc_id: str) -> str | None:
    """`…/db/ID` beside an http(s) view URL (`…/view_nodes_spatial?bbox=…`); None for
    files, which have no documents beside them."""
    parts = urllib.parse.urlsplit(view_url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    base = parts.path.rsplit("/", 1)[0]
    path = f"{base}/db/{urllib.parse.quote(doc_id, safe='')}"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class DocumentCache:
    """The documents of one view's link-less rows, kept while their `mtime` holds."""

    def __init__(self, view_url: str, timeout_s: float) -> None:
        self.view_url = view_url
        self.timeout_s = timeout_s
        self._docs: dict[str, tuple[Any, dict[str, Any]]] = {}
        """document id → (the row's mtime when fetched, the document)"""

    async def documents(self, view: Any) -> dict[str, dict[str, Any]]:
        """The whole documents of the view's rows that carry no links (id → document)."""
        docs = documents(rows_of(view, self.view_url))
        mtimes = {key: doc.get("mtime") for key, doc in docs}
        wanted = set(without_links(docs))
        if wanted and document_url(self.view_url, "x") is None:
            _rate_log.log(logging.WARNING, self.view_url, "%s: %d rows carry no links and a "
                          "file has no node documents beside it: give the API's URL",
                          self.view_url, len(wanted))
        if not wanted or document_url(self.view_url, "x") is None:
            self._docs.clear()
            return {}
        for key in set(self._docs) - wanted:
            del self._docs[key]
        stale = sorted(k for k in wanted if k not in self._docs or self._docs[k][0] != mtimes[k])
        slots = asyncio.Semaphore(DOC_FETCHES)

        async def fetch(key: str) -> None:
            url = document_url(self.view_url, key)
            assert url is not None
            async with slots:
                try:
                    doc = await read_json(url, self.timeout_s)
                except SourceError as exc:
                    _rate_log.log(logging.WARNING, self.view_url, "%s: a node document "
                                  "not fetched (its node keeps the links it had): %s",
                                  self.view_url, exc)
                    return
            if isinstance(doc, dict):
                self._docs[key] = (mtimes[key], doc)

        await asyncio.gather(*(fetch(key) for key in stale))
        return {key: doc for key, (_, doc) in self._docs.items()}

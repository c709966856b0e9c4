"""The `<head>` the public pages (map, node list, history pages) share."""

from __future__ import annotations

import html

from meshmon import __version__


def public_head(title: str, page_css: str, vendor_css: str = "", description: str = "") -> str:
    """From `<!doctype html>` to `</head>`: viewport for phones, no favicon request, a
    vendored library's stylesheet (unversioned), the shared palette and the page's own
    stylesheet (`/static/PAGE_CSS`, versioned so an upgrade is not served from cache)."""
    version = html.escape(__version__)
    lines = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">',
        f"<title>{html.escape(title)}</title>",
    ]
    if description:
        lines.append(f'<meta name="description" content="{html.escape(description)}">')
    lines.append('<link rel="icon" href="data:,">')
    if vendor_css:
        lines.append(f'<link rel="stylesheet" href="{vendor_css}">')
    lines += [f'<link rel="stylesheet" href="/static/palette.css?v={version}">',
              f'<link rel="stylesheet" href="/static/{page_css}?v={version}">',
              "</head>"]
    return "\n".join(lines)

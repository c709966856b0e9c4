"""(being written)"""

from __future__ import annotations

from aiohttp import web


def register(app: web.Application) -> None:
    """Add this module's routes."""

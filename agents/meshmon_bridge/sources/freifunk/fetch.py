"""Read a JSON document from an http(s) URL, a `file://` URL or a plain path.

Blocking I/O runs in a worker thread; every failure is a `SourceError` naming the place.
Gzipped bodies and files (by their magic bytes) are inflated.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Any

from meshmon_bridge import __version__
from meshmon_bridge.source import SourceError

MAX_BYTES = 256 * 1024 * 1024
"""a map file larger than this is refused (yanic's meshviewer.json of 5,000 nodes is ~5 MB)"""
USER_AGENT = f"meshmon-bridge/{__version__}"


def resolve(location: str, base_dir: Path) -> str:
    """An http(s)/file URL as it is; a plain path made absolute against `base_dir`."""
    scheme = urllib.parse.urlsplit(location).scheme.lower()
    if scheme in ("http", "https", "file"):
        return location
    path = Path(location).expanduser()
    return str(path if path.is_absolute() else base_dir / path)


async def read_json(location: str, timeout_s: float) -> Any:
    """The decoded JSON at `location` (see `resolve`)."""
    return decode_json(await asyncio.to_thread(_read, location, timeout_s), location)


def load_json_file(path: Path) -> Any:
    """The decoded JSON of a local file (gzipped or not); SourceError if it is not JSON."""
    return decode_json(_read(str(path), 0), str(path))


def decode_json(raw: bytes, where: str) -> Any:
    """JSON from bytes that may be gzipped; SourceError naming `where` otherwise."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise SourceError(f"{where}: broken gzip data: {exc}") from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{where}: not JSON: {str(exc)[:200]}") from None


def _read(location: str, timeout_s: float) -> bytes:
    parts = urllib.parse.urlsplit(location)
    if parts.scheme.lower() in ("http", "https"):
        return _download(location, timeout_s)
    path = Path(urllib.parse.unquote(parts.path)) if parts.scheme.lower() == "file" \
        else Path(location)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise SourceError(f"{path}: larger than {MAX_BYTES} bytes")
    return data


def _download(url: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(
        url, headers={"User-Agent": USER_AGENT, "Accept": "application/json",
                      "Accept-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            data = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"{url}: cannot fetch: {reason}") from None
    if len(data) > MAX_BYTES:
        raise SourceError(f"{url}: larger than {MAX_BYTES} bytes")
    return data

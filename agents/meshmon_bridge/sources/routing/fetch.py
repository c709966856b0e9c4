"""Reading what a routing daemon shows: an HTTP(S) URL, a file, or a command's output.

Each read has a timeout and a size bound; every failure is a `SourceError` that says
what was read and why it failed (the daemon is down, the file is missing, the command
exited non-zero), never an exception out of the bridge's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

from meshmon_bridge.source import SourceError

MAX_BYTES = 64 * 1024 * 1024
"""bigger than any mesh's topology dump; bounds memory against a runaway input"""


async def read_url(url: str, timeout_s: float) -> bytes:
    """GET `url` (http or https) and return the body."""
    return await asyncio.to_thread(_get, url, timeout_s)


def _get(url: str, timeout_s: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "meshmon-bridge"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SourceError(f"{url}: {reason}") from None
    return _bounded(body, url)


async def read_file(path: Path) -> bytes:
    """The contents of `path`."""
    try:
        with path.open("rb") as f:
            body = await asyncio.to_thread(f.read, MAX_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None
    return _bounded(body, str(path))


async def run_command(command: str, timeout_s: float) -> bytes:
    """The standard output of `command` (run by /bin/sh, so pipes and ssh work)."""
    try:
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout ends its children too
        )
    except OSError as exc:
        raise SourceError(f"command {command!r}: {exc.strerror or exc}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise SourceError(f"command {command!r}: no answer within {timeout_s:g} s") from None
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise SourceError(f"command {command!r} exited with {proc.returncode}: {tail[0][:200]}")
    return _bounded(out, f"command {command!r}")


def _bounded(body: bytes, what: str) -> bytes:
    if len(body) > MAX_BYTES:
        raise SourceError(f"{what}: more than {MAX_BYTES // 2**20} MiB, not read")
    return body

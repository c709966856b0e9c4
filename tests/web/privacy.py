"""A scanner for things public output must never contain (DESIGN.md, HTTP)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from typing import Any

MAC_RE = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}(?![0-9a-f])", re.I
)
"""`aa:bb:cc:dd:ee:ff`, `aa-bb-…`, and the bare 12-hex form `aabbccddeeff`"""
_IP_CANDIDATE_RE = re.compile(r"[0-9a-f:.]*[:.][0-9a-f:.]*", re.I)
_EMAIL_RE = re.compile(r"(?<![^@\s])[^@\s]+@[^@\s]+\.[a-z]{2,}", re.I)
"""an e-mail address; tried only where a word starts (after a space or `@`, which finds the
same addresses): from every position, a long text without spaces took quadratic time"""


def _strings(doc: Any) -> Iterator[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from _strings(item)


def _ip_addresses(text: str) -> list[str]:
    found = []
    for candidate in _IP_CANDIDATE_RE.findall(text):
        token = candidate.strip(".:") if candidate not in ("::",) else candidate
        for t in {candidate, token}:
            try:
                ipaddress.ip_address(t)
            except ValueError:
                continue
            found.append(t)
            break
    return found


def leaks(doc: Any, secrets: Iterable[str] = ()) -> list[str]:
    """What in `doc` looks like a MAC, IPv4/IPv6 address, e-mail or one of `secrets`."""
    secrets = [s.lower() for s in secrets]
    problems: list[str] = []
    for text in _strings(doc):
        if m := MAC_RE.search(text):
            problems.append(f"MAC {m.group(0)!r} in {text!r}")
        for ip in _ip_addresses(text):
            problems.append(f"IP {ip!r} in {text!r}")
        if m := _EMAIL_RE.search(text):
            problems.append(f"e-mail {m.group(0)!r} in {text!r}")
        low = text.lower()
        problems.extend(f"secret {s!r} in {text!r}" for s in secrets if s in low)
    return problems


def assert_no_leaks(doc: Any, secrets: Iterable[str] = ()) -> None:
    """Fail with every leak found."""
    problems = leaks(doc, secrets)
    assert not problems, "public output leaks:\n  " + "\n  ".join(problems)

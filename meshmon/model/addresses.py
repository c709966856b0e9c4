"""What counts as an address (MAC, IP, e-mail) in text that may end up in public.

Public output never shows owner contacts, MAC or IP addresses (DESIGN.md): free text from
agents is checked with `safe_text`, and node ids — public by design — must not look like
an address (`looks_like_address`), which the wire contract enforces at ingest.
"""

from __future__ import annotations

import re
from functools import lru_cache

_MAC = r"(?<![0-9a-f])[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}(?![0-9a-f])"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])"
_IPV6 = r"(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{0,4}|(?:[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4})?"
_EMAIL = r"[^@\s]+@[^@\s]+\.[a-z]{2,}"
UNSAFE_TEXT_RE = re.compile("|".join((_MAC, _IPV4, _IPV6, _EMAIL)), re.IGNORECASE)
"""What free text from agents must not contain to be shown in public."""
ADDRESS_RE = re.compile("|".join((_MAC, _IPV4, _IPV6)), re.IGNORECASE)
MAC_ONLY_RE = re.compile(rf"^{_MAC}$", re.IGNORECASE)


@lru_cache(maxsize=65536)
def safe_text(value: str | None) -> str | None:
    """The text if it shows no MAC, IP or e-mail address, else None."""
    if value is None or UNSAFE_TEXT_RE.search(value):
        return None
    return value


@lru_cache(maxsize=65536)
def looks_like_address(node_id: str) -> bool:
    """True when a node id holds a MAC or an IP address (it would leak in public)."""
    return ADDRESS_RE.search(node_id) is not None


def mac_from_id(text: str) -> str | None:
    """`f81a67a5e9c1` / `f8-1a-…` / `f8:1a:…` as `f8:1a:67:a5:e9:c1`; None if not a MAC."""
    if not MAC_ONLY_RE.match(text):
        return None
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))

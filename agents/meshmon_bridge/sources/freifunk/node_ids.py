"""Public node ids for nodes that a source knows by a private key (a MAC, an IP, a doc id).

Node ids are public, Gluon's node ids are MAC addresses, OLSR's are IP addresses: none of
them may become a node id. The rule (docs/freifunk.md, "Node ids"):

1. A key that is already a valid public id (the NODE pattern, no MAC or IP inside, e.g.
   a meshmon export's own ids) is kept as it is.
2. Otherwise the id is the hostname, slugged: MAC-, IPv4- and IPv6-looking runs removed,
   umlauts transliterated, lower case, `[a-z0-9_.-]`, at most 48 characters.
3. A hostname that held an address (Gluon's default `ffhb-f81a67a601ea`) or that is empty
   gets a tag: `-` and 4 characters of a keyed hash of the key (the bridge's id key), so
   unnamed nodes of one community do not collide and the id tells nothing of the MAC.
4. When the id is taken by another key, the newcomer gets the tag (longer tags, then a
   counter, if even that is taken). Newcomers of one round are placed in a stable order
   (first seen, then tag), so a fresh bridge gives the same ids for the same input.
5. Once given, an id stays with its key while the bridge runs, also when the node is
   renamed; with `state_file` it stays across restarts too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from meshmon_agent.config import ADDRESS_IN_ID_RE, NODE_ID_RE

log = logging.getLogger(__name__)

SLUG_MAX = 48
_STEM_MAX = 50
_HEX = "0-9a-fA-F"
_ADDRESS_IN_TEXT = re.compile(
    rf"(?<![{_HEX}])[{_HEX}]{{2}}([:.-]?)[{_HEX}]{{2}}(?:\1[{_HEX}]{{2}}){{4}}(?![{_HEX}])"  # MAC
    r"|(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"  # IPv4
    rf"|[{_HEX}]{{0,4}}(?::[{_HEX}]{{0,4}}){{2,7}}"  # IPv6 (two colons at least)
)
_NOT_SLUG = re.compile(r"[^a-z0-9_.-]+")
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                           "ß": "ss"})


def without_addresses(text: str) -> str:
    """`text` with MAC-, IPv4- and IPv6-looking runs cut out (spaces tidied)."""
    return " ".join(_ADDRESS_IN_TEXT.sub(" ", text).split())


def slug(hostname: str) -> tuple[str, bool]:
    """(the hostname as an id part, whether an address was removed from it)."""
    text, removed = hostname, 0
    while True:  # slugging can make an address (`ca fe ba be de ad` → `ca-fe-ba-be-de-ad`)
        text, found = _ADDRESS_IN_TEXT.subn(" ", text)
        removed += found
        text = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
        text = text.encode("ascii", "ignore").decode().lower()
        text = re.sub(r"-{2,}", "-", _NOT_SLUG.sub("-", text)).strip("-._")
        text = text[:SLUG_MAX].rstrip("-._")
        if not _ADDRESS_IN_TEXT.search(text):
            return text, removed > 0


def is_public_id(text: str) -> bool:
    """True when `text` can be published as a node id as it is."""
    return bool(NODE_ID_RE.match(text)) and not ADDRESS_IN_ID_RE.search(text)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node a source wants an id for."""

    key: str
    """the source's own id for it (private: a MAC, an IP, a document id)"""
    hostname: str | None
    first_seen: float | None = None
    """when the source first saw it (orders newcomers that want the same id)"""


class PublicIds:
    """Gives and remembers public ids; one per source."""

    def __init__(self, prefix: str = "", key: bytes = b"", state_file: Path | None = None
                 ) -> None:
        self.prefix = prefix
        self._key = hashlib.sha256(key).digest() if key else b""
        self.state_file = state_file
        self._ids: dict[str, str] = {}
        self._taken: dict[str, str] = {}
        """id → key holding it"""
        if state_file is not None:
            self._load(state_file)

    def get(self, key: str) -> str | None:
        """The id given to `key`, if any."""
        return self._ids.get(key)

    def assign(self, candidates: Iterable[Candidate]) -> dict[str, str]:
        """Ids for every candidate (key → id); keys seen before keep theirs."""
        out: dict[str, str] = {}
        newcomers: list[tuple[float, str, Candidate]] = []
        for cand in candidates:
            known = self._ids.get(cand.key)
            if known is not None:
                out[cand.key] = known
            elif cand.key not in out:
                order = cand.first_seen if cand.first_seen is not None else math.inf
                newcomers.append((order, self._tag(cand.key, 8), cand))
                out[cand.key] = ""
        newcomers.sort(key=lambda item: (item[0], item[1]))
        for _, _, cand in newcomers:
            out[cand.key] = self._give(cand)
        if newcomers and self.state_file is not None:
            self._save(self.state_file)
        return out

    def _give(self, cand: Candidate) -> str:
        if is_public_id(cand.key) and len(self.prefix) + len(cand.key) <= 64:
            base, tagged = cand.key, False
        else:
            name, removed = slug(cand.hostname or "")
            base, tagged = name or "node", removed or not name
        base = self.prefix + base
        stem = base[:_STEM_MAX].rstrip("-._")  # room for a tag and a counter within 64
        if not is_public_id(f"{stem}-a"):  # e.g. a prefix and a slug that meet as an address
            stem = self.prefix + "node" if is_public_id(self.prefix + "node-a") else "node"
        choices = [] if tagged else [base]
        choices += [f"{stem}-{self._tag(cand.key, n)}" for n in (4, 6, 8)]
        for choice in choices:
            if self._free(choice):
                return self._keep(cand.key, choice)
        n = 2
        while not self._free(f"{choices[-1]}-{n}"):
            n += 1
        return self._keep(cand.key, f"{choices[-1]}-{n}")

    def _free(self, node_id: str) -> bool:
        return node_id not in self._taken and is_public_id(node_id)

    def _keep(self, key: str, node_id: str) -> str:
        self._ids[key] = node_id
        self._taken[node_id] = key
        return node_id

    def _tag(self, key: str, length: int) -> str:
        digest = hashlib.blake2b(key.lower().encode(), key=self._key, digest_size=10).digest()
        return base64.b32encode(digest).decode().lower()[:length]

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read the node id state (%s); starting afresh", path, exc)
            return
        ids = data.get("ids") if isinstance(data, dict) else None
        for key, node_id in (ids or {}).items():
            if isinstance(key, str) and isinstance(node_id, str) and self._free(node_id):
                self._keep(key, node_id)

    def _save(self, path: Path) -> None:
        # written whole and renamed into place: a crash leaves the old file, never half
        text = json.dumps({"version": 1, "ids": self._ids}, indent=0, sort_keys=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("%s: cannot save the node id state: %s", path, exc)

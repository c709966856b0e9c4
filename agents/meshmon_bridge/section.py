"""What every config table of the bridge shares (the bridge's own and each source kind's):
unknown keys are errors, node ids are public. Source kinds import this, not `config.py`
(which imports the source kinds' registry)."""

from __future__ import annotations

from meshmon_agent.config import ADDRESS_IN_ID_RE, NODE_ID_RE
from pydantic import BaseModel, ConfigDict


def check_node_id(value: str) -> str:
    """The id if it can be a public node id (pattern, no MAC/IP inside); else ValueError."""
    if not NODE_ID_RE.match(value):
        raise ValueError(f"{value!r} is not [A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}")
    if ADDRESS_IN_ID_RE.search(value):
        raise ValueError(f"{value!r} holds a MAC or IP address; node ids are public, so the "
                         "collector refuses it: give a name")
    return value


class Section(BaseModel):
    """Base of every config table: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

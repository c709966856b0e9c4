"""Agent tests: make `meshmon_agent` importable even where the editable install lacks it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

AGENTS = Path(__file__).resolve().parents[2] / "agents"

if importlib.util.find_spec("meshmon_agent") is None:  # pragma: no cover - install-dependent
    # pyproject's packages.find does not see agents/ yet; see docs/agent.md
    sys.path.insert(0, str(AGENTS))

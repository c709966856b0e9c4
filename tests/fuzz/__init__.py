"""Fuzzing of the collector's outside surfaces with hypothesis (issue 11 §1): MQTT topics and
payloads (through `wire.decode` and through a real broker into a running collector), TOML
configs, and every HTTP route.

Budgets come from the hypothesis profile loaded in `tests/conftest.py`: "ci" by default,
`HYPOTHESIS_PROFILE=long` for a longer local run (`scaled` multiplies each test's CI count).
"""

from __future__ import annotations

from hypothesis import settings

CI_EXAMPLES = 100
"""max_examples of the "ci" profile: `scaled` is relative to it"""


def scaled(ci: int) -> int:
    """`ci` examples under the CI profile, more under a profile with a larger budget."""
    return max(ci, ci * settings.default.max_examples // CI_EXAMPLES)

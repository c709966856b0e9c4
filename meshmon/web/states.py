"""The words for a node's state, one per state, used on every public page.

The API says `unreachable`; people read "cut off" on the badge, in the legend, the
outage banner, the details and the node list alike. The order is the order of concern:
problems first. The map draws in the reverse order, so that a failed node is never
hidden under a healthy one.
"""

from __future__ import annotations

STATES: tuple[tuple[str, str, str], ...] = (
    # (state in the API, the word shown, what it means: the legend's explanation)
    ("offline", "offline", "not heard from"),
    ("unreachable", "cut off", "no path to a gateway: behind an outage"),
    ("flapping", "flapping", "going up and down"),
    ("silent", "agent silent", "up (its neighbours hear it), its agent quiet"),
    ("unmonitored", "unmonitored", "its bridge is silent: state unknown"),
    ("online", "online", "reporting"),
)
STATE_WORDS = {state: word for state, word, _ in STATES}
CONCERN = {state: rank for rank, (state, _, _) in enumerate(STATES)}
"""state → 0 for the most worrying; unknown states come last"""


def state_word(state: str) -> str:
    """The word shown for an API state (the state itself when it is not known here)."""
    return STATE_WORDS.get(state, state)

"""Where a device's GETBULK walk starts its cursors, from what its last walk found.

A device mostly answers a poll with the same objects as the poll before. Giving every
walked column its own varbind costs a varbind asked and an object past its end per column,
and GETBULK gives every varbind of a request the same repetitions: a 1-row column walked
beside a 20-row one gets 20 objects of which 19 are not its own. So a device remembers
what its agent returned (`WalkMemory`): the objects under each root, and which object the
agent returned after each. Objects that the agent returns one right after another form a
run (the columns of a table a profile reads side by side, small tables that follow each
other); a run is read by cursors that each cover the same number of its objects, so that
one repetition count fits them all, and each cursor reads one object past its part to see
that nothing new lies in between. Whatever changed since — rows added anywhere, removed,
a table that grew — a cursor that has not got past its part goes on in the next request,
so a walk reads exactly what a walk without memory would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

Oid = tuple[int, ...]

COST_REQUEST = 10.0
"""what one more request costs the bridge, in answered varbinds (pysnmp, measured: about
0.9 ms a request and 0.085 ms a varbind answered, 0.06 ms a varbind asked)"""
COST_ASKED = 0.7
"""what a varbind asked costs next to one answered"""


class Subtrees:
    """A set of disjoint roots; tells which one an OID lies under."""

    def __init__(self, roots: Iterable[Oid]) -> None:
        self.roots = frozenset(roots)
        self._lengths = sorted({len(r) for r in self.roots})

    def root_of(self, name: Oid) -> Oid | None:
        """The root `name` lies under, or None."""
        for length in self._lengths:
            if name[:length] in self.roots:
                return name[:length]
        return None


@dataclass
class Cursor:
    """One varbind of the walk: asks for the objects after `at`."""

    at: Oid
    roots: frozenset[Oid]
    """the roots of its run: a cursor without `limit` ends at the first object outside them"""
    limit: Oid | None = None
    """the last object of its part: it ends once it got past it (later cursors cover what
    follows)"""
    done: bool = False

    def step(self, name: Oid, root: Oid | None) -> None:
        """The agent's next object `name` (under `root`, if any) for this cursor."""
        self.at = name
        if self.limit is not None:
            self.done = name > self.limit
        else:
            self.done = root not in self.roots


@dataclass
class WalkMemory:
    """What the last walk of a device's roots found (see the module docstring)."""

    known: dict[Oid, list[Oid]] = field(default_factory=dict)
    """root → the objects under it at its last walk, in order"""
    after: dict[Oid, Oid] = field(default_factory=dict)
    """object → the object the agent returned after it"""

    def plan(self, tree: Subtrees, roots: list[Oid], scalars: int, budget: int,
             max_repetitions: int) -> tuple[list[Cursor], int | None]:
        """Cursors to walk `roots` and their repetitions; None when nothing is known of any
        root yet (then one cursor per root, and the repetitions shared out per request)."""
        fresh = [Cursor(r, frozenset((r,))) for r in roots if not self.known.get(r)]
        if len(fresh) == len(roots) or min(budget, max_repetitions) < 2:
            return [Cursor(r, frozenset((r,))) for r in roots], None
        runs = self._runs(tree, roots)
        part = _best_part(runs, len(fresh), scalars, budget, min(budget, max_repetitions))
        cursors = fresh
        for start, run in runs:
            run_roots = frozenset(r for o in run if (r := tree.root_of(o)) is not None)
            for offset in range(0, len(run), part):
                last = offset + part >= len(run)
                cursors.append(Cursor(start if offset == 0 else run[offset - 1], run_roots,
                                      None if last else run[offset + part - 1]))
        return cursors, part + 1

    def _runs(self, tree: Subtrees, roots: list[Oid]) -> list[tuple[Oid, list[Oid]]]:
        """The known objects of `roots` cut where the agent did not return one right after
        the other; each run with where its first cursor starts (its root when the run begins
        the root, else the object before it)."""
        objects = sorted({o for r in roots for o in self.known.get(r, ())})
        runs: list[tuple[Oid, list[Oid]]] = []
        for i, name in enumerate(objects):
            if i and self.after.get(objects[i - 1]) == name:
                runs[-1][1].append(name)
                continue
            before = objects[i - 1] if i else None
            root = tree.root_of(name) or name[:-1]
            same_root = before is not None and tree.root_of(before) == root
            runs.append((before if before is not None and same_root else root, [name]))
        return runs

    def learn(self, found: dict[Oid, list[Oid]], after: dict[Oid, Oid]) -> None:
        """Remember what a walk found under each of its roots, and the order it came in."""
        for root, names in found.items():
            self.known[root] = sorted(set(names))
        self.after.update(after)
        alive = {o for names in self.known.values() for o in names}
        self.after = {o: n for o, n in self.after.items() if o in alive}

    def count(self, root: Oid) -> int:
        """Objects under `root` at its last walk."""
        return len(self.known.get(root, ()))


def _best_part(runs: list[tuple[Oid, list[Oid]]], fresh: int, scalars: int, budget: int,
               most: int) -> int:
    """Objects per cursor (its repetitions less the one past its part) at the lowest cost:
    requests, varbinds asked and varbinds answered, in answered varbinds."""
    lengths = [len(run) for _, run in runs]
    best, best_cost = 1, math.inf
    for part in range(1, most):
        cursors = fresh + sum(math.ceil(n / part) for n in lengths)
        answered = scalars + cursors * (part + 1)
        cost = (COST_REQUEST * math.ceil(answered / budget)
                + COST_ASKED * (scalars + cursors) + answered)
        if cost < best_cost:
            best, best_cost = part, cost
    return best

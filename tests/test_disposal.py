"""Large garbage freed by the disposal thread a slice at a time (`meshmon.disposal`): what
the containers held is freed, and another thread keeps running meanwhile."""

from __future__ import annotations

import gc
import time
import weakref
from collections import deque

from meshmon.disposal import Disposer, empty


class Held:
    """An object whose freeing a weak reference shows."""

    __slots__ = ("__weakref__",)


def test_empty_frees_what_each_kind_of_container_held() -> None:
    held = [Held() for _ in range(4 * 2500)]
    refs = [weakref.ref(h) for h in held]
    containers = (list(held[:2500]), deque(held[2500:5000]),
                  {i: h for i, h in enumerate(held[5000:7500])}, set(held[7500:]))
    del held
    for container in containers:
        empty(container)
        assert not container
    assert all(ref() is None for ref in refs)


def big_dict(n: int) -> dict[int, tuple[Held, list[int]]]:
    return {i: (Held(), [i]) for i in range(n)}


def test_another_thread_runs_while_the_disposer_frees_a_large_dict() -> None:
    n = 600_000
    gc.disable()  # (a collection would be a pause of its own)
    try:
        once = big_dict(n)
        t0 = time.perf_counter()
        once.clear()  # freed in one C call: nothing else runs meanwhile
        in_one_go = time.perf_counter() - t0

        garbage = big_dict(n)
        last_ref = weakref.ref(garbage[n - 1][0])
        disposer = Disposer("test-disposal")
        longest = 0.0
        disposer.dispose(garbage)
        del garbage
        last = time.perf_counter()
        deadline = last + 30
        while last_ref() is not None and last < deadline:
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now
    finally:
        gc.enable()
    assert last_ref() is None, "the disposer did not free the dict"
    # this thread waited at most a switch interval or so at a time, never the whole free
    assert longest < in_one_go / 3, (longest, in_one_go)

"""Heavy work off the event loop: one piece at a time, with the cyclic collector paused.

A large body's validation, a batch's appraisals and their serialisation run in worker
threads, so that the event loop stays free for other requests. But they are Python (and
pydantic) work that holds the GIL, and the loop's thread needs the GIL back at every turn
(figures: docs/operations/reliability.md, ``uv run python -m benchmarks.reliability``):

- one piece runs at a time: several at once take no longer in all (one core's worth of
  the GIL either way), but the loop would wait behind all of them and each batch's
  objects would be alive together; one at a time, the loop competes with one thread and
  the others wait holding only their bodies' bytes (bounded by the budget in flight);
- a batch's hundreds of thousands of objects would set off full collections of the cyclic
  garbage collector, each walking all of them while holding the GIL. The work makes no
  reference cycles (reference counting frees all of it), so the collector is paused while
  a piece runs, and the GIL is never held much longer than the largest single pydantic
  call. Between pieces the collector runs as usual, on everything allocated meanwhile.
"""

import gc
import threading
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio
from anyio import to_thread

from app.allocator import return_freed_memory

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Pieces of heavy work at once.
LANES = 1


class HeavyWork:
    """The app's worker-thread lane for heavy work: ``run`` waits for a free lane."""

    def __init__(self, lanes: int = LANES) -> None:
        self._limiter = anyio.CapacityLimiter(lanes)

    async def run(self, function: Callable[[*Ts], T], *args: *Ts) -> T:
        """``function(*args)`` in a worker thread, once a lane is free."""
        return await to_thread.run_sync(_collector_paused, function, *args, limiter=self._limiter)


_lock = threading.Lock()
_running = 0  # pieces running with the collector paused
_resume = False  # whether the collector was on when the first of them started


def _collector_paused(function: Callable[[*Ts], T], *args: *Ts) -> T:
    """``function(*args)`` with automatic cyclic collection off (unless something else
    turned it off: then it stays so)."""
    global _running, _resume  # the collector is one per process, too
    with _lock:
        if _running == 0:
            _resume = gc.isenabled()
            gc.disable()
        _running += 1
    try:
        return function(*args)
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _resume:
                gc.enable()
        # What the piece freed goes back to the system, not kept by this thread's arena.
        return_freed_memory()

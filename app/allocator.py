"""Handing freed memory back to the system, after the steps that free a lot of it.

glibc keeps the pages a process frees for its next allocations. After building an ONNX
Runtime session (which peaks at about three times what the session keeps) or dropping a
replaced bundle, that is tens of MB a worker holds and never uses again
(``uv run python -m benchmarks.memory`` and ``benchmarks.reliability``).
"""

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


def return_freed_memory() -> None:
    """Give the allocator's free pages back to the system (``malloc_trim``); elsewhere
    than glibc, nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once: ``find_library`` runs ``ldconfig`` (a
    process), and every bundle load, reload and explainer build hands memory back."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim

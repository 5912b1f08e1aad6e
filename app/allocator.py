"""Handing freed memory back to the system, after the steps that free a lot of it.

glibc keeps the pages a process frees for its next allocations. After building an ONNX
Runtime session (which peaks at about three times what the session keeps) or dropping a
replaced bundle, that is tens of MB a worker holds and never uses again
(``uv run python -m benchmarks.memory`` and ``benchmarks.reliability``).
"""

import ctypes
import ctypes.util


def return_freed_memory() -> None:
    """Give the allocator's free pages back to the system (``malloc_trim``); elsewhere
    than glibc, nothing."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        return

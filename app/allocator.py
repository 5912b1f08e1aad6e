"""Handing freed memory back to the system, after the steps that free a lot of it.

glibc keeps the pages a process frees for its next allocations. After building an ONNX
Runtime session (which peaks at about three times what the session keeps) or dropping a
replaced bundle, that is tens of MB a worker holds and never uses again
(``uv run python -m benchmarks.memory`` and ``benchmarks.reliability``).
"""

import ctypes
import ctypes.util
import os
from functools import cache

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
# glibc's own starting value: blocks from this size get pages of their own.
MMAP_THRESHOLD_BYTES = 128 * 1024


def keep_large_blocks_apart() -> None:
    """Give every block of ``MMAP_THRESHOLD_BYTES`` or more pages of its own, unmapped
    when it is freed, unless ``MALLOC_MMAP_THRESHOLD_`` or ``GLIBC_TUNABLES``'s
    ``glibc.malloc.mmap_threshold`` says otherwise; elsewhere than glibc, nothing.

    glibc raises that threshold (up to 32 MiB) each time such a block is freed, so a
    batch's numpy arrays and bodies come from the heap after the first batch, and a few
    small survivors among them keep the freed space: a worker kept ~70 MB more after a
    burst of large batches, with no measurable cost in speed either way
    (``uv run python -m benchmarks.reliability --burst``)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "glibc.malloc.mmap_threshold" in tunables:
        return
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def return_freed_memory() -> None:
    """Give the allocator's free pages back to the system (``malloc_trim``); elsewhere
    than glibc, nothing."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@cache
def _libc() -> ctypes.CDLL | None:
    """glibc, looked up once (``find_library`` runs ``ldconfig``, a process, and every
    bundle load, reload and explainer build hands memory back); None elsewhere."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim, libc.mallopt  # noqa: B018  # both glibc's
    except (OSError, AttributeError):  # not glibc
        return None
    return libc

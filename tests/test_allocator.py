"""Large blocks get pages of their own, handed back to the system when freed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.allocator import _libc

# In a fresh interpreter: free a 4 MiB block (glibc then raises its threshold to 4 MiB),
# and count the blocks with pages of their own while a 512 KiB one is held.
PROBE = """
import ctypes, sys
from app.allocator import keep_large_blocks_apart
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(4 << 20))
if sys.argv[1] == "kept-apart":
    keep_large_blocks_apart()
before = libc.mallinfo2().hblks
block = libc.malloc(512 << 10)
print(libc.mallinfo2().hblks - before)
"""


def _own_pages(mode: str, env: dict[str, str] | None = None) -> int:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    return int(run.stdout)


@pytest.mark.skipif(_libc() is None, reason="glibc's allocator only")
def test_a_large_block_gets_its_own_pages_after_a_larger_one_was_freed() -> None:
    assert _own_pages("as glibc does") == 0  # from the heap, where survivors pin it
    assert _own_pages("kept-apart") == 1


@pytest.mark.skipif(_libc() is None, reason="glibc's allocator only")
def test_an_operators_threshold_is_left_alone() -> None:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(8 << 20)}
    assert _own_pages("kept-apart", env) == 0


@pytest.mark.skipif(_libc() is None, reason="glibc's allocator only")
def test_a_threshold_set_through_glibc_tunables_is_left_alone() -> None:
    env = {**os.environ, "GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={8 << 20}"}
    assert _own_pages("kept-apart", env) == 0

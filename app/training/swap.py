"""Writes a bundle beside its folder, checks it, and swaps it in so that a kill at any
instant leaves a loadable bundle where the service looks for one.

The files go into a staging folder beside the target (same file system), each flushed to
disk; the caller's check then loads the staged bundle as the service would. Only then are
the two folders exchanged in one step, ``renameat2(RENAME_EXCHANGE)`` (Linux 3.15, glibc
2.28): before it the target holds the old bundle, after it the new one, never neither.
The staging folder, now holding the old bundle, is removed last.

Where the exchange is not available (another system, an older kernel or C library, a file
system without it), the target is renamed away and the staging folder renamed in, as
before: a kill between those two renames leaves no bundle, and training says so.

Trainings writing beside the same folder take turns (an advisory lock on the parent
folder); each first removes what a killed one left (``.<name>.tmp-*``, ``.<name>.old-*``),
which, under the lock, no live training can be using.
"""

import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Say = Callable[[str], None]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


def write_verified(
    files: dict[str, bytes], out_dir: Path, check: Callable[[Path], object], say: Say
) -> None:
    """Write ``files`` into a staging folder beside ``out_dir``, run ``check`` on it (which
    raises to refuse it), and only then swap it into place."""
    with _staging(out_dir, say) as staging:
        for name, data in files.items():
            write_file(staging / name, data)
        _sync(staging)
        check(staging)
        swap_into_place(staging, out_dir, say)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk."""
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def swap_into_place(staging: Path, out_dir: Path, say: Say) -> None:
    """Make ``staging``'s bundle the one at ``out_dir``; ``staging`` is left holding the old
    one (or nothing), for the caller to remove."""
    if not out_dir.exists():
        staging.rename(out_dir)
    elif not exchange(staging, out_dir):
        say(
            "Note: this system cannot exchange two folders in one step (renameat2 "
            f"RENAME_EXCHANGE); {out_dir} was replaced with two renames"
        )
        retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        retired.rmdir()
        out_dir.rename(retired)
        try:
            staging.rename(out_dir)
        except BaseException:
            retired.rename(out_dir)  # put the previous bundle back
            raise
        _sync(out_dir.parent)
        _remove(retired)
        return
    _sync(out_dir.parent)


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step; False where the system cannot (nothing was changed)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not glibc, or older than 2.28
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    done = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


@contextmanager
def _staging(out_dir: Path, say: Say) -> Iterator[Path]:
    """A new folder beside ``out_dir``, removed on the way out whatever happened; the
    parent is locked meanwhile, and leftovers of killed trainings are removed first."""
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _locked(parent, say):
        for pattern in (f".{out_dir.name}.tmp-*", f".{out_dir.name}.old-*"):
            for leftover in parent.glob(pattern):
                _remove(leftover)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
            yield staging
        finally:
            _remove(staging)


@contextmanager
def _locked(folder: Path, say: Say) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``folder`` (released when the process ends)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"Waiting for another training writing into {folder}…")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    if path.is_symlink():  # a bundle folder that was a link: remove the link, not its target
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _sync(folder: Path) -> None:
    """Flush a folder's entries to disk, so a rename in it survives a power cut."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

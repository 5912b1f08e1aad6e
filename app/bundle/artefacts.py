"""Reads a bundle's manifest and files, each checked against its SHA-256 before use.

Every failure is a ``BundleError`` whose message is one line saying what is wrong. Each
file is read once and handed on as the very bytes that were hashed, so nothing can be
swapped between the check and its use.

A bundle reads only its own files: a name in the manifest is a file name in the bundle
folder (no ``/``, no ``..``); a symbolic link is followed only where it stays in the
folder; what is opened must be a regular file (a FIFO would block the read forever, a
device like ``/dev/zero`` never ends), and of at most ``MAX_FILE_BYTES``. The file is
opened without following a last symbolic link and without blocking, then checked on the
open descriptor, so it cannot be swapped between the check and the read. A refusal never
shows anything of a file it did not read.
"""

import errno
import hashlib
import io
import json
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from app.bundle import MANIFEST_FILE
from app.schemas.manifest import FORMAT_VERSION, Manifest

# The largest file a bundle may hold (and, for a ``.npz``, the most its arrays may take
# once decompressed). The forest of ``models/`` is 7 MB, its largest file; the cap leaves
# room for forests a hundred times larger while refusing what no training writes.
MAX_FILE_BYTES = 1 << 30
MAX_MANIFEST_BYTES = 16 << 20  # the manifest is ~10 kB; its reference rows are few
# Opened without following a last symbolic link, and without waiting for a FIFO's writer.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class BundleError(RuntimeError):
    """The bundle cannot be trusted or used; the message says why, in one line."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def manifest_bytes(directory: Path) -> bytes:
    """The manifest file's bytes, as they are on disk (what a signature covers)."""
    if not directory.is_dir():
        raise BundleError(f"model directory {directory} does not exist")
    try:
        return read_bundle_file(directory, MANIFEST_FILE, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise BundleError(f"{directory / MANIFEST_FILE} is missing: not a model bundle") from None


def read_bundle_file(directory: Path, name: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``name`` in the bundle folder ``directory``, at most
    ``limit`` of them (``MAX_FILE_BYTES``); ``FileNotFoundError`` when there is none,
    ``BundleError`` (one line) when it is not a file of the folder or cannot be read."""
    path = directory / name
    limit = MAX_FILE_BYTES if limit is None else limit
    if not is_file_name(name):
        raise BundleError(
            f"{directory / MANIFEST_FILE} names {name[:80]!r}, which is not a file of the "
            "bundle folder (a file name without / or ..)"
        )
    try:
        descriptor = _open_inside(directory, name)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BundleError(f"{path} cannot be read: {exc.strerror}") from None
    with open(descriptor, "rb", closefd=True) as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise BundleError(f"{path} is not a regular file (it is {_kind(status.st_mode)})")
        if status.st_size > limit:
            raise BundleError(
                f"{path} is {status.st_size} bytes, more than the {limit} a bundle file may hold"
            )
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise BundleError(f"{path} cannot be read: {exc.strerror}") from None
        except MemoryError:
            raise BundleError(f"{path} cannot be read: not enough memory") from None
    if len(data) > limit:  # it grew after fstat
        raise BundleError(f"{path} is more than the {limit} bytes a bundle file may hold")
    return data


def is_file_name(name: str) -> bool:
    """Whether ``name`` is the name of a file directly in a folder, and nothing more."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _open_inside(directory: Path, name: str) -> int:
    """A descriptor of ``directory / name``: the file itself, or what a symbolic link there
    leads to when that is inside ``directory`` too."""
    path = directory / name
    try:
        return os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # O_NOFOLLOW's answer for a symbolic link
            raise
    target = path.resolve()
    if not target.is_relative_to(directory.resolve()):
        raise BundleError(f"{path} is a symbolic link that leads out of the bundle folder")
    return os.open(target, _OPEN_FLAGS)  # a link again now (swapped meanwhile): ELOOP


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((what for test, what in kinds.items() if test(mode)), "not a file")


def npz_arrays(path: Path, data: bytes, names: tuple[str, ...]) -> dict[str, npt.NDArray[Any]]:
    """The arrays ``names`` of the ``.npz`` file ``data`` (the bundle's ``path``), read
    without pickle; ``BundleError`` when it is corrupt, lacks one of them, or would take
    more than ``MAX_FILE_BYTES`` once decompressed."""
    npz_within_cap(path, data)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return {name: arrays[name] for name in names}
    except KeyError as exc:
        raise BundleError(f"{path} holds no array {exc}") from None
    except _CORRUPT as exc:
        raise BundleError(f"{path} cannot be read: {_reason(exc)}") from None


def npz_within_cap(path: Path, data: bytes) -> None:
    """``BundleError`` unless the ``.npz`` file ``data`` (the bundle's ``path``) is a zip
    archive whose members take at most ``MAX_FILE_BYTES`` once decompressed (as their
    headers say, before anything is decompressed; zipfile reads no further)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except _CORRUPT as exc:
        raise BundleError(f"{path} cannot be read: {_reason(exc)}") from None
    if declared > MAX_FILE_BYTES:
        raise BundleError(
            f"{path} would take {declared} bytes decompressed, more than the "
            f"{MAX_FILE_BYTES} a bundle file may hold"
        )


# What reading a corrupt zip archive or .npy array raises (zlib.error and struct.error are
# neither OSError nor ValueError; a MemoryError comes from a forged array shape).
_CORRUPT = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,
    MemoryError,
)


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def parse_manifest(directory: Path, raw: bytes) -> Manifest:
    """The manifest in ``raw`` (the bytes of ``directory``'s manifest file), validated."""
    path = directory / MANIFEST_FILE
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and data.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path} has format_version {data.get('format_version')!r}; "
            f"this service reads {FORMAT_VERSION}"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise BundleError(f"{path} is malformed at {where}: {first['msg']}") from None


def verified_bytes(directory: Path, name: str, expected: str) -> bytes:
    """The bytes of the bundle's file ``name``, read once, when their SHA-256 is the
    manifest's."""
    path = directory / name
    try:
        data = read_bundle_file(directory, name)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing from the bundle") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise BundleError(
            f"{path} does not match its SHA-256 in the manifest (expected {expected[:12]}…, "
            f"found {actual[:12]}…): it changed after training, refusing to load it"
        )
    return data


def read_artefacts(
    directory: Path, manifest: Manifest, required: tuple[str, ...]
) -> dict[str, bytes]:
    """Every file the manifest lists, verified; ``required`` ones must be listed."""
    for name in required:
        if name not in manifest.artefacts:
            raise BundleError(f"{directory / MANIFEST_FILE} lists no SHA-256 for {name}")
    for name in manifest.artefacts:  # every name, before any file is read
        if not is_file_name(name):
            raise BundleError(
                f"{directory / MANIFEST_FILE} names {name[:80]!r}, which is not a file of "
                "the bundle folder (a file name without / or ..)"
            )
    return {
        name: verified_bytes(directory, name, digest) for name, digest in manifest.artefacts.items()
    }

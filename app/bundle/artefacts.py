"""Reads a bundle's manifest and files, each checked against its SHA-256 before use.

Every failure is a ``BundleError`` whose message is one line saying what is wrong. Each
file is read once and handed on as the very bytes that were hashed, so nothing can be
swapped between the check and its use.
"""

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from app.bundle import MANIFEST_FILE
from app.schemas.manifest import FORMAT_VERSION, Manifest


class BundleError(RuntimeError):
    """The bundle cannot be trusted or used; the message says why, in one line."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_manifest(directory: Path) -> Manifest:
    """The bundle's manifest, validated."""
    return parse_manifest(directory, manifest_bytes(directory))


def manifest_bytes(directory: Path) -> bytes:
    """The manifest file's bytes, as they are on disk (what a signature covers)."""
    path = directory / MANIFEST_FILE
    if not directory.is_dir():
        raise BundleError(f"model directory {directory} does not exist")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path} is missing: not a model bundle") from None
    except OSError as exc:
        raise BundleError(f"{path} cannot be read: {exc.strerror}") from None


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


def verified_bytes(path: Path, expected: str) -> bytes:
    """The file's bytes, read once, when their SHA-256 is the manifest's."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path} is missing from the bundle") from None
    except OSError as exc:
        raise BundleError(f"{path} cannot be read: {exc.strerror}") from None
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
    return {
        name: verified_bytes(directory / name, digest)
        for name, digest in manifest.artefacts.items()
    }

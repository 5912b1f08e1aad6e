"""Bundle signatures: Ed25519 over the exact bytes of ``manifest.json``.

The manifest holds the SHA-256 of every other file, so one signature over it covers the
whole bundle. Hashes say each file is the one the manifest names; only a signature says
who wrote the manifest. The restricted unpicklers narrow what a file can do, but cannot
make a forest safe to run: skops flags ``sklearn.tree._tree.Tree`` itself as untrusted,
because crafted node indices can make ``predict`` read out of bounds or crash the process.
No one else signs these models: the keys an operator trusts are the anchor.

Formats:

- ``manifest.sig``, beside the manifest: JSON ``{"algorithm": "Ed25519", "key_id": ...,
  "signature": <base64 of 64 bytes>}``, over the manifest file's bytes as they are on disk
  (nothing is re-serialised, so any Ed25519 tool can check it);
- a key id: the first 16 hexadecimal digits of the SHA-256 of the raw 32-byte public key;
- a private key: a PKCS8 PEM file, encrypted with a passphrase or not;
- a trusted key: the base64 of the raw 32-byte public key (``tasador claves`` prints it),
  or the path of a PEM public key file (SubjectPublicKeyInfo; ``tasador claves`` writes
  one beside the private key).

``cryptography`` is imported only to make a key, to sign, or to check a signature against
trusted keys: a service with none configured does not load it (PEM public keys are read
here, their DER form being fixed by RFC 8410, which spares ``cryptography``'s
serialization module).
"""

import base64
import binascii
import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.bundle import MANIFEST_FILE, SIGNATURE_FILE
from app.bundle.artefacts import BundleError, read_bundle_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger("tasador")

ALGORITHM = "Ed25519"
PASSPHRASE_VARIABLE = "TASADOR_KEY_PASSPHRASE"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_SIGNATURE_BYTES = 64 << 10  # a manifest.sig is ~150 bytes of JSON
# DER of an Ed25519 SubjectPublicKeyInfo up to the key itself (RFC 8410, section 4).
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_PEM_PUBLIC = re.compile(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", re.S)


class SigningKeyError(ValueError):
    """A key cannot be read, made or used; the message says why, in one line."""


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key, as its 32 raw bytes."""

    raw: bytes

    @property
    def key_id(self) -> str:
        """The short id a signature names its key by."""
        return hashlib.sha256(self.raw).hexdigest()[:16]

    @property
    def text(self) -> str:
        """The base64 form, as ``TASADOR_TRUSTED_KEYS`` takes it."""
        return base64.b64encode(self.raw).decode()

    def pem(self) -> str:
        """The PEM (SubjectPublicKeyInfo) form."""
        body = base64.b64encode(_SPKI_PREFIX + self.raw).decode()
        return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"


@dataclass(frozen=True)
class Seal:
    """Who signed a bundle: the key id its signature names, and whether that signature was
    checked against a trusted key (it is not when none are configured)."""

    key_id: str
    checked: bool


def public_key(entry: str) -> PublicKey:
    """A trusted key from its base64 form or from a PEM file; ``SigningKeyError`` if not."""
    text = entry.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == KEY_BYTES:
        return PublicKey(raw)
    path = Path(text)
    try:
        content = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise SigningKeyError(
            f"{text[:60]!r} is neither the base64 of a 32-byte Ed25519 public key nor a "
            f"readable PEM file ({reason})"
        ) from None
    found = _PEM_PUBLIC.search(content)
    try:
        der = base64.b64decode("".join(found.group(1).split()), validate=True) if found else b""
    except (binascii.Error, ValueError):
        der = b""
    if len(der) != len(_SPKI_PREFIX) + KEY_BYTES or not der.startswith(_SPKI_PREFIX):
        raise SigningKeyError(f"{path} holds no Ed25519 public key (PEM, BEGIN PUBLIC KEY)")
    return PublicKey(der[len(_SPKI_PREFIX) :])


def check_signature(directory: Path, manifest: bytes, trusted: Sequence[str]) -> Seal | None:
    """Who signed ``manifest`` (the manifest file's bytes). With ``trusted`` keys, a
    ``BundleError`` unless one of them did; without, the key id the signature names,
    unchecked, or None for an unsigned bundle."""
    where = directory / MANIFEST_FILE
    try:
        key_id, signature = _read_signature(directory / SIGNATURE_FILE)
    except BundleError as exc:
        if trusted:
            raise BundleError(f"{where} is not signed by a trusted key ({exc})") from None
        if (directory / SIGNATURE_FILE).exists():
            log.warning("%s; the bundle counts as unsigned", exc)
        return None
    if not trusted:
        return Seal(key_id, checked=False)
    try:
        keys = {key.key_id: key for key in map(public_key, trusted)}
    except SigningKeyError as exc:
        raise BundleError(f"a trusted key cannot be read: {exc}") from None
    if key_id not in keys:
        raise BundleError(
            f"{where} is not signed by a trusted key (signed by key {key_id}, which is not "
            "among the trusted keys)"
        )
    if not _verifies(keys[key_id], signature, manifest):
        raise BundleError(
            f"{where} is not signed by a trusted key (the signature by key {key_id} does not "
            "match it: it changed after signing)"
        )
    return Seal(key_id, checked=True)


def _read_signature(path: Path) -> tuple[str, bytes]:
    """The key id and signature in a ``manifest.sig``; ``BundleError`` (a reason) if none."""
    try:
        document = json.loads(read_bundle_file(path.parent, path.name, MAX_SIGNATURE_BYTES))
    except FileNotFoundError:
        raise BundleError(f"no {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(f"{path} is not JSON") from None
    try:
        if document["algorithm"] != ALGORITHM:
            raise BundleError(f"{path} is not an {ALGORITHM} signature")
        key_id, signature = document["key_id"], base64.b64decode(document["signature"])
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise BundleError(f"{path} lacks a key_id and a base64 signature") from None
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise BundleError(f"{path} has no key id of 16 hexadecimal digits")
    if len(signature) != SIGNATURE_BYTES:
        raise BundleError(f"{path} holds a signature of {len(signature)} bytes, not 64")
    return key_id, signature


def _verifies(key: PublicKey, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(key.raw).verify(signature, data)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Signer:
    """A private key that signs manifests."""

    key: "Ed25519PrivateKey"
    public: PublicKey

    def sign(self, manifest: bytes) -> bytes:
        """The ``manifest.sig`` for these manifest bytes."""
        document = {
            "algorithm": ALGORITHM,
            "key_id": self.public.key_id,
            "signature": base64.b64encode(self.key.sign(manifest)).decode(),
        }
        return (json.dumps(document, indent=2) + "\n").encode()


def load_signer(path: Path, passphrase: str | None = None) -> Signer:
    """The private key in a PKCS8 PEM file (encrypted ones need ``passphrase``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc.strerror}") from None
    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:  # encrypted without a passphrase, or a passphrase for a plain key
        state = "is encrypted: set" if password is None else "is not encrypted: unset"
        raise SigningKeyError(f"the signing key {path} {state} {PASSPHRASE_VARIABLE}") from None
    except ValueError:
        raise SigningKeyError(
            f"the signing key {path} cannot be loaded: not a PEM private key, or a wrong "
            f"passphrase in {PASSPHRASE_VARIABLE}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the signing key {path} is not an {ALGORITHM} key")
    return Signer(key, PublicKey(key.public_key().public_bytes_raw()))


def new_key_pair(path: Path, passphrase: str | None = None) -> PublicKey:
    """Write a new private key to ``path`` (PKCS8 PEM, readable by its owner only; encrypted
    when ``passphrase`` is given) and its public key to ``path.pub`` (PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public_path = path.with_name(path.name + ".pub")
    for existing in (path, public_path):
        if existing.exists():
            raise SigningKeyError(f"{existing} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public = PublicKey(key.public_key().public_bytes_raw())
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(private)
        public_path.write_text(public.pem(), encoding="ascii")
    except OSError as exc:
        raise SigningKeyError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return public

"""``load_bundle``: read, verify and warm a model bundle, or refuse it in one line.

With trusted keys, the manifest's signature is checked first, on the very bytes that are
then parsed: nothing else in the bundle is used unless a trusted key signed it. Pickle
runs code when it is loaded, so nothing is unpickled until its SHA-256 matches the
manifest. The compiled engine serves when the bundle has one and it reproduces
scikit-learn's training-time answers; scikit-learn is only unpickled when it is needed,
which keeps start-up fast.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.allocator import return_freed_memory
from app.bundle import CHECK_FILE, ENCODINGS_FILE, MODEL_FILE, plain_pickle
from app.bundle.artefacts import BundleError, manifest_bytes, parse_manifest, read_artefacts
from app.bundle.engine_choice import choose_engine, expected_answers
from app.bundle.origin import Origin
from app.bundle.signing import Seal, check_signature
from app.bundle.valuation_parts import ValuationParts, load_valuation
from app.bundle.versions import check_versions
from app.engines import Engine, EngineChoice
from app.features import FeatureBuilder, FeatureError
from app.schemas.manifest import Manifest

log = logging.getLogger("tasador")

__all__ = ["Bundle", "BundleError", "load_bundle"]


@dataclass(frozen=True)
class Bundle:
    """A verified bundle, ready to predict."""

    directory: Path
    manifest: Manifest
    features: FeatureBuilder
    engine: Engine
    valuation: ValuationParts
    origin: Origin | None = None  # set when the bundle was fetched from MLflow
    seal: Seal | None = None  # who signed the manifest, when it is signed

    @property
    def version(self) -> str:
        """The bundle's version id."""
        return self.manifest.version


def load_bundle(
    directory: Path, engine: EngineChoice = "auto", trusted_keys: Sequence[str] = ()
) -> Bundle:
    """Read, verify and warm the bundle in ``directory``, or raise ``BundleError``; with
    ``trusted_keys`` (``app.bundle.signing.public_key`` forms), one of them must have signed
    it."""
    directory = Path(directory)
    try:
        return _load(directory, engine, trusted_keys)
    except MemoryError:  # a forged array shape or a file larger than this machine allows
        raise BundleError(f"{directory}: not enough memory to load the bundle") from None


def _load(directory: Path, engine: EngineChoice, trusted_keys: Sequence[str]) -> Bundle:
    raw = manifest_bytes(directory)
    seal = check_signature(directory, raw, trusted_keys)
    manifest = parse_manifest(directory, raw)
    artefacts = read_artefacts(directory, manifest, required=(MODEL_FILE, ENCODINGS_FILE))
    check_versions(manifest.versions)
    encodings = _encodings(directory, artefacts[ENCODINGS_FILE])
    try:
        features = FeatureBuilder(manifest.features, encodings)
    except FeatureError as exc:
        raise BundleError(f"{directory}: {exc}") from None
    expected = expected_answers(directory, manifest, features, artefacts.get(CHECK_FILE))
    chosen = choose_engine(engine, directory, artefacts, manifest, expected)
    valuation = load_valuation(directory, manifest, artefacts, features, expected)
    del artefacts, expected  # the engine holds what it needs; let the bytes go now
    return_freed_memory()
    _log_seal(manifest.version, seal)
    return Bundle(
        directory=directory,
        manifest=manifest,
        features=features,
        engine=chosen,
        valuation=valuation,
        seal=seal,
    )


def _log_seal(version: str, seal: Seal | None) -> None:
    if seal is None:
        log.info("model %s is not signed", version)
    elif seal.checked:
        log.info("model %s is signed by trusted key %s", version, seal.key_id)
    else:
        log.info(
            "model %s is signed by key %s (not checked: no trusted keys are configured)",
            version,
            seal.key_id,
        )


def _encodings(directory: Path, data: bytes) -> Mapping[str, Mapping[str, int]]:
    try:
        encodings: Any = plain_pickle.loads(data)
    except plain_pickle.PlainDataError as exc:
        raise BundleError(f"{directory / ENCODINGS_FILE} cannot be loaded: {exc}") from None
    if not _is_encodings(encodings):
        raise BundleError(
            f"{directory / ENCODINGS_FILE} is not a mapping of feature → category → code"
        )
    return encodings  # type: ignore[no-any-return]


def _is_encodings(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(name, str)
        and isinstance(codes, Mapping)
        and all(isinstance(k, str) and isinstance(v, int) for k, v in codes.items())
        for name, codes in value.items()
    )

"""Loads a model bundle and checks it before trusting it.

Pickle runs code when it is loaded, so nothing is unpickled until its SHA-256 matches the
manifest. Every failure is a ``BundleError`` whose message is one line saying what is wrong.
"""

import hashlib
import json
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from pydantic import ValidationError

from app.engine import Engine, SklearnEngine
from app.features import FeatureBuilder, FeatureError
from app.manifest import (
    ENCODINGS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    Manifest,
    Versions,
)
from app.schemas import Formulario

# Same scikit-learn minor release as training: pickles are not portable across them.
# Reference predictions must come out again to this relative tolerance.
REFERENCE_RTOL = 1e-9


class BundleError(RuntimeError):
    """The bundle cannot be trusted or used; the message says why, in one line."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle, ready to predict."""

    directory: Path
    manifest: Manifest
    features: FeatureBuilder
    engine: Engine

    @property
    def version(self) -> str:
        """The bundle's version id."""
        return self.manifest.version


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def current_versions() -> Versions:
    """The versions of the libraries a bundle depends on, as installed now."""
    return Versions(
        python=platform.python_version(),
        scikit_learn=sklearn.__version__,
        numpy=np.__version__,
        joblib=joblib.__version__,
    )


def load_bundle(directory: Path) -> Bundle:
    """Read, verify and warm the bundle in ``directory``, or raise ``BundleError``."""
    directory = Path(directory)
    manifest = _read_manifest(directory)
    for name in (MODEL_FILE, ENCODINGS_FILE):
        if name not in manifest.artefacts:
            raise BundleError(f"{directory / MANIFEST_FILE} lists no SHA-256 for {name}")
    for name, expected in manifest.artefacts.items():
        _check_hash(directory / name, expected)
    _check_versions(manifest.versions)

    estimator = _unpickle(directory / MODEL_FILE)
    encodings = _unpickle(directory / ENCODINGS_FILE)
    if not hasattr(estimator, "predict"):
        raise BundleError(
            f"{directory / MODEL_FILE} holds a {type(estimator).__name__}, not a model"
        )
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in != len(manifest.features):
        raise BundleError(
            f"{directory / MODEL_FILE} expects {n_in} features but the manifest lists "
            f"{len(manifest.features)}"
        )
    if not _is_encodings(encodings):
        raise BundleError(
            f"{directory / ENCODINGS_FILE} is not a mapping of feature → category → code"
        )
    try:
        features = FeatureBuilder(manifest.features, encodings)
    except FeatureError as exc:
        raise BundleError(f"{directory}: {exc}") from None

    engine = SklearnEngine(estimator)
    _check_reference(manifest, features, engine)
    return Bundle(directory=directory, manifest=manifest, features=features, engine=engine)


def _read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_FILE
    if not directory.is_dir():
        raise BundleError(f"model directory {directory} does not exist")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path} is missing: not a model bundle") from None
    except OSError as exc:
        raise BundleError(f"{path} cannot be read: {exc.strerror}") from None
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


def _check_hash(path: Path, expected: str) -> None:
    try:
        actual = sha256_file(path)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing from the bundle") from None
    except OSError as exc:
        raise BundleError(f"{path} cannot be read: {exc.strerror}") from None
    if actual != expected:
        raise BundleError(
            f"{path} does not match its SHA-256 in the manifest (expected {expected[:12]}…, "
            f"found {actual[:12]}…): it changed after training, refusing to load it"
        )


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _check_versions(trained: Versions) -> None:
    now = current_versions()
    if _minor(trained.scikit_learn) != _minor(now.scikit_learn):
        raise BundleError(
            f"model was trained with scikit-learn {trained.scikit_learn} but "
            f"{now.scikit_learn} is installed; retrain the bundle or install "
            f"scikit-learn {'.'.join(_minor(trained.scikit_learn))}.*"
        )
    if trained.numpy.split(".")[0] != now.numpy.split(".")[0]:
        raise BundleError(
            f"model was written with numpy {trained.numpy} but {now.numpy} is installed; "
            "retrain the bundle"
        )


def _unpickle(path: Path) -> Any:
    # scikit-learn warns (InconsistentVersionWarning) when unpickling across versions;
    # a warning is not enough here, it is a reason to refuse.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return joblib.load(path)
        except Exception as exc:  # unpickling can raise anything; all mean "unusable"
            raise BundleError(f"{path} cannot be loaded: {type(exc).__name__}: {exc}") from None


def _is_encodings(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(name, str)
        and isinstance(codes, Mapping)
        and all(isinstance(k, str) and isinstance(v, int) for k, v in codes.items())
        for name, codes in value.items()
    )


def _check_reference(manifest: Manifest, features: FeatureBuilder, engine: Engine) -> None:
    try:
        inputs = [Formulario.model_validate(ref.formulario) for ref in manifest.reference]
    except ValidationError as exc:
        raise BundleError(f"manifest reference input is not a valid Formulario: {exc}") from None
    expected = np.array([ref.precio for ref in manifest.reference])
    got = engine.predict(features.matrix(inputs))
    bad = ~np.isclose(got, expected, rtol=REFERENCE_RTOL, atol=0.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BundleError(
            f"reference predictions do not reproduce with {engine.name}: input {i} gave "
            f"{got[i]:.2f} but training recorded {expected[i]:.2f} "
            f"({int(bad.sum())} of {len(expected)} differ)"
        )

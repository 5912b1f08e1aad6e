"""Loads a model bundle and checks it before trusting it.

Pickle runs code when it is loaded, so nothing is unpickled until its SHA-256 matches the
manifest. Every failure is a ``BundleError`` whose message is one line saying what is wrong.

The compiled ONNX forest serves when the bundle has one and it reproduces scikit-learn's
answers recorded at training time (reference inputs and the check set) to
``ENGINE_RTOL``; otherwise scikit-learn serves, and must reproduce them exactly. The
scikit-learn model is only unpickled when it is needed, which keeps start-up fast.
"""

import hashlib
import io
import json
import logging
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from app.engine import Engine, OnnxEngine, SklearnEngine
from app.features import FeatureBuilder, FeatureError
from app.manifest import (
    CHECK_FILE,
    ENCODINGS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    ONNX_FILE,
    Manifest,
    Versions,
)
from app.schemas import Formulario

log = logging.getLogger("tasador")

ENGINE_RTOL = 1e-5  # a compiled engine may differ from scikit-learn by this, relative
SKLEARN_RTOL = 1e-9  # scikit-learn itself must give back what it gave at training time

EngineChoice = Literal["auto", "scikit-learn"]


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


@dataclass(frozen=True)
class _Expected:
    """Inputs (in model order) and the predictions scikit-learn gave for them in training."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    what: str


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def current_versions() -> Versions:
    """The versions of the libraries a bundle depends on, as installed now (no imports)."""
    return Versions(
        python=platform.python_version(),
        scikit_learn=_installed("scikit-learn") or "missing",
        numpy=np.__version__,
        joblib=_installed("joblib") or "missing",
        onnxruntime=_installed("onnxruntime"),
    )


def load_bundle(directory: Path, engine: EngineChoice = "auto") -> Bundle:
    """Read, verify and warm the bundle in ``directory``, or raise ``BundleError``."""
    directory = Path(directory)
    manifest = _read_manifest(directory)
    for name in (MODEL_FILE, ENCODINGS_FILE):
        if name not in manifest.artefacts:
            raise BundleError(f"{directory / MANIFEST_FILE} lists no SHA-256 for {name}")
    # Loaded below from these very bytes: what is unpickled is what was hashed.
    verified = {
        name: _verified_bytes(directory / name, digest)
        for name, digest in manifest.artefacts.items()
    }
    _check_versions(manifest.versions)

    encodings = _unpickle(directory / ENCODINGS_FILE, verified[ENCODINGS_FILE])
    if not _is_encodings(encodings):
        raise BundleError(
            f"{directory / ENCODINGS_FILE} is not a mapping of feature → category → code"
        )
    try:
        features = FeatureBuilder(manifest.features, encodings)
    except FeatureError as exc:
        raise BundleError(f"{directory}: {exc}") from None
    expected = _expected(directory, manifest, features, verified.get(CHECK_FILE))

    n_features = len(manifest.features)
    chosen: Engine | None = None
    if engine == "auto" and ONNX_FILE in verified:
        chosen = _compiled_engine(ONNX_FILE, verified[ONNX_FILE], n_features, expected)
    if chosen is None:
        chosen = _sklearn_engine(directory / MODEL_FILE, verified[MODEL_FILE], n_features, expected)
    return Bundle(directory=directory, manifest=manifest, features=features, engine=chosen)


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


def _verified_bytes(path: Path, expected: str) -> bytes:
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


def _unpickle(path: Path, data: bytes) -> Any:
    import joblib  # imported here: it costs start-up time and is needed only for pickles

    # scikit-learn warns (InconsistentVersionWarning) when unpickling across versions;
    # a warning is not enough here, it is a reason to refuse.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return joblib.load(io.BytesIO(data))
        except Exception as exc:  # unpickling can raise anything; all mean "unusable"
            raise BundleError(f"{path} cannot be loaded: {type(exc).__name__}: {exc}") from None


def _is_encodings(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(name, str)
        and isinstance(codes, Mapping)
        and all(isinstance(k, str) and isinstance(v, int) for k, v in codes.items())
        for name, codes in value.items()
    )


def _expected(
    directory: Path, manifest: Manifest, features: FeatureBuilder, check: bytes | None
) -> list[_Expected]:
    """The answers any engine must give: the reference inputs, and the check set if any."""
    try:
        inputs = [Formulario.model_validate(ref.formulario) for ref in manifest.reference]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BundleError(
            f"{directory / MANIFEST_FILE}: a reference input is not a valid Formulario "
            f"({'.'.join(map(str, first['loc']))}: {first['msg']})"
        ) from None
    expected = [
        _Expected(
            features.matrix(inputs),
            np.array([ref.precio for ref in manifest.reference], dtype=np.float64),
            "reference predictions",
        )
    ]
    if check is not None:
        path = directory / CHECK_FILE
        try:
            with np.load(io.BytesIO(check), allow_pickle=False) as arrays:
                x, y = arrays["x"].astype(np.float64), arrays["y"].astype(np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise BundleError(f"{path} cannot be read: {exc}") from None
        if x.ndim != 2 or x.shape != (len(y), len(manifest.features)):
            raise BundleError(
                f"{path} holds a {x.shape} matrix for {len(y)} predictions, "
                f"but the manifest lists {len(manifest.features)} features"
            )
        expected.append(_Expected(x, y, "check-set predictions"))
    return expected


def _worst(engine: Engine, expected: list[_Expected]) -> tuple[float, _Expected, int]:
    """The largest relative difference between the engine and training-time answers."""
    worst: tuple[float, _Expected, int] = (0.0, expected[0], 0)
    for item in expected:
        got = engine.predict(item.x)
        error = np.abs(got - item.y) / np.maximum(np.abs(item.y), np.finfo(np.float64).tiny)
        i = int(np.argmax(error))
        if error[i] > worst[0] or not np.isfinite(error[i]):
            worst = (float(error[i]), item, i)
    return worst


def _compiled_engine(
    name: str, model: bytes, n_features: int, expected: list[_Expected]
) -> Engine | None:
    """The ONNX engine when it loads and agrees with scikit-learn; None (with one warning
    line) otherwise, so that scikit-learn serves instead."""
    try:
        engine = OnnxEngine(model)
        if engine.n_features != n_features:
            raise ValueError(
                f"it takes {engine.n_features} features, the manifest lists {n_features}"
            )
        error, _, _ = _worst(engine, expected)
    except Exception as exc:  # ONNX Runtime raises its own types; any of them means "no"
        log.warning(
            "compiled engine %s unusable (%s: %s); serving with scikit-learn",
            name,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
        )
        return None
    if not error <= ENGINE_RTOL:
        log.warning(
            "compiled engine %s differs from scikit-learn by %.2e relative (limit %.0e); "
            "serving with scikit-learn",
            name,
            error,
            ENGINE_RTOL,
        )
        return None
    return engine


def _sklearn_engine(path: Path, model: bytes, n_features: int, expected: list[_Expected]) -> Engine:
    estimator = _unpickle(path, model)
    if not hasattr(estimator, "predict"):
        raise BundleError(f"{path} holds a {type(estimator).__name__}, not a model")
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in != n_features:
        raise BundleError(f"{path} expects {n_in} features but the manifest lists {n_features}")
    engine = SklearnEngine(estimator)
    error, item, i = _worst(engine, expected)
    if not error <= SKLEARN_RTOL:
        got = float(engine.predict(item.x[i : i + 1])[0])
        raise BundleError(
            f"{item.what} do not reproduce with scikit-learn: input {i} gave {got:.2f} "
            f"but training recorded {item.y[i]:.2f}"
        )
    return engine

"""Which engine serves a bundle: the first registered one that can be built and gives back
the answers scikit-learn gave at training time.

Those answers are the manifest's reference predictions and, when the bundle has one, the
check set (``check.npz``: hold-out rows and rows with shuffled columns). An engine that
cannot be built or strays from them by more than its tolerance is passed over with one
warning line; when it is the last candidate, the bundle is refused.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from app.bundle import CHECK_FILE, MANIFEST_FILE
from app.bundle.artefacts import BundleError, npz_arrays
from app.engines import (
    ENGINES,
    Engine,
    EngineChoice,
    EngineSpec,
    EngineUnusableError,
    priced,
)
from app.features import FeatureBuilder
from app.schemas.formulario import Formulario
from app.schemas.manifest import Manifest

log = logging.getLogger("tasador")


@dataclass(frozen=True)
class Expected:
    """Inputs (in model order) and the predictions scikit-learn gave for them in training."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    what: str


def expected_answers(
    directory: Path, manifest: Manifest, features: FeatureBuilder, check: bytes | None
) -> list[Expected]:
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
        Expected(
            features.matrix(inputs),
            np.array([ref.precio for ref in manifest.reference], dtype=np.float64),
            "reference predictions",
        )
    ]
    if check is not None:
        path = directory / CHECK_FILE
        arrays = npz_arrays(path, check, ("x", "y"))
        x, y = arrays["x"].astype(np.float64), arrays["y"].astype(np.float64)
        if y.ndim != 1 or x.ndim != 2 or x.shape != (len(y), len(manifest.features)):
            raise BundleError(
                f"{path} holds a {x.shape} matrix for {len(y)} predictions, "
                f"but the manifest lists {len(manifest.features)} features"
            )
        expected.append(Expected(x, y, "check-set predictions"))
    return expected


def _worst(engine: Engine, expected: list[Expected]) -> tuple[float, Expected, int]:
    """The largest relative difference between the engine and training-time answers."""
    worst: tuple[float, Expected, int] = (0.0, expected[0], 0)
    for item in expected:
        got = engine.predict(item.x)
        error = np.abs(got - item.y) / np.maximum(np.abs(item.y), np.finfo(np.float64).tiny)
        i = int(np.argmax(error))
        if error[i] > worst[0] or not np.isfinite(error[i]):
            worst = (float(error[i]), item, i)
    return worst


def choose_engine(
    choice: EngineChoice,
    directory: Path,
    artefacts: Mapping[str, bytes],
    manifest: Manifest,
    expected: list[Expected],
) -> Engine:
    """The engine that serves: ``choice`` itself, or for ``auto`` the first registered
    engine whose artefact is in the bundle and that reproduces ``expected``."""
    chosen = _choose(choice, directory, artefacts, manifest, expected)
    # The artefacts of the engines not built are checked as far as they can be without
    # building them: a bundle with a damaged file is refused whichever engine serves.
    for spec in ENGINES.values():
        data = artefacts.get(spec.artefact) if spec.name != chosen.name else None
        if data is not None and (reason := spec.damaged(data)) is not None:
            raise BundleError(f"{directory / spec.artefact} {reason}")
    return chosen


def _choose(
    choice: EngineChoice,
    directory: Path,
    artefacts: Mapping[str, bytes],
    manifest: Manifest,
    expected: list[Expected],
) -> Engine:
    candidates = [ENGINES[choice]] if choice != "auto" else list(ENGINES.values())
    candidates = [spec for spec in candidates if spec.artefact in artefacts]
    if not candidates:
        raise BundleError(f"{directory} holds no artefact for engine {choice}")
    *others, last = candidates
    for position, spec in enumerate(others):
        engine_or_reason = _try(spec, artefacts[spec.artefact], manifest, expected)
        if not isinstance(engine_or_reason, str):
            return engine_or_reason
        log.warning(
            "engine %s: %s; serving with %s",
            spec.name,
            engine_or_reason,
            candidates[position + 1].name,
        )
    engine_or_reason = _try(last, artefacts[last.artefact], manifest, expected, refuse=True)
    if isinstance(engine_or_reason, str):
        raise BundleError(f"{directory / last.artefact} {engine_or_reason}")
    return engine_or_reason


def _try(
    spec: EngineSpec,
    data: bytes,
    manifest: Manifest,
    expected: list[Expected],
    *,
    refuse: bool = False,
) -> Engine | str:
    """The engine, or why it cannot serve (worded as a refusal when ``refuse``)."""
    if (reason := spec.unsupported(manifest.versions)) is not None:
        return reason if refuse else f"{spec.artefact} {reason}"
    try:
        engine = priced(spec.build(data, len(manifest.features)), manifest.target_scale)
    except EngineUnusableError as exc:
        return str(exc) if refuse else f"{spec.artefact} unusable ({exc})"
    try:
        error, item, i = _worst(engine, expected)
    except Exception as exc:  # a runtime raises its own types; each means "cannot serve"
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        return f"fails on the reference inputs ({reason})"
    if error <= spec.tolerance:
        return engine
    if refuse:
        got = float(engine.predict(item.x[i : i + 1])[0])
        return (
            f"gives other answers: {item.what} do not reproduce with {spec.name}: "
            f"input {i} gave {got:.2f} but training recorded {item.y[i]:.2f}"
        )
    return (
        f"{spec.artefact} differs from scikit-learn by {error:.2e} relative "
        f"(limit {spec.tolerance:.0e})"
    )

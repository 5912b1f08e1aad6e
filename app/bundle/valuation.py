"""The valuation parts of a bundle (``app.valuation``): loaded and checked like the rest.

``valuation.json`` is plain JSON, validated by its schema; the interval it describes must
give back the reference intervals recorded at training time. The explanation engine is
checked the same way against the reference contributions, when it is first built (its
files were hashed with the rest at start-up, and are hashed again then). A bundle written
before these existed has none of them: it is served without an interval, zone or
explanations, with one log line saying so.
"""

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from app.allocator import return_freed_memory
from app.bundle.artefacts import BundleError, verified_bytes
from app.features import FeatureBuilder
from app.schemas.formulario import Formulario
from app.schemas.manifest import Manifest
from app.valuation.artefact import VALUATION_FILE, Valuation
from app.valuation.explanation import (
    CONTRIBUTIONS_FILE,
    LEAVES_FILE,
    Explainer,
    ExplanationsUnavailableError,
    LazyExplainer,
)
from app.valuation.interval import Interval
from app.valuation.novelty import Novelty, unknown_fields
from app.valuation.zones import ZoneGrid

log = logging.getLogger("tasador")

# How far a recomputed interval or contribution may stray from training's, relative.
RTOL = 1e-9
# Contributions are sums of many tree moves; a cent either way is rounding, not another model.
CONTRIBUTION_ATOL_EUR = 0.01


@dataclass(frozen=True)
class ValuationParts:
    """What a bundle offers beyond the price (each None where the bundle has none)."""

    interval: Interval | None
    zones: ZoneGrid | None
    novelty: Novelty
    explainer: LazyExplainer | None


def load_valuation(
    directory: Path, manifest: Manifest, artefacts: dict[str, bytes], features: FeatureBuilder
) -> ValuationParts:
    """The bundle's valuation parts, checked; ``BundleError`` when they do not hold."""
    data = artefacts.get(VALUATION_FILE)
    if data is None:
        log.warning(
            "bundle %s has no %s (trained before it existed): answers carry no interval, "
            "zone or explanation until it is retrained",
            manifest.version,
            VALUATION_FILE,
        )
        return ValuationParts(None, None, Novelty(manifest.feature_ranges, {}), None)
    try:
        valuation = Valuation.model_validate_json(data)
        interval = Interval(valuation.interval)
    except (ValidationError, ValueError) as exc:
        raise BundleError(f"{directory / VALUATION_FILE} is malformed: {_first(exc)}") from None
    zones = ZoneGrid(valuation.zones)
    _check_reference_intervals(directory, manifest, interval, zones)
    explainer = None
    if LEAVES_FILE in artefacts and CONTRIBUTIONS_FILE in artefacts:
        explainer = LazyExplainer(lambda: _explainer(directory, manifest, features))
    return ValuationParts(
        interval, zones, Novelty(manifest.feature_ranges, valuation.ratios), explainer
    )


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
    return str(exc)


def _check_reference_intervals(
    directory: Path, manifest: Manifest, interval: Interval, zones: ZoneGrid
) -> None:
    for index, reference in enumerate(manifest.reference):
        if reference.interval is None:
            continue
        home = Formulario.model_validate(reference.formulario)
        zone = zones.zone(home.latitud, home.longitud)
        sigma = (zone.sigma if zone else interval.sigma) * interval.scale(unknown_fields(home))
        got = interval.bounds(reference.precio, sigma)
        if not all(
            math.isclose(a, b, rel_tol=RTOL) for a, b in zip(got, reference.interval, strict=True)
        ):
            raise BundleError(
                f"{directory / VALUATION_FILE}: reference intervals do not reproduce: input "
                f"{index} gave {got[0]:.2f} to {got[1]:.2f} but training recorded "
                f"{reference.interval[0]:.2f} to {reference.interval[1]:.2f}"
            )


def _explainer(directory: Path, manifest: Manifest, features: FeatureBuilder) -> Explainer:
    """Build the explanation engine from its files, hashed again, and check it gives back
    the reference contributions; ``ExplanationsUnavailableError`` (one line) otherwise."""
    try:
        leaves = verified_bytes(directory / LEAVES_FILE, manifest.artefacts[LEAVES_FILE])
        table = verified_bytes(
            directory / CONTRIBUTIONS_FILE, manifest.artefacts[CONTRIBUTIONS_FILE]
        )
        log_price = manifest.target_scale == "log"
        explainer = Explainer(leaves, table, len(manifest.features), log_price)
    except (BundleError, ValueError, OSError) as exc:
        raise ExplanationsUnavailableError(str(exc).splitlines()[0]) from None
    except Exception as exc:  # ONNX Runtime raises its own types; any of them means "no"
        message = f"{LEAVES_FILE} unusable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        raise ExplanationsUnavailableError(message) from None
    recorded = [r for r in manifest.reference if r.contributions is not None]
    if recorded:
        x = features.matrix([Formulario.model_validate(r.formulario) for r in recorded])
        got = explainer.explain(x).contributions
        for index, reference in enumerate(recorded):
            expected = reference.contributions or []
            for j, (a, b) in enumerate(zip(got[index], expected, strict=True)):
                if not math.isclose(a, b, rel_tol=1e-6, abs_tol=CONTRIBUTION_ATOL_EUR):
                    raise ExplanationsUnavailableError(
                        f"reference contributions do not reproduce: input {index}, "
                        f"{manifest.features[j]} gave {a:.2f} but training recorded {b:.2f}"
                    )
    return_freed_memory()  # building the session freed several times what it keeps
    log.info("explanations ready for model %s", manifest.version)
    return explainer

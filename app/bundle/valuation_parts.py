"""The valuation parts of a bundle (``app.valuation``): loaded and checked like the rest.

``valuation.json`` is plain JSON, validated by its schema; the interval it describes must
give back the reference intervals recorded at training time. The explanation engine is
built at load and checked the same way against the reference contributions, so a bundle
whose explanation files are damaged is refused with the rest; it is then let go (it holds
a second ONNX Runtime session most deployments never use) and built again from the same
verified bytes, kept in memory, on the first request that asks for an explanation. A
bundle written before these existed has none of them: it is served without an interval,
zone or explanations, with one log line saying so.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from app.allocator import return_freed_memory
from app.bundle.artefacts import BundleError, npz_arrays, npz_within_cap
from app.bundle.engine_choice import Expected
from app.features import FeatureBuilder
from app.schemas.formulario import Formulario
from app.schemas.manifest import Manifest
from app.valuation.artefact import VALUATION_FILE, ConfidenceThresholds, Valuation
from app.valuation.explanation import (
    CONTRIBUTIONS_FILE,
    LEAVES_FILE,
    Explainer,
    ExplanationsUnavailableError,
    LazyExplainer,
)
from app.valuation.interval import Interval
from app.valuation.novelty import Novelty, unknown_fields
from app.valuation.testigos import COLUMNS, LABELS, TESTIGOS_FILE, Testigos
from app.valuation.zones import ZoneGrid

log = logging.getLogger("tasador")

# How far a recomputed interval or contribution may stray from training's, relative.
RTOL = 1e-9
# Contributions are sums of many tree moves; a cent either way is rounding, not another model.
CONTRIBUTION_ATOL_EUR = 0.01
# How far base + Σ contributions may stray from the price, relative: float64 sums of a few
# hundred tree moves, against a forest whose thresholds compare float32 inputs alike.
SUM_RTOL = 1e-6


@dataclass(frozen=True)
class ValuationParts:
    """What a bundle offers beyond the price (each None where the bundle has none)."""

    interval: Interval | None
    zones: ZoneGrid | None
    novelty: Novelty
    explainer: LazyExplainer | None
    testigos: Testigos | None = None
    confianza: ConfidenceThresholds | None = None


def load_valuation(
    directory: Path,
    manifest: Manifest,
    artefacts: dict[str, bytes],
    features: FeatureBuilder,
    expected: Sequence[Expected],
) -> ValuationParts:
    """The bundle's valuation parts, checked (the explanations against the reference
    contributions, and as adding up to the ``expected`` prices); ``BundleError`` when they
    do not hold."""
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
        zones = ZoneGrid(valuation.zones)
    except (ValidationError, ValueError) as exc:
        raise BundleError(f"{directory / VALUATION_FILE} is malformed: {_first(exc)}") from None
    _check_reference_intervals(directory, manifest, interval, zones)
    explainer = None
    if LEAVES_FILE in artefacts and CONTRIBUTIONS_FILE in artefacts:
        leaves, table = artefacts[LEAVES_FILE], artefacts[CONTRIBUTIONS_FILE]
        npz_within_cap(directory / CONTRIBUTIONS_FILE, table)  # read by the Explainer
        try:  # checked now, then built again on first use
            _check(_explainer(leaves, table, manifest), manifest, features, expected)
        except ExplanationsUnavailableError as exc:
            raise BundleError(f"{directory}: explanations cannot be given: {exc}") from None
        return_freed_memory()  # building the session freed several times what it keeps
        explainer = LazyExplainer(lambda: _ready(leaves, table, manifest))
    return ValuationParts(
        interval,
        zones,
        Novelty(manifest.feature_ranges, valuation.ratios),
        explainer,
        _testigos(directory, artefacts),
        valuation.confianza,
    )


def _testigos(directory: Path, artefacts: dict[str, bytes]) -> Testigos | None:
    """The comparable homes' table, checked; None for a bundle trained without it."""
    data = artefacts.get(TESTIGOS_FILE)
    if data is None:
        return None
    path = directory / TESTIGOS_FILE
    arrays = npz_arrays(path, data, (*COLUMNS, LABELS))
    try:
        return Testigos(arrays)
    except ValueError as exc:
        raise BundleError(f"{path} is malformed: {exc}") from None


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


def _ready(leaves: bytes, table: bytes, manifest: Manifest) -> Explainer:
    explainer = _explainer(leaves, table, manifest)  # the bytes checked at load
    return_freed_memory()  # building the session freed several times what it keeps
    log.info("explanations ready for model %s", manifest.version)
    return explainer


def _explainer(leaves: bytes, table: bytes, manifest: Manifest) -> Explainer:
    """The explanation engine built from its files' verified bytes;
    ``ExplanationsUnavailableError`` (one line) when it cannot be."""
    try:
        log_price = manifest.target_scale == "log"
        return Explainer(leaves, table, len(manifest.features), log_price)
    except Exception as exc:  # ONNX Runtime and numpy raise their own types; all mean "no"
        raise ExplanationsUnavailableError(
            f"{LEAVES_FILE} or {CONTRIBUTIONS_FILE} unusable ({_reason(exc)})"
        ) from None


def _check(
    explainer: Explainer,
    manifest: Manifest,
    features: FeatureBuilder,
    expected: Sequence[Expected],
) -> None:
    """``ExplanationsUnavailableError`` unless ``explainer`` gives back the reference
    contributions, and its contributions add up to the price scikit-learn gave for each
    ``expected`` input (Saabas contributions are exact: a damaged tree in the leaf graph
    shows as a sum that misses the price, on the inputs that reach it)."""
    recorded = [r for r in manifest.reference if r.contributions is not None]
    try:
        got = explainer.explain(
            features.matrix([Formulario.model_validate(r.formulario) for r in recorded])
        ).contributions
        sums = [explainer.explain(item.x) for item in expected]
    except Exception as exc:  # as above: a graph that builds may still fail to run
        raise ExplanationsUnavailableError(
            f"{LEAVES_FILE} fails on the reference inputs ({_reason(exc)})"
        ) from None
    for index, reference in enumerate(recorded):
        contributions = reference.contributions or []
        if len(contributions) != len(manifest.features):
            raise ExplanationsUnavailableError(
                f"reference input {index} records {len(contributions)} contributions for "
                f"{len(manifest.features)} features"
            )
        for j, (a, b) in enumerate(zip(got[index], contributions, strict=True)):
            if not math.isclose(a, b, rel_tol=1e-6, abs_tol=CONTRIBUTION_ATOL_EUR):
                raise ExplanationsUnavailableError(
                    f"reference contributions do not reproduce: input {index}, "
                    f"{manifest.features[j]} gave {a:.2f} but training recorded {b:.2f}"
                )
    for item, explanation in zip(expected, sums, strict=True):
        total = explanation.base + explanation.contributions.sum(axis=1)
        error = np.abs(total - item.y) / np.maximum(np.abs(item.y), 1.0)
        if len(error) and not float(np.max(error)) <= SUM_RTOL:
            i = int(np.argmax(error))
            raise ExplanationsUnavailableError(
                f"{LEAVES_FILE}: explanations do not add up to the {item.what}: input {i} "
                f"adds up to {total[i]:.2f} but training recorded {item.y[i]:.2f}"
            )


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"

"""Appraising homes: the price and what lets a person judge it (its range, the area's €/m²,
warnings outside the training data, comparable homes, a confidence grade and, when asked,
what drives it)."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from app.bundle.loader import Bundle
from app.features import LOCATION_FIELDS
from app.i18n import DEFAULT, Language, message
from app.refusals import RefusedError, too_many_rows
from app.schemas.formulario import Formulario
from app.schemas.prediccion import (
    Advertencia,
    Lote,
    Prediccion,
    PrediccionLote,
    PrediccionLoteDetalle,
)
from app.tracing import span
from app.valuation.confidence import Grade, grade, is_unlike
from app.valuation.explanation import GROUPS, Explanation, ExplanationsUnavailableError
from app.valuation.novelty import unknown_columns, unknown_fields
from app.valuation.testigos import REACH_KM, SHOWN


@dataclass(frozen=True)
class Options:
    """How to answer: in which language, and whether to explain the price."""

    language: Language = DEFAULT
    explain: bool = False


SORTED_FROM_ROWS = 64


def appraise(bundle: Bundle, formulario: Formulario, options: Options = Options()) -> Prediccion:
    """The appraisal of one home."""
    with span("tasador.features"):
        x = bundle.features.matrix([formulario])
    with span("tasador.engine"):
        precio = float(bundle.engine.predict(x)[0])
    explanation = _explain(bundle, x) if options.explain else None
    return _appraisal(bundle, formulario, precio, options.language, explanation, 0)


@dataclass(frozen=True)
class DetailedBatch:
    """A detailed batch's answer: ``PrediccionLoteDetalle`` with its appraisals made
    ``chunks`` at a time, so that they need not all be alive at once. A large batch's
    hundreds of thousands of objects, alive together while the event loop kept allocating
    beside them, left the allocator's arenas pinned by a few survivors each: a worker
    kept ~100 MB after a burst of such batches."""

    rows: int
    fecha: datetime
    modelo: str
    make: Callable[[int], Prediccion]  # the appraisal of the i-th home

    def chunks(self, size: int) -> Iterator[list[Prediccion]]:
        """The appraisals in order, ``size`` at a time."""
        for start in range(0, self.rows, size):
            yield [self.make(i) for i in range(start, min(start + size, self.rows))]

    def head(self) -> PrediccionLoteDetalle:
        """The answer without its appraisals."""
        return PrediccionLoteDetalle(resultados=[], fecha=self.fecha, modelo=self.modelo)


def appraise_batch(
    bundle: Bundle, lote: Lote, max_rows: int, detail: bool = False, options: Options = Options()
) -> PrediccionLote | DetailedBatch:
    """One price per home in the order sent, or (``detail``) one whole appraisal each, made
    as they are read; refused above ``max_rows`` homes."""
    homes = lote.formularios
    if len(homes) > max_rows:
        raise too_many_rows(len(homes), max_rows, "formularios")
    with span("tasador.features"):
        x = bundle.features.matrix(homes)

    def column(name: str) -> npt.NDArray[np.float64]:
        """The homes' ``name``: the matrix's column when the model takes it (the same
        floats), else read again."""
        if name in bundle.features.features:
            return x[:, bundle.features.features.index(name)]
        return np.fromiter((getattr(home, name) for home in homes), np.float64, len(homes))

    with span("tasador.engine"):
        precios = _prices(bundle, x, column("superficie_construida"), column("latitud"))
    now = datetime.now(UTC)
    if not detail:
        return PrediccionLote(precios=precios.round(2).tolist(), fecha=now, modelo=bundle.version)
    explanation = _explain(bundle, x) if options.explain else None
    language = options.language

    def make(i: int) -> Prediccion:
        return _appraisal(bundle, homes[i], float(precios[i]), language, explanation, i, now)

    return DetailedBatch(len(homes), now, bundle.version, make)


def _prices(
    bundle: Bundle,
    x: npt.NDArray[np.float64],
    area: npt.NDArray[np.float64],
    latitude: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The engine's prices for the rows of ``x`` (homes of built ``area`` at ``latitude``).

    A forest of house prices splits first on size and place: homes sorted by them walk the
    same branches one after another, and the trees' nodes stay in the CPU's cache. Each
    price depends on its own row only, so the prices put back in the homes' order are the
    same bits. Below ``SORTED_FROM_ROWS`` the sort costs more than it saves."""
    if len(x) < SORTED_FROM_ROWS:
        return bundle.engine.predict(x)
    order = np.lexsort((latitude, np.floor(area / 10)))
    precios = np.empty(len(x))
    precios[order] = bundle.engine.predict(x[order])
    return precios


@dataclass(frozen=True)
class Appraisals:
    """The appraisals of many homes as columns, one entry per home: what ``_appraisal``
    answers for each but the area (``zona``), the testigos and the confidence grade, which
    files do not carry. Prices are in
    euros rounded to the cent as ``round(x, 2)`` rounds them; ``inferior`` and
    ``superior`` are NaN for a bundle without an interval."""

    precio: npt.NDArray[np.float64]
    inferior: npt.NDArray[np.float64]
    superior: npt.NDArray[np.float64]
    precio_m2: npt.NDArray[np.float64]
    advertencias: list[Sequence[Advertencia]]
    desconocidos: list[tuple[str, ...]]


def appraise_columns(
    bundle: Bundle, columns: Mapping[str, npt.NDArray[Any]], language: Language = DEFAULT
) -> Appraisals:
    """``/predecir/lote?detalle=true``'s answers, to the cent, for valid homes given as
    columns by attribute (``FeatureBuilder.matrix_columns`` takes them), at a cost per home
    far below a ``Prediccion`` each: the same engine on the same matrix, the intervals by
    ``Interval.bounds_many`` and the rounding on whole columns (a value numpy could round
    otherwise is redone as ``_appraisal`` does it), and the warnings by
    ``Novelty.check_many``."""
    with span("tasador.features"):
        x = bundle.features.matrix_columns(columns)
    with span("tasador.engine"):
        precios = _prices(bundle, x, columns["superficie_construida"], columns["latitud"])
    n = len(precios)
    parts = bundle.valuation
    unknown = unknown_columns(columns)
    if parts.zones is not None:
        zones = parts.zones.zones(columns["latitud"], columns["longitud"])
        near = np.array([zone is not None for zone in zones], dtype=bool)
        reach = parts.zones.reach_km
    else:  # an older bundle: nothing is known of where training homes lie
        zones, near, reach = [None] * n, np.ones(n, dtype=bool), 0.0
    scales = {
        pattern: parts.interval.scale(pattern) if parts.interval is not None else 1.0
        for pattern in set(unknown)
    }
    inferior = superior = np.full(n, np.nan)
    if parts.interval is not None:
        interval = parts.interval
        sigmas = np.array(
            [
                (zone.sigma if zone is not None else interval.sigma) * scales[pattern]
                for zone, pattern in zip(zones, unknown, strict=True)
            ]
        )
        lower, upper = interval.bounds_many(precios, sigmas)
        # np.exp may differ from math.exp in the last bit: a bound that close to half a
        # cent is computed again as one home's answer computes it.
        inferior = _cents(lower, lambda row: interval.bounds(precios[row], sigmas[row])[0])
        superior = _cents(upper, lambda row: interval.bounds(precios[row], sigmas[row])[1])
    per_m2 = precios / columns["superficie_construida"]
    advertencias = parts.novelty.check_many(columns, unknown, near, reach, language, scales)
    return Appraisals(
        precio=_cents(precios, lambda row: float(precios[row])),
        inferior=inferior,
        superior=superior,
        precio_m2=_cents(per_m2, lambda row: float(per_m2[row])),
        advertencias=advertencias,
        desconocidos=unknown,
    )


# A value whose hundredfold lies this close to half an integer may round to another cent
# in numpy than in Python; far above the error of numpy's scaling by 100.
_HALF_CENT_TOLERANCE = 1e-6


def _cents(
    values: npt.NDArray[np.float64], exact: Callable[[int], float]
) -> npt.NDArray[np.float64]:
    """``round(value, 2)`` of every value, on the whole column: numpy's rounding agrees
    with Python's except within an ulp of half a cent, so the few values near there are
    taken from ``exact(row)`` (the value as one answer computes it) and rounded by
    Python."""
    rounded: npt.NDArray[np.float64] = np.round(values, 2)
    hundredfold = values * 100
    doubtful = np.abs(hundredfold - np.floor(hundredfold) - 0.5) < _HALF_CENT_TOLERANCE
    for row in np.flatnonzero(doubtful).tolist():
        rounded[row] = round(exact(row), 2)
    return rounded


def bounds(
    bundle: Bundle, homes: Sequence[Formulario], precios: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """The interval of each predicted price, or None when the bundle has no interval."""
    parts = bundle.valuation
    if parts.interval is None or parts.zones is None:
        return None
    interval = parts.interval
    zones = [parts.zones.zone(h.latitud, h.longitud) for h in homes]
    sigmas = np.array(
        [
            (z.sigma if z else interval.sigma) * interval.scale(unknown_fields(h))
            for z, h in zip(zones, homes, strict=True)
        ]
    )
    return interval.bounds_many(precios, sigmas)


def _explain(bundle: Bundle, x: npt.NDArray[np.float64]) -> Explanation:
    explainer = bundle.valuation.explainer
    if explainer is None:
        raise _cannot_explain(f"model {bundle.version} was trained without explanations")
    try:
        return explainer.get().explain(x)
    except ExplanationsUnavailableError as exc:
        raise _cannot_explain(str(exc)) from None


def _cannot_explain(why: str) -> RefusedError:
    return RefusedError(
        503,
        f"explanations are unavailable: {why}",
        loc=("query", "explicar"),
        type="explanations_unavailable",
        ctx={"why": why},
    )


def _appraisal(
    bundle: Bundle,
    formulario: Formulario,
    precio: float,
    language: Language,
    explanation: Explanation | None,
    row: int,
    now: datetime | None = None,
) -> Prediccion:
    """The whole answer for one home whose price the engine gave."""
    parts = bundle.valuation
    zone = parts.zones.zone(formulario.latitud, formulario.longitud) if parts.zones else None
    intervalo = None
    inferior = superior = None
    unknown = unknown_fields(formulario)
    if parts.interval is not None:
        sigma = zone.sigma if zone is not None else parts.interval.sigma
        sigma *= parts.interval.scale(unknown)
        lower, upper = parts.interval.bounds(precio, sigma)
        inferior, superior = round(lower, 2), round(upper, 2)
        intervalo = {"inferior": inferior, "superior": superior, "nivel": parts.interval.nivel}
    precio_m2 = precio / formulario.superficie_construida
    zona = None
    if zone is not None:
        zona = {
            "precio_m2_mediano": zone.precio_m2_mediano,
            "viviendas": zone.viviendas,
            "radio_km": round(zone.radius_km(formulario.latitud, formulario.longitud), 2),
            "diferencia": round(precio_m2 / zone.precio_m2_mediano - 1, 4),
        }
    # Without a zone grid (an older bundle) nothing is known of where training homes lie.
    near = zone is not None or parts.zones is None
    reach = parts.zones.reach_km if parts.zones is not None else 0.0
    answer: dict[str, Any] = {
        "precio": round(precio, 2),
        "fecha": now or datetime.now(UTC),
        "modelo": bundle.version,
        "intervalo": intervalo,
        "precio_m2": round(precio_m2, 2),
        "zona": zona,
        "advertencias": parts.novelty.check(
            formulario,
            near,
            reach,
            language,
            parts.interval.scale(unknown) if parts.interval is not None else 1.0,
        ),
        "desconocidos": unknown,
    }
    answer["testigos"] = _testigos(bundle, formulario, language)
    answer["confianza"] = _grade(bundle, precio, inferior, superior, answer["advertencias"])
    if explanation is not None:
        answer["base"], answer["contribuciones"] = _contributions(
            bundle, formulario, explanation, row, answer["precio"]
        )
    # One validation of the whole answer: faster than building each part as a model.
    return Prediccion.model_validate(answer)


def _grade(
    bundle: Bundle,
    precio: float,
    inferior: float | None,
    superior: float | None,
    advertencias: Sequence[Advertencia],
) -> Grade | None:
    """The confidence grade of an appraisal (None for a bundle without grades)."""
    thresholds = bundle.valuation.confianza
    if thresholds is None or inferior is None or superior is None:
        return None
    return grade((superior - inferior) / precio, is_unlike(advertencias), thresholds)


def _testigos(bundle: Bundle, formulario: Formulario, language: Language) -> dict[str, Any]:
    """The comparable homes, and a notice when there are fewer than ``SHOWN``."""
    table = bundle.valuation.testigos
    if table is None:
        return {
            "viviendas": [],
            "mediana_precio_m2": None,
            "aviso": message("testigos_none", language),
        }
    found = table.find(
        formulario.latitud,
        formulario.longitud,
        formulario.superficie_construida,
        formulario.habitaciones,
        formulario.condicion,
    )
    aviso = None
    if not found.viviendas:
        aviso = message("testigos_none_near", language, km=f"{REACH_KM:g}")
    elif len(found.viviendas) < SHOWN:
        aviso = message("testigos_fewer", language, n=len(found.viviendas), km=f"{REACH_KM:g}")
    return {
        "viviendas": found.viviendas,
        "mediana_precio_m2": found.mediana_precio_m2,
        "aviso": aviso,
    }


def _contributions(
    bundle: Bundle, formulario: Formulario, explanation: Explanation, row: int, precio: float
) -> tuple[float, list[dict[str, Any]]]:
    """Effects per variable (the coordinates and the columns computed from them as
    ubicacion), in cents, largest first,
    adding up with the base to the rounded price: the cents rounding leaves over go to the
    largest effect."""
    names = bundle.features.features
    effects = dict(zip(names, explanation.contributions[row].tolist(), strict=True))
    grouped: dict[str, tuple[object, float]] = {}
    for group, members in GROUPS.items():
        if any(m in effects for m in members):
            value = [getattr(formulario, m) for m in LOCATION_FIELDS]
            grouped[group] = (value, sum(effects.pop(m) for m in members if m in effects))
    for name, effect in effects.items():
        attribute = bundle.features.attribute(name)
        grouped[name] = (getattr(formulario, attribute), effect)
    base = round(explanation.base, 2)
    cents = {name: round(effect, 2) for name, (_, effect) in grouped.items()}
    largest = max(cents, key=lambda name: abs(grouped[name][1]))
    cents[largest] = round(cents[largest] + precio - base - sum(cents.values()), 2)
    contribuciones = [
        {"variable": name, "valor": grouped[name][0], "efecto": cents[name]}
        for name in sorted(cents, key=lambda name: -abs(cents[name]))
    ]
    return base, contribuciones

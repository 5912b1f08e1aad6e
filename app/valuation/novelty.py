"""Warnings when a home is unlike anything the model was trained on.

A forest cannot extrapolate: past the largest home it saw, every home gets the price of
the largest one. So the answer says so, field by field, when a value lies outside the
range seen in training, when no training home lies near the coordinates, and when a
combination of fields (bedrooms in so few m², ...) is one no training home had. What the
client left unknown is compared with nothing.
"""

from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from app.features import FIELDS, Kind
from app.i18n import Language, message
from app.schemas.formulario import Formulario
from app.schemas.manifest import FeatureRange
from app.schemas.prediccion import Advertencia
from app.valuation.artefact import Ratio

# Ratios of two fields whose training range says whether a combination was ever seen;
# None when a field in it is unknown.
RATIOS: dict[str, Callable[[Formulario], float | None]] = {
    "m2_por_habitacion": lambda f: f.superficie_construida / max(f.habitaciones, 1),
    "m2_por_bano": lambda f: None if f.banos is None else f.superficie_construida / f.banos,
    "banos_por_habitacion": lambda f: None if f.banos is None else f.banos / max(f.habitaciones, 1),
}
# The same ratios on columns of many homes (NaN where a field in it is unknown); the
# operations are the same, so the values are the same bits.
RATIO_COLUMNS: dict[str, Callable[[Mapping[str, npt.NDArray[Any]]], npt.NDArray[np.float64]]] = {
    "m2_por_habitacion": lambda c: c["superficie_construida"] / np.maximum(c["habitaciones"], 1),
    "m2_por_bano": lambda c: c["superficie_construida"] / c["banos"],
    "banos_por_habitacion": lambda c: c["banos"] / np.maximum(c["habitaciones"], 1),
}
_CHECKED = tuple(f for f in FIELDS if f.kind in (Kind.NUMBER, Kind.COUNT))
_OPTIONAL = tuple((f.attribute, f.name) for f in FIELDS if f.optional)


def unknown_fields(formulario: Formulario) -> list[str]:
    """The fields of ``formulario`` left unknown, by wire name."""
    return [name for attribute, name in _OPTIONAL if getattr(formulario, attribute) is None]


def unknown_columns(columns: Mapping[str, npt.NDArray[Any]]) -> list[tuple[str, ...]]:
    """``unknown_fields`` of many homes given as columns (NaN where unknown)."""
    n = len(columns["latitud"])
    codes = np.zeros(n, dtype=np.int64)
    for bit, (attribute, _) in enumerate(_OPTIONAL):
        codes |= np.isnan(columns[attribute]).astype(np.int64) << bit
    patterns = {
        code: tuple(name for bit, (_, name) in enumerate(_OPTIONAL) if code >> bit & 1)
        for code in np.unique(codes).tolist()
    }
    return list(map(patterns.__getitem__, codes.tolist()))


class Novelty:
    """The training ranges of a bundle, to compare homes with."""

    def __init__(self, ranges: Mapping[str, FeatureRange], ratios: Mapping[str, Ratio]) -> None:
        # (attribute, name, range) for every range known: the check runs on every answer.
        self._fields = [(f.attribute, f.name, ranges[f.name]) for f in _CHECKED if f.name in ranges]
        self._ratios = [(name, RATIOS[name], ratios[name]) for name in RATIOS if name in ratios]

    def check_many(
        self,
        columns: Mapping[str, npt.NDArray[Any]],
        unknown: Sequence[tuple[str, ...]],
        near: npt.NDArray[np.bool_],
        radius_km: float,
        language: Language,
        widening: Mapping[tuple[str, ...], float],
    ) -> list[Sequence[Advertencia]]:
        """``check`` of many homes given as columns by attribute (NaN where unknown), with
        their unknown fields (``unknown_columns``) and each set's ``widening``: the same
        comparisons on whole columns, in the same order, each warning built once per
        distinct value and shared by the homes it fits."""
        found: dict[int, list[Advertencia]] = {}
        built: dict[tuple[str, float], Advertencia] = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            for attribute, name, seen in self._fields:
                rows, values = _beyond(columns[attribute], seen.min, seen.max)
                for row, value in zip(rows, values, strict=True):
                    if (name, value) not in built:
                        built[name, value] = self._outside(name, value, seen, language)
                    found.setdefault(row, []).append(built[name, value])
            for name, _, seen_ratio in self._ratios:
                ratios = RATIO_COLUMNS[name](columns)
                rows, values = _beyond(ratios, seen_ratio.min, seen_ratio.max)
                for row, value in zip(rows, values, strict=True):
                    if (name, value) not in built:
                        built[name, value] = self._combination(name, value, seen_ratio, language)
                    found.setdefault(row, []).append(built[name, value])
        unknowns = {
            pattern: self._unknown(list(pattern), widening[pattern], language)
            for pattern in set(unknown)
            if pattern
        }
        far = self._far(radius_km, language)
        # Homes warned of nothing else share one answer per set of unknown fields.
        only: dict[tuple[str, ...], Sequence[Advertencia]] = {
            pattern: [warning] for pattern, warning in unknowns.items()
        }
        answers: list[Sequence[Advertencia]] = list(map(only.get, unknown, repeat(())))
        for row in found.keys() | np.flatnonzero(~near).tolist():
            warnings = found.get(row, [])
            if unknown[row]:
                warnings.append(unknowns[unknown[row]])
            if not near[row]:
                warnings.append(far)
            answers[row] = warnings
        return answers

    def check(
        self,
        formulario: Formulario,
        near: bool,
        radius_km: float,
        language: Language,
        widening: float = 1.0,
    ) -> list[Advertencia]:
        """Every way this home is unlike the training data (none for a typical one), and
        the fields it leaves unknown, with how much wider they make its interval
        (``widening``, the interval's multiplier of σ for them)."""
        found = []
        for attribute, name, seen in self._fields:
            value = getattr(formulario, attribute)
            if value is not None and not seen.min <= value <= seen.max:
                found.append(self._outside(name, float(value), seen, language))
        for name, ratio, seen_ratio in self._ratios:
            value = ratio(formulario)
            if value is not None and not seen_ratio.min <= value <= seen_ratio.max:
                found.append(self._combination(name, value, seen_ratio, language))
        unknown = unknown_fields(formulario)
        if unknown:
            found.append(self._unknown(unknown, widening, language))
        if not near:
            found.append(self._far(radius_km, language))
        return found

    @staticmethod
    def _unknown(unknown: list[str], widening: float, language: Language) -> Advertencia:
        return Advertencia(
            campo="desconocidos",
            valor=None,
            minimo=None,
            maximo=None,
            mensaje=_unknown_message(unknown, widening, language),
        )

    @staticmethod
    def _far(radius_km: float, language: Language) -> Advertencia:
        return Advertencia(
            campo="ubicacion",
            valor=None,
            minimo=None,
            maximo=None,
            mensaje=message("no_zone", language, km=f"{radius_km:.1f}"),
        )

    @staticmethod
    def _outside(name: str, value: float, seen: FeatureRange, language: Language) -> Advertencia:
        return Advertencia(
            campo=name,
            valor=value,
            minimo=seen.min,
            maximo=seen.max,
            mensaje=message(
                "outside_range",
                language,
                campo=name,
                valor=f"{value:g}",
                minimo=f"{seen.min:g}",
                maximo=f"{seen.max:g}",
            ),
        )

    @staticmethod
    def _combination(name: str, value: float, seen: Ratio, language: Language) -> Advertencia:
        shown = round(value, 2)
        return Advertencia(
            campo=name,
            valor=shown,
            minimo=round(seen.min, 2),
            maximo=round(seen.max, 2),
            mensaje=message(
                "ratio",
                language,
                etiqueta=message(name, language),
                valor=f"{shown:g}",
                sentido=message("lower" if value < seen.min else "higher", language),
                minimo=f"{seen.min:.2f}",
                maximo=f"{seen.max:.2f}",
            ),
        )


def _beyond(
    values: npt.NDArray[np.float64], low: float, high: float
) -> tuple[list[int], list[float]]:
    """The rows and values ``check`` finds outside ``[low, high]``: ``not low <= value <=
    high`` on the same floats (NaN, unknown, is never outside)."""
    rows = np.flatnonzero((values < low) | (values > high))
    return rows.tolist(), values[rows].tolist()


def _unknown_message(unknown: list[str], widening: float, language: Language) -> str:
    campos = ", ".join(unknown)
    if widening <= 1.0:
        return message("unknown_as_sure", language, campos=campos)
    # How much wider the interval's log-width is; "<1 %" where it rounds to nothing.
    shown = f"{(widening - 1) * 100:.0f} %" if widening >= 1.005 else "<1 %"
    return message("unknown_wider", language, campos=campos, cuanto=shown)

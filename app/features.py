"""The model's feature columns, derived from the ``Formulario`` schema, and the matrix
built from validated homes, by name.

Every column's kind (number, count, yes/no, category), whether it may be unknown, and a
category's codes come from the field's type in ``Formulario``, so a new column is one
field there (plus its place in the synthetic generator). An unknown value is NaN in the
matrix: scikit-learn's trees learn where it goes, and the compiled engine follows them.

Besides the fields, the model sees columns computed from the location (``LOCATION``):
the distance to Puerta del Sol and the coordinates turned by a few angles, so that a
forest, which cuts along one axis at a time, can follow Madrid's diagonal price borders
with fewer cuts. They are defined here once: training, serving, explanations (which fold
them back into ``ubicacion``) and the manifest all see the same columns.

The column order comes from the bundle's manifest, never from the order fields are
declared in the schema; categories go through the bundle's encodings.
"""

import math
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from operator import attrgetter
from typing import Annotated, Any, Union, get_args, get_origin

import numpy as np
import numpy.typing as npt

from app.schemas.formulario import Formulario

Encodings = Mapping[str, Mapping[str, int]]


class Kind(StrEnum):
    """What a feature's values are."""

    NUMBER = "number"
    COUNT = "count"
    BOOLEAN = "boolean"
    CATEGORY = "category"


@dataclass(frozen=True)
class Feature:
    """One model column: its name (as clients, the manifest and CSV files spell it), the
    ``Formulario`` attribute holding it (empty for a column computed from the location),
    its kind, whether a client may leave it unknown and, for a category, its values."""

    name: str
    attribute: str
    kind: Kind
    categories: tuple[str, ...] = ()
    optional: bool = False

    @property
    def derived(self) -> bool:
        """Computed from the location, not sent by clients."""
        return not self.attribute


def _feature(attribute: str) -> Feature:
    field = Formulario.model_fields[attribute]
    name, annotation = field.alias or attribute, field.annotation
    optional = get_origin(annotation) in (Union, types.UnionType)
    if optional:
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        values = tuple(str(m.value) for m in annotation)
        return Feature(name, attribute, Kind.CATEGORY, values, optional)
    kinds = {bool: Kind.BOOLEAN, int: Kind.COUNT, float: Kind.NUMBER}
    if annotation not in kinds:
        raise TypeError(f"Formulario.{attribute}: no feature kind for {annotation!r}")
    return Feature(name, attribute, kinds[annotation], optional=optional)


# Every Formulario field, in declaration order.
FIELDS: tuple[Feature, ...] = tuple(_feature(attribute) for attribute in Formulario.model_fields)
# The fields a client may leave unknown.
OPTIONAL: tuple[str, ...] = tuple(f.name for f in FIELDS if f.optional)

# Columns from the location, in kilometres from Puerta del Sol: the distance, and the
# east/north offsets turned by each angle. Measured with grouped cross-validation on real
# listings (benchmarks/real_listings.py): these beat raw coordinates alone.
PUERTA_DEL_SOL = (40.4169, -3.7035)
KM_PER_DEG_LAT, KM_PER_DEG_LON = 111.0, 84.7  # at Madrid's latitude
ANGLES = (15, 30, 45, 60)
LOCATION_FIELDS = ("latitud", "longitud")
LOCATION: tuple[Feature, ...] = (
    Feature("distancia_sol_km", "", Kind.NUMBER),
    *(
        Feature(f"giro_{angle}_{axis}", "", Kind.NUMBER)
        for angle in ANGLES
        for axis in ("este", "norte")
    ),
)
# (cos, sin) of each angle. The columns are written once below with operations that give
# the same bits on a Python float and on a numpy array (products, sums, a square root),
# so that one home and a batch holding it get identical rows.
_TURNS = tuple((math.cos(math.radians(a)), math.sin(math.radians(a))) for a in ANGLES)


def _location(latitud: Any, longitud: Any) -> list[Any]:
    """The ``LOCATION`` columns, in that order, of floats or of numpy arrays."""
    north = (latitud - PUERTA_DEL_SOL[0]) * KM_PER_DEG_LAT
    east = (longitud - PUERTA_DEL_SOL[1]) * KM_PER_DEG_LON
    columns = [(east * east + north * north) ** 0.5]
    for cos, sin in _TURNS:
        columns += [east * cos + north * sin, north * cos - east * sin]
    return columns


def location_columns(
    latitud: npt.NDArray[np.float64], longitud: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The ``LOCATION`` columns, in that order, for arrays of coordinates."""
    return np.column_stack(_location(latitud, longitud))


# The model's columns by default (what training fits): the fields, then the location's.
FEATURES: tuple[Feature, ...] = FIELDS + LOCATION
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
FIELDS_BY_NAME: dict[str, Feature] = {f.name: f for f in FIELDS}


def _spellings(attribute: str) -> list[str]:
    """Every name a client may use for a field (``banos`` for ``baños``)."""
    alias = Formulario.model_fields[attribute].validation_alias
    choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
    return [str(choice) for choice in choices]


# Every accepted spelling of a column → its name.
SPELLINGS: dict[str, str] = {
    spelling: feature.name
    for feature in FIELDS
    for spelling in [feature.name, *_spellings(feature.attribute)]
}


def default_encodings() -> dict[str, dict[str, int]]:
    """Codes for every category column: its values in declaration order, from 0."""
    return {
        f.name: {value: code for code, value in enumerate(f.categories)}
        for f in FEATURES
        if f.kind is Kind.CATEGORY
    }


def wire_row(columns: Mapping[str, npt.NDArray[Any]], row: int) -> dict[str, Any]:
    """Row ``row`` of homes given as columns, as a client sends it: by wire name, yes/no as
    booleans, unknown fields left out."""
    values: dict[str, Any] = {}
    for feature in FIELDS:
        value = columns[feature.attribute][row]
        if feature.kind is Kind.CATEGORY:
            if value is not None:
                values[feature.name] = value
        elif not np.isnan(value):
            values[feature.name] = bool(value) if feature.kind is Kind.BOOLEAN else float(value)
    return values


class FeatureError(ValueError):
    """The bundle's features or encodings do not fit the ``Formulario`` schema."""


# Up to this many homes, the values are read and the location columns computed home by
# home in Python; past it, a column at a time in numpy, whose fixed cost per call only pays
# off for more homes.
ROW_BY_ROW = 8


class FeatureBuilder:
    """Builds rows in the manifest's feature order from ``Formulario`` objects."""

    def __init__(self, features: Sequence[str], encodings: Encodings) -> None:
        unknown = [name for name in features if name not in FEATURES_BY_NAME]
        if unknown:
            raise FeatureError(f"features not in Formulario: {', '.join(unknown)}")
        if len(set(features)) != len(features):
            raise FeatureError("features are listed more than once")
        self.features = tuple(features)
        fields = [n for n in self.features if not FEATURES_BY_NAME[n].derived]
        derived = [n for n in self.features if FEATURES_BY_NAME[n].derived]
        # The fields are read in one call; the location columns need the coordinates
        # even when the model does not take them as such.
        read = fields + ([n for n in LOCATION_FIELDS if n not in fields] if derived else [])
        self._attributes = [FEATURES_BY_NAME[name].attribute for name in read]
        self._read = attrgetter(*self._attributes)
        self._width = len(read)
        self._location = [read.index(n) for n in LOCATION_FIELDS] if derived else []
        location = [f.name for f in LOCATION]
        self._derived = [location.index(n) for n in derived]
        # Rows are built as the fields read, then the location columns used; this puts
        # them in the model's order (None when they already are).
        built = read + derived
        order = [built.index(n) for n in self.features]
        self._order = None if order == list(range(len(order))) else order
        self._categorical: list[tuple[int, dict[str, int]]] = []
        for name, codes in encodings.items():
            if name not in fields:
                raise FeatureError(f"encodings name {name!r}, which is not a model feature")
            missing = [c for c in FEATURES_BY_NAME[name].categories if c not in codes]
            if missing:
                raise FeatureError(f"encodings for {name!r} lack {', '.join(missing)}")
            self._categorical.append((fields.index(name), dict(codes)))
        for name in self.features:
            if FEATURES_BY_NAME[name].kind is Kind.CATEGORY and name not in encodings:
                raise FeatureError(f"no encodings for categorical feature {name!r}")

    @staticmethod
    def attribute(name: str) -> str:
        """The ``Formulario`` attribute holding feature ``name`` (empty for a location
        column)."""
        return FEATURES_BY_NAME[name].attribute

    def _row(self, formulario: Formulario) -> list[Any]:
        """The values read from one home (None where unknown), categories as codes."""
        values = self._read(formulario)
        row = list(values) if isinstance(values, tuple) else [values]
        for index, codes in self._categorical:
            row[index] = codes[row[index]]
        return row

    def matrix(self, formularios: Sequence[Formulario]) -> npt.NDArray[np.float64]:
        """An ``(n, n_features)`` float64 matrix, one row per home, in the given order;
        NaN where a value is unknown."""
        n = len(formularios)
        if n > ROW_BY_ROW:
            # Attribute by attribute: a pass over the homes per column costs less than a
            # Python list per home. numpy reads None as NaN, as in a row.
            def numbers(attribute: str) -> npt.NDArray[np.float64]:
                return np.fromiter(map(attrgetter(attribute), formularios), np.float64, n)

            return self._read_columns(
                n, numbers, lambda attribute: map(attrgetter(attribute), formularios)
            )
        rows = [self._row(f) for f in formularios]
        if not rows:
            return np.empty((0, len(self.features)))
        if self._derived:
            latitud, longitud = self._location
            for row in rows:
                located = _location(row[latitud], row[longitud])
                row += [located[j] for j in self._derived]
        return self._finish(np.array(rows, dtype=np.float64), add_location=False)

    def matrix_columns(self, columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        """The same matrix as ``matrix`` from homes given as columns by attribute (floats,
        NaN where unknown, yes/no as 1.0 or 0.0; a category's values as text), as
        ``app.home_files`` reads them from files."""
        return self._read_columns(
            len(columns[LOCATION_FIELDS[0]]),
            columns.__getitem__,
            lambda attribute: columns[attribute].tolist(),
        )

    def _read_columns(
        self,
        n: int,
        numbers: Callable[[str], npt.ArrayLike],
        values: Callable[[str], Iterable[Any]],
    ) -> npt.NDArray[np.float64]:
        """The matrix of ``n`` homes read a column at a time: ``numbers(attribute)`` gives
        a column of numbers, ``values(attribute)`` a category's values."""
        x = np.empty((n, self._width), dtype=np.float64)
        categorical = dict(self._categorical)
        for j, attribute in enumerate(self._attributes):
            if j in categorical:
                x[:, j] = list(map(categorical[j].__getitem__, values(attribute)))
            else:
                x[:, j] = numbers(attribute)
        return self._finish(x, add_location=True)

    def _finish(self, x: npt.NDArray[np.float64], add_location: bool) -> npt.NDArray[np.float64]:
        """The rows read with the location columns added (when ``add_location``: else
        they were added row by row), in the model's order."""
        if self._derived and add_location:  # a batch: the location columns at once
            columns = _location(x[:, self._location[0]], x[:, self._location[1]])
            x = np.column_stack([x, *(columns[j] for j in self._derived)])
        return x if self._order is None else x[:, self._order]

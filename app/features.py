"""The model's feature columns, derived from the ``Formulario`` schema, and the matrix
built from validated homes, by name.

Every column's kind (number, count, yes/no, category) and a category's codes come from
the field's type in ``Formulario``, so a new column is one field there (plus its place in
the synthetic generator). The column order comes from the bundle's manifest, never from
the order fields are declared in the schema; categories go through the bundle's encodings.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from operator import attrgetter

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
    ``Formulario`` attribute holding it, its kind and, for a category, its values."""

    name: str
    attribute: str
    kind: Kind
    categories: tuple[str, ...] = ()


def _feature(attribute: str) -> Feature:
    field = Formulario.model_fields[attribute]
    name, annotation = field.alias or attribute, field.annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        values = tuple(str(m.value) for m in annotation)
        return Feature(name, attribute, Kind.CATEGORY, values)
    kinds = {bool: Kind.BOOLEAN, int: Kind.COUNT, float: Kind.NUMBER}
    if annotation not in kinds:
        raise TypeError(f"Formulario.{attribute}: no feature kind for {annotation!r}")
    return Feature(name, attribute, kinds[annotation])


# Every Formulario field, in declaration order (the order training uses by default).
FEATURES: tuple[Feature, ...] = tuple(_feature(attribute) for attribute in Formulario.model_fields)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


def _spellings(attribute: str) -> list[str]:
    """Every name a client may use for a field (``banos`` for ``baños``)."""
    alias = Formulario.model_fields[attribute].validation_alias
    choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
    return [str(choice) for choice in choices]


# Every accepted spelling of a column → its name.
SPELLINGS: dict[str, str] = {
    spelling: feature.name
    for feature in FEATURES
    for spelling in [feature.name, *_spellings(feature.attribute)]
}


def default_encodings() -> dict[str, dict[str, int]]:
    """Codes for every category column: its values in declaration order, from 0."""
    return {
        f.name: {value: code for code, value in enumerate(f.categories)}
        for f in FEATURES
        if f.kind is Kind.CATEGORY
    }


class FeatureError(ValueError):
    """The bundle's features or encodings do not fit the ``Formulario`` schema."""


class FeatureBuilder:
    """Builds rows in the manifest's feature order from ``Formulario`` objects."""

    def __init__(self, features: Sequence[str], encodings: Encodings) -> None:
        unknown = [name for name in features if name not in FEATURES_BY_NAME]
        if unknown:
            raise FeatureError(f"features not in Formulario: {', '.join(unknown)}")
        if len(set(features)) != len(features):
            raise FeatureError("features are listed more than once")
        self.features = tuple(features)
        self._values = attrgetter(*(FEATURES_BY_NAME[name].attribute for name in self.features))
        self._categorical: list[tuple[int, dict[str, int]]] = []
        for name, codes in encodings.items():
            if name not in self.features:
                raise FeatureError(f"encodings name {name!r}, which is not a model feature")
            missing = [c for c in FEATURES_BY_NAME[name].categories if c not in codes]
            if missing:
                raise FeatureError(f"encodings for {name!r} lack {', '.join(missing)}")
            self._categorical.append((self.features.index(name), dict(codes)))
        for name in self.features:
            if FEATURES_BY_NAME[name].kind is Kind.CATEGORY and name not in encodings:
                raise FeatureError(f"no encodings for categorical feature {name!r}")

    @staticmethod
    def attribute(name: str) -> str:
        """The ``Formulario`` attribute holding feature ``name``."""
        return FEATURES_BY_NAME[name].attribute

    def row(self, formulario: Formulario) -> list[float]:
        """The feature values of one home, in model order."""
        values = self._values(formulario)
        row = list(values) if isinstance(values, tuple) else [values]
        for index, codes in self._categorical:
            row[index] = codes[row[index]]
        return row

    def matrix(self, formularios: Sequence[Formulario]) -> npt.NDArray[np.float64]:
        """An ``(n, n_features)`` float64 matrix, one row per home, in the given order."""
        return np.array([self.row(f) for f in formularios], dtype=np.float64).reshape(
            len(formularios), len(self.features)
        )

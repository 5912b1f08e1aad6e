"""Turns validated ``Formulario``s into the model's feature matrix, by name.

The column order comes from the bundle's manifest, never from the order fields are
declared in the schema; categories go through the bundle's encodings.
"""

from collections.abc import Mapping, Sequence
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from app.schemas import Formulario


class FeatureError(ValueError):
    """The bundle's features or encodings do not fit the ``Formulario`` schema."""


class FeatureBuilder:
    """Builds rows in the manifest's feature order from ``Formulario`` objects."""

    def __init__(self, features: Sequence[str], encodings: Mapping[str, Mapping[str, int]]) -> None:
        known = Formulario.model_fields
        unknown = [name for name in features if name not in known]
        if unknown:
            raise FeatureError(f"features not in Formulario: {', '.join(unknown)}")
        if len(set(features)) != len(features):
            raise FeatureError("features are listed more than once")
        self.features = tuple(features)
        self._values = attrgetter(*self.features)
        self._categorical: list[tuple[int, Mapping[str, int]]] = []
        for name, codes in encodings.items():
            if name not in self.features:
                raise FeatureError(f"encodings name {name!r}, which is not a model feature")
            allowed = _categories(name)
            missing = [c for c in allowed if c not in codes]
            if missing:
                raise FeatureError(f"encodings for {name!r} lack {', '.join(missing)}")
            self._categorical.append((self.features.index(name), dict(codes)))
        for name in self.features:
            if _categories(name) and name not in encodings:
                raise FeatureError(f"no encodings for categorical feature {name!r}")

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


def _categories(name: str) -> list[str]:
    """The allowed values of a categorical ``Formulario`` field, or [] for others."""
    annotation = Formulario.model_fields[name].annotation
    members = getattr(annotation, "__members__", None)
    return [m.value for m in members.values()] if members else []

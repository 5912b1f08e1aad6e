"""Appraising a table of homes (a pandas DataFrame): what the MLflow model runs, in
``mlflow.pyfunc`` and on Spark.

Each row is validated as a ``Formulario``, as ``/predecir/lote`` validates each home, and
the valid ones are appraised by ``appraise_columns``, as ``tasador predecir`` appraises a
file: the answers of ``/predecir/lote?detalle=true``, to the cent, as columns. A row that cannot be
appraised gets its reasons in ``motivo`` and no price, never an exception: one bad home
must not fail a Spark job of a million. A column the model does not take, or a required one
missing, is the table's fault, not a row's: refused once, in one line.

pandas is not a dependency of the service; MLflow brings it wherever this runs.
"""

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import ValidationError

from app.bundle.loader import Bundle
from app.features import FIELDS, Kind
from app.schemas.formulario import Formulario
from app.service.appraisal import appraise_columns

# Rows appraised per appraise_columns call: memory stays bounded for any table size, and
# this is /predecir/lote's own default limit.
CHUNK_ROWS = 10_000
PRICES = ("precio", "intervalo_inferior", "intervalo_superior", "precio_m2")
LISTS = ("advertencias", "desconocidos")
OUTPUT_COLUMNS = (*PRICES, *LISTS, "motivo")
# Wire names (baños, and banos, which the API also accepts), from the model itself.
_NAMES = {
    alias: name
    for name, field in Formulario.model_fields.items()
    for alias in {name, field.alias or name}
}
_REQUIRED = [
    field.alias or name for name, field in Formulario.model_fields.items() if field.is_required()
]


class TableError(ValueError):
    """The table as a whole cannot be appraised (a column unknown or missing)."""


def appraise_frame(
    bundle: Bundle, frame: pd.DataFrame, chunk_rows: int = CHUNK_ROWS
) -> pd.DataFrame:
    """One row of answers per row of ``frame``, in its order and with its index:
    ``precio``, ``intervalo_inferior``, ``intervalo_superior``, ``precio_m2`` (NaN where the
    row was refused), the warnings' messages and the unknown fields as lists, and
    ``motivo`` (None where appraised)."""
    _check_columns(frame.columns)
    homes: list[Formulario] = []  # the valid rows' homes
    valid: list[int] = []  # and their positions
    motivos: list[str | None] = []
    for row, record in enumerate(_records(frame)):
        try:
            homes.append(Formulario.model_validate(record))
            valid.append(row)
            motivos.append(None)
        except ValidationError as exc:
            motivos.append(_motivo(exc))
    n = len(motivos)
    prices = {name: np.full(n, np.nan) for name in PRICES}
    lists: dict[str, list[list[str] | None]] = {name: [None] * n for name in LISTS}
    for start in range(0, len(valid), chunk_rows):
        rows = valid[start : start + chunk_rows]
        answers = appraise_columns(bundle, _columns(homes[start : start + chunk_rows]))
        given = (answers.precio, answers.inferior, answers.superior, answers.precio_m2)
        for name, values in zip(PRICES, given, strict=True):
            prices[name][rows] = values
        for row, found, unknown in zip(
            rows, answers.advertencias, answers.desconocidos, strict=True
        ):
            lists["advertencias"][row] = [w.mensaje for w in found]
            lists["desconocidos"][row] = list(unknown)
    # object, not pandas 3's str dtype, which holds NaN for None and which MLflow's Spark
    # conversion turns into the text "nan".
    motivo = pd.Series(motivos, dtype=object, index=frame.index)
    return pd.DataFrame({**prices, **lists, "motivo": motivo}, index=frame.index)


def _check_columns(columns: Sequence[Any]) -> None:
    unknown = [str(c) for c in columns if c not in _NAMES]
    if unknown:
        raise TableError(
            f"unknown column(s) {', '.join(unknown)}; the model takes {', '.join(_REQUIRED)} "
            "and, when known, baños, antiguedad and superficie_util"
        )
    missing = [name for name in _REQUIRED if name not in columns]
    if missing:
        raise TableError(f"missing column(s) {', '.join(missing)}")


def _records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Each row as the API receives a home: native Python values, and an empty cell (None,
    NaN, pandas' NA) left out, which for baños, antiguedad and superficie_util is unknown
    and for any other field is "Field required"."""
    for record in frame.to_dict("records"):
        yield {str(k): v for k, v in record.items() if not _empty(v)}


def _empty(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _motivo(exc: ValidationError) -> str:
    """Every problem of the row in one line: ``field: message; ...``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def _columns(homes: Sequence[Formulario]) -> dict[str, npt.NDArray[Any]]:
    """Validated homes as the columns ``appraise_columns`` takes: floats (NaN where
    unknown, yes/no as 1.0 or 0.0), and a category's values as text."""
    columns: dict[str, npt.NDArray[Any]] = {}
    for feature in FIELDS:
        values = [getattr(home, feature.attribute) for home in homes]
        if feature.kind is Kind.CATEGORY:
            columns[feature.attribute] = np.array([str(v) for v in values], dtype=object)
        else:
            numbers = [np.nan if v is None else float(v) for v in values]
            columns[feature.attribute] = np.array(numbers, dtype=np.float64)
    return columns

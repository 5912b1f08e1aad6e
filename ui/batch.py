"""A CSV of homes → the API's batch call, in chunks → a table with a price per row.

Rows the API refuses are reported with their line in the file and the field at fault;
the other rows of their chunk are sent again without them, so one bad row costs one
price, not a chunk's.
"""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.schemas.formulario import FORMULARIO_EJEMPLO
from ui.api import ApiError, Tasador

COLUMNS = list(FORMULARIO_EJEMPLO)  # the fields, as the API names them
# What may be left out of the file, or left empty in a row: sent as unknown.
OPTIONAL = ("baños", "antiguedad", "superficie_util")
SPELLINGS = {"banos": "baños"}
COUNTS = {"baños", "habitaciones", "antiguedad"}
YES_NO = {"jardin", "ascensor", "garaje"}
TRUE = {"true", "1", "sí", "si", "yes", "verdadero"}
FALSE = {"false", "0", "no", "falso"}
CHUNK_ROWS = 500


@dataclass
class Result:
    """The file's rows with a price each (None where refused) and why rows were refused."""

    rows: list[dict[str, Any]]
    prices: list[float | None]
    problems: dict[int, str] = field(default_factory=dict)  # row index → message

    def table(self) -> list[dict[str, Any]]:
        """The rows as read, plus ``precio_estimado`` and ``problema``."""
        return [
            {**row, "precio_estimado": price, "problema": self.problems.get(i, "")}
            for i, (row, price) in enumerate(zip(self.rows, self.prices, strict=True))
        ]


def read_csv(data: bytes) -> list[dict[str, Any]]:
    """The rows of a CSV (comma or semicolon, UTF-8), with each column's header stripped;
    ``ValueError`` saying which required columns are missing."""
    text = data.decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    names = [SPELLINGS.get((n or "").strip(), (n or "").strip()) for n in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in names and c not in OPTIONAL]
    if missing:
        raise ValueError(f"Faltan columnas: {', '.join(missing)}")
    return [
        {name: value for name, value in zip(names, row.values(), strict=False)} for row in reader
    ]


def formulario(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of a row with JSON types; a value that does not convert is sent as it
    is, and the API says what is wrong with it. An optional field absent or empty is sent
    as unknown (null)."""
    return {name: _typed(name, row.get(name)) for name in COLUMNS}


def _typed(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "" and name in OPTIONAL:
        return None
    if name == "condicion":
        return text
    if name in YES_NO:
        lowered = text.lower()
        return True if lowered in TRUE else False if lowered in FALSE else text
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        return text
    return int(number) if name in COUNTS and number.is_integer() else number


def appraise(
    api: Tasador,
    rows: list[dict[str, Any]],
    chunk: int = CHUNK_ROWS,
    progress: Callable[[float], object] = lambda _: None,
) -> Result:
    """Prices for ``rows`` from the batch route, ``chunk`` rows per call."""
    prices: list[float | None] = [None] * len(rows)
    problems: dict[int, str] = {}
    for start in range(0, len(rows), chunk):
        pending = list(range(start, min(start + chunk, len(rows))))
        while pending:
            try:
                answer = api.lote([formulario(rows[i]) for i in pending])
            except ApiError as exc:
                refused = exc.by_row()
                if not refused:  # not about rows: the whole call failed
                    raise
                for position, fields in refused.items():
                    problems[pending[position]] = "; ".join(
                        f"{name}: {' '.join(messages)}" for name, messages in fields.items()
                    )
                pending = [i for p, i in enumerate(pending) if p not in refused]
                continue
            for i, price in zip(pending, answer, strict=True):
                prices[i] = price
            pending = []
        progress(min(start + chunk, len(rows)) / max(len(rows), 1))
    return Result(rows, prices, problems)


def file_line(index: int) -> int:
    """The line of the file a row index stands on (the header is line 1)."""
    return index + 2

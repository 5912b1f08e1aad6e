"""Training data: labelled homes, read from a CSV or generated.

Each CSV row is checked by the same schema the API uses, so the model is never trained on
a row the service would refuse. Rows that cannot be used are counted by reason, with the
first few line numbers, never dropped silently.
"""

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from app.features import FEATURES_BY_NAME, SPELLINGS, Kind
from app.schemas.evaluacion import Muestra
from app.schemas.formulario import Formulario
from app.schemas.manifest import TARGET

LINES_SHOWN = 5
_TRUE = {"true", "1", "si", "sí", "yes", "t", "y", "s"}
_FALSE = {"false", "0", "no", "f", "n"}


class DatasetError(ValueError):
    """The data cannot be used at all; the message is one line."""


@dataclass
class Rejections:
    """Rows left out of training, by reason."""

    counts: Counter[str] = field(default_factory=Counter)
    lines: dict[str, list[int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many rows were left out."""
        return sum(self.counts.values())

    def add(self, reason: str, line: int) -> None:
        """Record one rejected row."""
        self.counts[reason] += 1
        shown = self.lines.setdefault(reason, [])
        if len(shown) < LINES_SHOWN:
            shown.append(line)

    def summary(self) -> list[str]:
        """One line per reason, most frequent first."""
        return [
            f"{count} row(s): {reason} (line {', '.join(map(str, self.lines[reason]))}"
            f"{', …' if count > len(self.lines[reason]) else ''})"
            for reason, count in self.counts.most_common()
        ]


@dataclass
class Dataset:
    """Validated homes and their prices, in the same order."""

    formularios: list[Formulario]
    precios: npt.NDArray[np.float64]
    source: str
    synthetic: bool
    description: str
    dated: datetime = field(default_factory=lambda: datetime.now(UTC))  # when it was made
    rejected: Rejections = field(default_factory=Rejections)

    def __len__(self) -> int:
        return len(self.formularios)


def required_columns() -> list[str]:
    """The CSV columns training needs: every ``Formulario`` field plus the price."""
    return [*FEATURES_BY_NAME, TARGET]


def _column(header: str) -> str | None:
    """The column a CSV header names (``banos`` is ``baños``), or None for another one."""
    return TARGET if header == TARGET else SPELLINGS.get(header)


def read_csv(path: Path) -> Dataset:
    """Read labelled homes from a CSV with Spanish column names (``banos`` may stand for
    ``baños``); raise ``DatasetError`` when the file as a whole is unusable."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    formularios: list[Formulario] = []
    precios: list[float] = []
    rejected = Rejections()
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = [name.strip() for name in reader.fieldnames or []]
        except UnicodeDecodeError:
            raise DatasetError(f"{path} is not UTF-8 text") from None
        reader.fieldnames = header
        present = {_column(name) for name in header}
        missing = [name for name in required_columns() if name not in present]
        if missing:
            raise DatasetError(
                f"{path} lacks column(s) {', '.join(missing)}; "
                f"expected: {', '.join(required_columns())}"
            )
        try:
            for row in reader:
                reason = _parse(row, formularios, precios)
                if reason is not None:
                    rejected.add(reason, reader.line_num)
        except UnicodeDecodeError:
            raise DatasetError(f"{path} is not UTF-8 text") from None
        except csv.Error as exc:
            raise DatasetError(f"{path} line {reader.line_num}: {exc}") from None
    if not formularios:
        raise DatasetError(f"{path} has no usable rows ({rejected.total} rejected)")
    return Dataset(
        formularios=formularios,
        precios=np.array(precios, dtype=np.float64),
        source=path.name,
        synthetic=False,
        description=f"CSV file {path.name}",
        dated=datetime.fromtimestamp(path.stat().st_mtime, UTC),
        rejected=rejected,
    )


def _parse(row: dict[str, Any], formularios: list[Formulario], precios: list[float]) -> str | None:
    """Validate one CSV row and append it; return why it was rejected, or None."""
    if None in row:
        return "more values than columns"
    values: dict[str, Any] = {}
    for header, text in row.items():
        name = _column(header)
        if name is None:
            continue  # extra columns are ignored
        if text is None:
            return "fewer values than columns"
        text = text.strip()
        if text == "":
            return f"{name}: empty"
        try:
            values[name] = _convert(name, text)
        except ValueError as exc:
            return f"{name}: {exc}"
    try:
        muestra = Muestra.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    formularios.append(muestra)  # a Muestra is a Formulario with its price
    precios.append(muestra.precio)
    return None


def _convert(name: str, text: str) -> Any:
    """A CSV cell as the schema takes it, by the column's kind (the price is a number)."""
    kind = FEATURES_BY_NAME[name].kind if name in FEATURES_BY_NAME else Kind.NUMBER
    if kind is Kind.CATEGORY:
        return text
    if kind is Kind.BOOLEAN:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("not a yes/no value")
    try:
        return float(text)
    except ValueError:
        raise ValueError("not a number") from None

"""Training data: labelled homes, read from a CSV or generated.

Each CSV row is checked by the same schema the API uses, so the model is never trained on
a row the service would refuse. Rows that cannot be used are counted by reason, with the
first few line numbers, never dropped silently.

The file is read by ``app.home_files`` (separators, decimal commas, encodings), the same
reader as ``tasador predecir``'s.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from app.features import FIELDS_BY_NAME, OPTIONAL
from app.home_files import CsvHomes, FileError
from app.schemas.evaluacion import Muestra
from app.schemas.formulario import Formulario
from app.schemas.manifest import TARGET

LINES_SHOWN = 5


class DatasetError(FileError):
    """The data cannot be used at all; the message's first line says why, and any further
    lines (indented) give the detail."""


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
    """The CSV columns training needs: every ``Formulario`` field a client must send, plus
    the price. The optional ones (``OPTIONAL``) may be left out, or their cells empty."""
    return [*(name for name in FIELDS_BY_NAME if name not in OPTIONAL), TARGET]


def all_columns() -> list[str]:
    """Every CSV column training reads: the ``Formulario`` fields plus the price."""
    return [*FIELDS_BY_NAME, TARGET]


def read_csv(path: Path) -> Dataset:
    """Read labelled homes from a CSV with Spanish column names (``banos`` may stand for
    ``baños``), separated by commas, semicolons or tabs; raise ``DatasetError`` when the
    file as a whole is unusable."""
    formularios: list[Formulario] = []
    precios: list[float] = []
    rejected = Rejections()
    try:
        with CsvHomes(path, required_columns(), extra=(TARGET,)) as csv_file:
            for cells in csv_file.rows():
                reason = _parse(csv_file.values(cells), formularios, precios)
                if reason is not None:
                    rejected.add(reason, csv_file.line)
    except DatasetError:
        raise
    except FileError as exc:
        raise DatasetError(str(exc)) from None
    if not formularios:
        if not rejected.total:
            raise DatasetError(f"{path} has no rows below its header")
        raise DatasetError(
            "\n  ".join(
                [
                    f"{path} has no usable rows; all {rejected.total} were rejected:",
                    *rejected.summary(),
                ]
            )
        )
    return Dataset(
        formularios=formularios,
        precios=np.array(precios, dtype=np.float64),
        source=path.name,
        synthetic=False,
        description=f"CSV file {path.name}",
        dated=datetime.fromtimestamp(path.stat().st_mtime, UTC),
        rejected=rejected,
    )


def _parse(
    values: dict[str, Any] | str, formularios: list[Formulario], precios: list[float]
) -> str | None:
    """Validate one row's converted cells and append it; return why it was rejected, or
    None."""
    if isinstance(values, str):
        return values
    try:
        muestra = Muestra.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    formularios.append(muestra)  # a Muestra is a Formulario with its price
    precios.append(muestra.precio)
    return None

"""Training data: labelled homes, read from a CSV or generated.

Each CSV row is checked by the same schema the API uses, so the model is never trained on
a row the service would refuse. Rows that cannot be used are counted by reason, with the
first few line numbers, never dropped silently.

CSV files may be separated by commas, semicolons or tabs: the separator is the one under
which the header names the columns training needs. Semicolon files are what a Spanish
Excel writes, so their numbers may have a decimal comma and thousands dots (``1.234,5``).
"""

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from app.features import FIELDS_BY_NAME, OPTIONAL, SPELLINGS, Kind
from app.schemas.evaluacion import Muestra
from app.schemas.formulario import Formulario
from app.schemas.manifest import TARGET

LINES_SHOWN = 5
SEPARATORS = (",", ";", "\t")  # the first wins when no separator names any column
DECIMAL_COMMA = ";"  # the separator of files whose numbers may be written 1.234,5
_GROUPED = re.compile(r"[+-]?\d{1,3}(\.\d{3})+")  # 1.234 or 1.234.567: thousands dots
# A decimal comma in a cell (40,4168): then a dot in the file can only group thousands.
_DECIMAL_COMMA_CELL = re.compile(r"\d,\d")
_RESAVE = 're-save it as UTF-8 (in Excel: Save As, "CSV UTF-8")'
_TRUE = {"true", "1", "si", "sí", "yes", "t", "y", "s"}
_FALSE = {"false", "0", "no", "f", "n"}


class DatasetError(ValueError):
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


def _column(header: str) -> str | None:
    """The column a CSV header names (``banos`` is ``baños``), or None for another one."""
    return TARGET if header == TARGET else SPELLINGS.get(header)


def _duplicated(header: list[str]) -> str:
    """The columns training reads that the header names more than once, each with its
    positions and spellings (``baños`` and ``banos`` are one column); empty when none."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(header, start=1):
        column = _column(name)
        if column is not None:
            positions.setdefault(column, []).append(position)
    return "; ".join(
        f"{column} (columns {_and([_spelt(header, i) for i in where])})"
        for column, where in positions.items()
        if len(where) > 1
    )


def _spelt(header: list[str], position: int) -> str:
    """``4`` for a column spelt the usual way, ``12 as banos`` for another spelling."""
    name = header[position - 1]
    return str(position) if _column(name) == name else f"{position} as {name}"


def _and(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1]


def read_csv(path: Path) -> Dataset:
    """Read labelled homes from a CSV with Spanish column names (``banos`` may stand for
    ``baños``), separated by commas, semicolons or tabs; raise ``DatasetError`` when the
    file as a whole is unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    text = _decode(path, data)
    separator = _separator(text)
    formularios: list[Formulario] = []
    precios: list[float] = []
    rejected = Rejections()
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=separator)
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    if twice := _duplicated(header):
        # csv.DictReader keeps the last of two equal headers: one would be dropped unseen.
        raise DatasetError(f"{path} has the same column more than once: {twice}")
    present = {_column(name) for name in header}
    missing = [name for name in required_columns() if name not in present]
    if missing:
        raise DatasetError(
            f"{path} lacks column(s) {', '.join(missing)}; "
            f"expected: {', '.join(required_columns())}, and if known "
            f"{', '.join(OPTIONAL)} (separated by commas, semicolons or tabs)"
        )
    numbers = _plain_number
    if separator == DECIMAL_COMMA:
        # One dot before three digits (1.500) is a thousands dot in a file that writes
        # decimals with a comma elsewhere (as coordinates always need), else a decimal point.
        numbers = partial(_number, dots_group=bool(_DECIMAL_COMMA_CELL.search(text)))
    try:
        for row in reader:
            reason = _parse(row, formularios, precios, numbers)
            if reason is not None:
                rejected.add(reason, reader.line_num)
    except csv.Error as exc:
        raise DatasetError(f"{path} line {reader.line_num}: {exc}") from None
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


def _decode(path: Path, data: bytes) -> str:
    """The file's text; a file that is not UTF-8 is refused with the line that is not."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DatasetError(f'{path} is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8; {_RESAVE}')
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"{path} is not UTF-8 text: line {line} has byte 0x{data[exc.start]:02x} "
            f"(Latin-1 or Windows-1252, perhaps); {_RESAVE}"
        ) from None


def _separator(text: str) -> str:
    """The separator under which the header names the most columns training reads."""

    def known(separator: str) -> int:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=separator), [])
        return len({_column(name.strip()) for name in header} - {None})

    return max(SEPARATORS, key=known)


def _parse(
    row: dict[str, Any],
    formularios: list[Formulario],
    precios: list[float],
    numbers: Callable[[str], float],
) -> str | None:
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
        if text == "" and name in OPTIONAL:
            continue  # unknown
        if text == "":
            return f"{name}: empty"
        try:
            values[name] = _convert(name, text, numbers)
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


def _convert(name: str, text: str, numbers: Callable[[str], float]) -> Any:
    """A CSV cell as the schema takes it, by the column's kind (the price is a number)."""
    kind = FIELDS_BY_NAME[name].kind if name in FIELDS_BY_NAME else Kind.NUMBER
    if kind is Kind.CATEGORY:
        return text
    if kind is Kind.BOOLEAN:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("not a yes/no value")
    return numbers(text)


def _plain_number(text: str) -> float:
    """A number with a decimal point, as a comma- or tab-separated file writes it."""
    try:
        return float(text)
    except ValueError:
        raise ValueError("not a number") from None


def _number(text: str, dots_group: bool) -> float:
    """A number as a Spanish spreadsheet writes it: ``1234,5``, ``1.234,5``, ``1.234.567``,
    or with a decimal point (``75.5``). ``1.500`` is 1500 when ``dots_group`` (the file
    writes decimals with a comma), else 1.5."""
    whole, comma, decimals = text.partition(",")
    grouped = _GROUPED.fullmatch(whole) is not None  # 1.234 or 1.234.567
    if comma and "." in whole and not grouped:
        raise ValueError("not a number")
    if grouped:
        if not comma and whole.count(".") == 1 and not dots_group:
            return float(whole)  # a decimal point: the file writes no decimal comma
        whole = whole.replace(".", "")
    try:
        if comma and not decimals.isdigit():
            raise ValueError
        return float(f"{whole}.{decimals}" if comma else whole)
    except ValueError:
        raise ValueError("not a number") from None

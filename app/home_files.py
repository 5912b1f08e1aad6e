"""Files of homes, CSV or Parquet, read as they stream: the one reader behind ``tasador
train --data`` and ``tasador predecir``.

CSV files may be separated by commas, semicolons or tabs: the separator is the one under
which the header names the most known columns. Semicolon files are what a Spanish Excel
writes, so their numbers may have a decimal comma and thousands dots (``1.234,5``). A file
that is not UTF-8 is refused with the line that is not. A cell is converted by its
column's kind (``Formulario``'s); an optional column (``OPTIONAL``) may be absent, or its
cells empty: unknown, as the API takes a field left out.

Nothing here reads a whole file into memory: CSV rows and Parquet record batches are read
a chunk at a time (``HomeChunk``), each row either valid or with the reason it is not
(``motivo``), in the words training's rejections use.
"""

import codecs
import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from annotated_types import Ge, Le
from pydantic import ValidationError

from app.features import FIELDS, FIELDS_BY_NAME, OPTIONAL, SPELLINGS, Feature, Kind, wire_row
from app.schemas.formulario import Formulario

SEPARATORS = (",", ";", "\t")  # the first wins when no separator names any column
DECIMAL_COMMA = ";"  # the separator of files whose numbers may be written 1.234,5
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_MAGIC = b"PAR1"
SNIFF_BYTES = 4096  # read to tell a file of unknown suffix
BLOCK_CHARS = 1 << 20  # text read at a time when scanning a file
_GROUPED = re.compile(r"[+-]?\d{1,3}(\.\d{3})+")  # 1.234 or 1.234.567: thousands dots
# A decimal comma in a cell (40,4168): then a dot in the file can only group thousands.
_DECIMAL_COMMA_CELL = re.compile(r"\d,\d")
RESAVE = 're-save it as UTF-8 (in Excel: Save As, "CSV UTF-8")'
_TRUE = {"true", "1", "si", "sí", "yes", "t", "y", "s"}
_FALSE = {"false", "0", "no", "f", "n"}
MISSING_FILES_EXTRA = (
    "reading Parquet needs pyarrow, which is not installed: uv sync --extra files "
    "(or pip install 'tasador[files]')"
)


class FileError(ValueError):
    """The file cannot be used at all; the message's first line says why."""


Numbers = Callable[[str], float]


def column_of(header: str, extra: Sequence[str] = ()) -> str | None:
    """The column a header names (``banos`` is ``baños``; ``extra`` names stand for
    themselves), or None for another one."""
    return header if header in extra else SPELLINGS.get(header)


def check_header(
    path: Path, header: list[str], required: Sequence[str], extra: Sequence[str] = ()
) -> None:
    """Refuse a header naming a known column twice, or lacking a required one."""
    if twice := _duplicated(header, extra):
        # Of two equal headers one would be read and the other dropped unseen.
        raise FileError(f"{path} has the same column more than once: {twice}")
    present = {column_of(name, extra) for name in header}
    missing = [name for name in required if name not in present]
    if missing:
        raise FileError(
            f"{path} lacks column(s) {', '.join(missing)}; "
            f"expected: {', '.join(required)}, and if known "
            f"{', '.join(OPTIONAL)} (separated by commas, semicolons or tabs)"
        )


def _duplicated(header: list[str], extra: Sequence[str]) -> str:
    """The known columns the header names more than once, each with its positions and
    spellings (``baños`` and ``banos`` are one column); empty when none."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(header, start=1):
        column = column_of(name, extra)
        if column is not None:
            positions.setdefault(column, []).append(position)
    return "; ".join(
        f"{column} (columns {_and([_spelt(header, i, extra) for i in where])})"
        for column, where in positions.items()
        if len(where) > 1
    )


def _spelt(header: list[str], position: int, extra: Sequence[str]) -> str:
    """``4`` for a column spelt the usual way, ``12 as banos`` for another spelling."""
    name = header[position - 1]
    return str(position) if column_of(name, extra) == name else f"{position} as {name}"


def _and(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1]


# CSV


class CsvHomes:
    """An open CSV file of homes: its header checked, its rows read as they stream.

    ``extra`` names columns read besides the ``Formulario`` fields (training's price);
    ``required`` those without which the file is refused."""

    def __init__(self, path: Path, required: Sequence[str], extra: Sequence[str] = ()) -> None:
        self.path = path
        self._extra = tuple(extra)
        head = self._head()
        self.separator = _separator(head, self._extra)
        self._file = self._open()
        self._reader = csv.reader(self._file, delimiter=self.separator)
        try:
            self.header = [name.strip() for name in self._next() or []]
            check_header(path, self.header, required, self._extra)
        except BaseException:
            self.close()
            raise
        # Position and column of every cell read, in the header's order.
        self._read = [
            (i, column)
            for i, name in enumerate(self.header)
            if (column := column_of(name, self._extra)) is not None
        ]
        self.numbers: Numbers = _plain_number
        if self.separator == DECIMAL_COMMA:
            # One dot before three digits (1.500) is a thousands dot in a file that writes
            # decimals with a comma elsewhere (as coordinates always need), else a decimal
            # point.
            self.numbers = partial(_number, dots_group=self._has_decimal_comma())

    def __enter__(self) -> "CsvHomes":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    @property
    def line(self) -> int:
        """The line the last row read ended on."""
        return self._reader.line_num

    def rows(self) -> Iterator[list[str]]:
        """The rows below the header, as their cells; blank lines are skipped."""
        while (cells := self._next()) is not None:
            if cells:
                yield cells

    def values(self, cells: list[str]) -> dict[str, Any] | str:
        """The known cells of a row converted by their column's kind (an empty optional
        one left out: unknown), or the first reason, in the header's order, why not."""
        if len(cells) > len(self.header):
            return "more values than columns"
        values: dict[str, Any] = {}
        for position, name in self._read:
            if position >= len(cells):
                return "fewer values than columns"
            text = cells[position].strip()
            if text == "" and name in OPTIONAL:
                continue  # unknown
            if text == "":
                return f"{name}: empty"
            try:
                values[name] = convert(name, text, self.numbers)
            except ValueError as exc:
                return f"{name}: {exc}"
        return values

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader, None)
        except UnicodeDecodeError:
            raise FileError(_not_utf8(self.path)) from None
        except csv.Error as exc:
            raise FileError(f"{self.path} line {self._reader.line_num}: {exc}") from None

    def _open(self) -> IO[str]:
        try:
            return self.path.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise FileError(f"cannot read {self.path}: {exc.strerror}") from None

    def _head(self) -> str:
        """The file's first block of text, after refusing UTF-16."""
        try:
            with self.path.open("rb") as raw:
                start = raw.read(2)
        except OSError as exc:
            raise FileError(f"cannot read {self.path}: {exc.strerror}") from None
        if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise FileError(
                f'{self.path} is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8; {RESAVE}'
            )
        with self._open() as text:
            return self._read_text(text)

    def _read_text(self, text: IO[str]) -> str:
        try:
            return text.read(BLOCK_CHARS)
        except UnicodeDecodeError:
            raise FileError(_not_utf8(self.path)) from None
        except OSError as exc:
            raise FileError(f"cannot read {self.path}: {exc.strerror}") from None

    def _has_decimal_comma(self) -> bool:
        """Whether any cell of the file has a decimal comma, read a block at a time."""
        with self._open() as text:
            tail = ""
            while block := self._read_text(text):
                if _DECIMAL_COMMA_CELL.search(tail + block):
                    return True
                tail = block[-2:]
        return False


def _not_utf8(path: Path) -> str:
    """Why ``path`` is not UTF-8: the line and byte where it stops being so."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as raw:
        first = True
        while block := raw.read(BLOCK_CHARS):
            if first:
                block, first = block.removeprefix(codecs.BOM_UTF8), False
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                # The decoder may hold back the start of a character from the block before.
                held = len(exc.object) - len(block)
                where = exc.start - held
                line += block.count(b"\n", 0, max(where, 0))
                byte = exc.object[exc.start]
                return (
                    f"{path} is not UTF-8 text: line {line} has byte 0x{byte:02x} "
                    f"(Latin-1 or Windows-1252, perhaps); {RESAVE}"
                )
            line += block.count(b"\n")
    return f"{path} is not UTF-8 text; {RESAVE}"


def _separator(head: str, extra: Sequence[str]) -> str:
    """The separator under which the header names the most known columns."""

    def known(separator: str) -> int:
        header = next(csv.reader(head.splitlines()[:1] or [""], delimiter=separator), [])
        return len({column_of(name.strip(), extra) for name in header} - {None})

    return max(SEPARATORS, key=known)


def convert(name: str, text: str, numbers: Numbers) -> Any:
    """A cell as the schema takes it, by the column's kind (another column is a number)."""
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


# Chunks of homes as columns


@dataclass
class HomeChunk:
    """Homes as columns, by ``Formulario`` attribute: float64 for numbers, counts and
    yes/no (1.0 or 0.0), NaN where unknown; an object array of text for a category. A row
    whose ``motivos`` entry is set cannot be appraised, and its values mean nothing."""

    columns: dict[str, npt.NDArray[Any]]
    motivos: list[str | None]

    def __len__(self) -> int:
        return len(self.motivos)

    def valid(self) -> npt.NDArray[np.bool_]:
        """Which rows can be appraised."""
        return np.array([m is None for m in self.motivos], dtype=bool)

    def take(self, rows: npt.NDArray[np.bool_]) -> dict[str, npt.NDArray[Any]]:
        """The columns of the chosen rows."""
        return {name: column[rows] for name, column in self.columns.items()}


def chunk_from_values(rows: Sequence[dict[str, Any] | str]) -> HomeChunk:
    """A validated chunk from rows converted by ``CsvHomes.values`` (or their reasons)."""
    motivos: list[str | None] = [r if isinstance(r, str) else None for r in rows]
    columns: dict[str, npt.NDArray[Any]] = {}
    for feature in FIELDS:
        name = feature.name
        if feature.kind is Kind.CATEGORY:
            cells = [None if isinstance(r, str) else r.get(name) for r in rows]
            columns[feature.attribute] = np.array(cells, dtype=object)
        else:
            numbers = [np.nan if isinstance(r, str) else r.get(name, np.nan) for r in rows]
            columns[feature.attribute] = np.array(numbers, dtype=np.float64)
    return validate(HomeChunk(columns, motivos))


def validate(chunk: HomeChunk) -> HomeChunk:
    """Check every row as ``Formulario`` would, setting the reason of each it refuses.

    The bounds are checked on whole columns (read from ``Formulario``'s own fields, not
    restated); only a row failing one is validated by ``Formulario`` itself, for its exact
    message. A value passing the column checks passes ``Formulario`` (tested)."""
    suspect = np.zeros(len(chunk), dtype=bool)
    for feature in FIELDS:
        suspect |= _suspect(feature, chunk.columns[feature.attribute])
    util, built = chunk.columns["superficie_util"], chunk.columns["superficie_construida"]
    with np.errstate(invalid="ignore"):
        suspect |= util > built
    suspect &= chunk.valid()
    for row in np.flatnonzero(suspect).tolist():
        try:
            home = Formulario.model_validate(wire_row(chunk.columns, row))
        except ValidationError as exc:
            first = exc.errors()[0]
            chunk.motivos[row] = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        else:  # the column checks were stricter than the schema: take its values
            for feature in FIELDS:
                value = getattr(home, feature.attribute)
                chunk.columns[feature.attribute][row] = (
                    value if feature.kind is Kind.CATEGORY or value is not None else np.nan
                )
    return chunk


def _bounds(feature: Feature) -> tuple[float, float]:
    """The field's ``ge`` and ``le`` in ``Formulario`` (infinite where it has none)."""
    low, high = -np.inf, np.inf
    for mark in Formulario.model_fields[feature.attribute].metadata:
        if isinstance(mark, Ge):
            low = float(mark.ge)  # type: ignore[arg-type]
        elif isinstance(mark, Le):
            high = float(mark.le)  # type: ignore[arg-type]
    return low, high


_CATEGORIES = {f.attribute: f.categories for f in FIELDS}
_BOUNDS = {f.attribute: _bounds(f) for f in FIELDS if f.kind in (Kind.NUMBER, Kind.COUNT)}


def _suspect(feature: Feature, column: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Rows whose value ``Formulario`` might refuse (a missing value only where required)."""
    if feature.kind is Kind.CATEGORY:
        known: npt.NDArray[np.bool_] = column != None  # noqa: E711 - element-wise
        allowed = np.zeros(len(column), dtype=bool)
        for category in _CATEGORIES[feature.attribute]:
            allowed |= column == category
        wrong: npt.NDArray[np.bool_] = known & ~allowed
        return wrong if feature.optional else wrong | ~known
    missing = np.isnan(column)
    bad: npt.NDArray[np.bool_]
    with np.errstate(invalid="ignore"):
        if feature.kind is Kind.BOOLEAN:
            bad = (column != 0) & (column != 1)
        else:
            low, high = _BOUNDS[feature.attribute]
            bad = ~((column >= low) & (column <= high))  # also inf and NaN
            if feature.kind is Kind.COUNT:
                bad |= column != np.floor(column)
    bad &= ~missing
    return bad if feature.optional else bad | missing


# Parquet


class ParquetHomes:
    """An open Parquet file of homes, read a record batch at a time."""

    def __init__(self, path: Path, required: Sequence[str]) -> None:
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError:
            raise FileError(f"{path}: {MISSING_FILES_EXTRA}") from None
        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except OSError as exc:
            strerror = getattr(exc, "strerror", None)
            why = strerror or str(exc).splitlines()[0]
            raise FileError(f"cannot read {path} as Parquet: {why}") from None
        except Exception as exc:  # pyarrow's ArrowInvalid and kin: not a Parquet file
            raise FileError(f"{path} is not a Parquet file: {_first_line(exc)}") from None
        self.schema = self._file.schema_arrow
        self.header = list(self.schema.names)
        self.rows = self._file.metadata.num_rows
        check_header(path, self.header, required)
        self._read = [
            (i, FIELDS_BY_NAME[column])
            for i, name in enumerate(self.header)
            if (column := column_of(name)) is not None
        ]
        for i, feature in self._read:
            _check_type(path, self.header[i], feature, self.schema.field(i).type)

    def batches(self, size: int) -> Iterator[Any]:
        """The file's record batches, of ``size`` rows at most."""
        try:
            yield from self._file.iter_batches(batch_size=size, use_threads=True)
        except OSError as exc:
            raise FileError(f"cannot read {self.path}: {_first_line(exc)}") from None
        except Exception as exc:  # a corrupt page: pyarrow raises its own types
            raise FileError(f"{self.path} is damaged: {_first_line(exc)}") from None

    def homes(self, batch: Any) -> HomeChunk:
        """A record batch as validated homes."""
        n = batch.num_rows
        motivos: list[str | None] = [None] * n
        columns: dict[str, npt.NDArray[Any]] = {}
        for i, feature in self._read:
            column, reasons = _arrow_column(feature, batch.column(i))
            columns[feature.attribute] = column
            for row in np.flatnonzero(reasons != None).tolist():  # noqa: E711
                if motivos[row] is None:
                    motivos[row] = reasons[row]
        for feature in FIELDS:  # an optional column left out: unknown everywhere
            if feature.attribute not in columns:
                fill: Any = None if feature.kind is Kind.CATEGORY else np.nan
                dtype: Any = object if feature.kind is Kind.CATEGORY else np.float64
                columns[feature.attribute] = np.full(n, fill, dtype=dtype)
        return validate(HomeChunk(columns, motivos))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_type(path: Path, name: str, feature: Feature, kind: Any) -> None:
    import pyarrow as pa

    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    text |= pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type)
    number = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    number |= pa.types.is_decimal(kind) or pa.types.is_boolean(kind)
    if pa.types.is_null(kind) or text or (number and feature.kind is not Kind.CATEGORY):
        return
    wanted = "text" if feature.kind is Kind.CATEGORY else "numbers or text"
    raise FileError(f"{path}: column {name} holds {kind}; it should hold {wanted}")


def _arrow_column(feature: Feature, array: Any) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """A Parquet column as ``HomeChunk`` holds it, and each row's reason (or None): null,
    and NaN, are empty; text is read as a CSV cell is."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(array)
    reasons = np.full(n, None, dtype=object)
    kind = array.type
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    if pa.types.is_dictionary(kind) or feature.kind is Kind.CATEGORY or text:
        if pa.types.is_null(kind):
            return _text_column(feature, [None] * n, reasons)
        if not pa.types.is_dictionary(kind):
            array = array.dictionary_encode()
        if len(array.dictionary) == 0:  # every cell null
            return _text_column(feature, [None] * n, reasons)
        # Each distinct cell is read once (a category has a handful), then spread; a null
        # cell is read as an empty one.
        cells = [*array.dictionary.to_pylist(), None]
        distinct, distinct_reasons = _text_column(
            feature, cells, np.full(len(cells), None, dtype=object)
        )
        which = array.indices.fill_null(len(cells) - 1).to_numpy(zero_copy_only=False)
        return distinct[which], distinct_reasons[which]
    if pa.types.is_null(kind):
        column = np.full(n, np.nan)
    else:
        column = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        column = np.array(column, dtype=np.float64)  # writable, whatever arrow handed out
    missing = np.isnan(column)
    if not feature.optional:
        reasons[missing] = f"{feature.name}: empty"
    if feature.kind is Kind.BOOLEAN:
        bad = ~missing & (column != 0) & (column != 1)
        reasons[bad] = f"{feature.name}: not a yes/no value"
        column[bad] = np.nan
    return column, reasons


def _text_column(
    feature: Feature, cells: list[Any], reasons: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    values: list[Any] = []
    empty = None if feature.kind is Kind.CATEGORY else np.nan
    for row, cell in enumerate(cells):
        text = "" if cell is None else str(cell).strip()
        if text == "":
            if not feature.optional:
                reasons[row] = f"{feature.name}: empty"
            values.append(empty)
            continue
        try:
            values.append(convert(feature.name, text, _plain_number))
        except ValueError as exc:
            reasons[row] = f"{feature.name}: {exc}"
            values.append(empty)
    if feature.kind is Kind.CATEGORY:
        return np.array(values, dtype=object), reasons
    return np.array(values, dtype=np.float64), reasons


def kind_of(path: Path) -> str:
    """``csv`` or ``parquet``: by the suffix, else by the first bytes; ``FileError`` for
    a file that is neither."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    try:
        with path.open("rb") as raw:
            start = raw.read(SNIFF_BYTES)
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from None
    if start.startswith(PARQUET_MAGIC):
        return "parquet"
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Not merely a character cut at the end of the bytes read.
        if len(start) < SNIFF_BYTES or exc.start < len(start) - 3:
            raise FileError(
                f"{path} is neither CSV nor Parquet (name it .csv or .parquet if it is one)"
            ) from None
    return "csv"

"""``tasador predecir``: appraise every home of a CSV or Parquet file into a new file.

The output holds the input's columns, as read, then ``OUTPUT_COLUMNS``: the answers of
``/predecir/lote?detalle=true`` to the cent (``appraise_columns``), and for a row that
cannot be appraised, its ``motivo`` and no price. No row is left out.

The file is read, appraised and written a chunk of rows at a time, so memory stays flat
whatever its size; the output is written to a temporary file beside it, synced, and
renamed only when every row is in: an error or Ctrl-C leaves no partial output.
"""

import csv
import json
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt

from app.bundle.loader import Bundle
from app.home_files import (
    CSV_SUFFIXES,
    DECIMAL_COMMA,
    MISSING_FILES_EXTRA,
    PARQUET_SUFFIXES,
    CsvHomes,
    FileError,
    HomeChunk,
    ParquetHomes,
    chunk_from_values,
    kind_of,
)
from app.i18n import Language
from app.schemas.prediccion import Advertencia
from app.service.appraisal import Appraisals, appraise_columns

# Rows a part (--filas-por-bloque): with WORKERS + AHEAD parts in memory at once, the
# peak stays flat and well under 400 MB (benchmarks/files.py); larger parts are no faster.
CHUNK_ROWS = 25_000
WORKERS = 2  # threads reading and appraising parts of the file
AHEAD = 2  # parts read and appraised beyond the one being written
PRICES = ("precio", "intervalo_inferior", "intervalo_superior", "precio_m2")
LISTS = ("advertencias", "desconocidos")
OUTPUT_COLUMNS = (*PRICES, *LISTS, "motivo")
SUFFIX = ".tasado"  # casas.csv → casas.tasado.csv


@dataclass(frozen=True)
class Summary:
    """What a run did."""

    rows: int
    refused: int
    seconds: float
    output: Path

    @property
    def rate(self) -> float:
        """Rows per second, end to end."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Shared:
    """A column of lists in which many rows hold the same one (no warning, or only the
    unknown fields'): each distinct list once, and each row's index into them."""

    distinct: list[list[str] | None]
    which: npt.NDArray[np.intp]

    @classmethod
    def of(
        cls, n: int, rows: npt.NDArray[np.intp], values: Sequence[Any], text: Any = list
    ) -> "Shared":
        """``n`` rows, None but at ``rows``, which hold ``text`` of ``values``; the same
        object (by identity: the values are alive, so their ids are distinct) is read
        once."""
        ids = np.fromiter(map(id, values), dtype=np.intp, count=len(values))
        _, firsts, codes = np.unique(ids, return_index=True, return_inverse=True)
        distinct: list[list[str] | None] = [None, *(text(values[i]) for i in firsts.tolist())]
        which = np.zeros(n, dtype=np.intp)
        which[rows] = codes + 1
        return cls(distinct, which)


def _messages(advertencias: Sequence[Advertencia]) -> list[str]:
    return [w.mensaje for w in advertencias]


@dataclass(frozen=True)
class Results:
    """The output columns of one chunk, one entry per row: the prices (NaN where a row
    was refused), the lists (None where refused) and the motivos (None where appraised)."""

    prices: dict[str, npt.NDArray[np.float64]]
    lists: dict[str, Shared]
    motivos: list[str | None]

    @property
    def appraised(self) -> npt.NDArray[np.bool_]:
        """Which rows have a price."""
        return ~np.isnan(self.prices["precio"])

    @classmethod
    def of(cls, chunk: HomeChunk, answers: Appraisals | None) -> "Results":
        """Scatter the appraisals of the chunk's valid rows among all its rows."""
        n = len(chunk)
        prices = {name: np.full(n, np.nan) for name in PRICES}
        none = np.empty(0, dtype=np.intp)
        lists = {name: Shared.of(n, none, []) for name in LISTS}
        if answers is not None:
            valid = chunk.valid()
            given = (answers.precio, answers.inferior, answers.superior, answers.precio_m2)
            for name, values in zip(PRICES, given, strict=True):
                prices[name][valid] = values
            rows = np.flatnonzero(valid)
            lists["advertencias"] = Shared.of(n, rows, answers.advertencias, _messages)
            lists["desconocidos"] = Shared.of(n, rows, answers.desconocidos)
        return cls(prices, lists, list(chunk.motivos))


class Writer(Protocol):
    """Writes the input's rows with their results."""

    def write(self, part: Any, results: Results) -> None:
        """One chunk: the input's rows (as the reader gave them) and their results."""

    def close(self) -> None:
        """Finish the file."""


class Progress:
    """A progress bar in rows/s on stderr when ``shown`` and tqdm (the train extra) is
    installed; else nothing is shown."""

    def __init__(self, shown: bool) -> None:
        self._shown = shown
        self._bar: Any = None

    def start(self, total: int | None) -> None:
        """The bar, for ``total`` rows (None when unknown, as for a CSV)."""
        if self._shown:
            try:
                from tqdm import tqdm
            except ModuleNotFoundError:
                return
            self._bar = tqdm(total=total, unit=" rows", unit_scale=True, file=sys.stderr)

    def update(self, rows: int) -> None:
        """``rows`` more are done."""
        if self._bar is not None:
            self._bar.update(rows)

    def close(self) -> None:
        """Take the bar off."""
        if self._bar is not None:
            self._bar.close()


def default_output(entrada: Path) -> Path:
    """``casas.csv`` → ``casas.tasado.csv``; ``casas.parquet`` → ``casas.tasado.parquet``."""
    suffix = ".parquet" if kind_of(entrada) == "parquet" else ".csv"
    return entrada.with_name(entrada.stem + SUFFIX + suffix)


def output_kind(salida: Path) -> str:
    """``csv`` or ``parquet``, by ``salida``'s suffix; ``FileError`` for another."""
    suffix = salida.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise FileError(f"{salida}: the output's name must end in .csv or .parquet")


def appraise_file(
    bundle: Bundle,
    entrada: Path,
    salida: Path,
    language: Language,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> Summary:
    """Appraise every row of ``entrada`` into ``salida``; ``FileError`` (one line) when the
    input cannot be read as a whole or the output cannot be written."""
    started = time.perf_counter()
    kind, out_kind = kind_of(entrada), output_kind(salida)
    if out_kind == "parquet":
        _need_pyarrow(salida)
    rows = refused = 0
    progress = progress or Progress(shown=False)
    with _source(entrada, kind, chunk_rows) as (header, separator, total, parts):
        if clash := [name for name in header if name in OUTPUT_COLUMNS]:
            raise FileError(
                f"{entrada} already has column(s) {', '.join(clash)}, which the output adds; "
                "rename or drop them"
            )
        progress.start(total)
        with atomic_output(salida) as temporary:
            writer = _writer(out_kind, temporary, header, separator)
            try:
                for part, chunk, results in _appraised(bundle, language, parts):
                    writer.write(part, results)
                    rows += len(chunk)
                    refused += len(chunk) - int(np.count_nonzero(results.appraised))
                    progress.update(len(chunk))
            finally:
                writer.close()
                progress.close()
    return Summary(rows, refused, time.perf_counter() - started, salida)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; on success it is synced and renamed to
    ``path``, on any error or interruption removed."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise FileError(f"cannot write {path}: {exc.strerror}") from None
    os.close(fd)
    temporary = Path(name)
    try:
        temporary.chmod(0o666 & ~_umask())  # as open() would create it, not mkstemp's 0600
        yield temporary
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (where the system allows a folder to be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Each part of the input as the reader gave it, and how to read its homes.
Parts = Iterator[tuple[Any, Callable[[], HomeChunk]]]


def _appraised(
    bundle: Bundle, language: Language, parts: Parts
) -> Iterator[tuple[Any, HomeChunk, Results]]:
    """Each part, its homes and their results, in the input's order. Parts are read and
    appraised by ``WORKERS`` threads, ``AHEAD`` at most beyond the one being written:
    the forest runs outside the GIL (ONNX Runtime), so one part's forest runs while
    another is read, checked or written, and memory holds a few parts whatever the file's
    size."""
    pending: deque[Future[tuple[Any, HomeChunk, Results]]] = deque()
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="predecir") as pool:
        try:
            for part, homes in parts:
                pending.append(pool.submit(_appraise, bundle, language, part, homes))
                if len(pending) > AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # stopped: the parts not started are dropped
            for future in pending:
                future.cancel()


def _appraise(
    bundle: Bundle, language: Language, part: Any, homes: Callable[[], HomeChunk]
) -> tuple[Any, HomeChunk, Results]:
    chunk = homes()
    valid = chunk.valid()
    answers = appraise_columns(bundle, chunk.take(valid), language) if valid.any() else None
    return part, chunk, Results.of(chunk, answers)


@contextmanager
def _source(
    entrada: Path, kind: str, chunk_rows: int
) -> Iterator[tuple[list[str], str, int | None, Parts]]:
    """The input's header, its separator (``,`` for Parquet), its rows (when known) and
    its chunks."""
    if kind == "parquet":
        parquet = ParquetHomes(entrada, _required())
        parts = ((b, partial(parquet.homes, b)) for b in parquet.batches(chunk_rows))
        yield parquet.header, ",", parquet.rows, parts
        return
    with CsvHomes(entrada, _required()) as csv_file:
        yield csv_file.header, csv_file.separator, None, _csv_parts(csv_file, chunk_rows)


def _required() -> list[str]:
    from app.features import FIELDS

    return [f.name for f in FIELDS if not f.optional]


def _csv_parts(csv_file: CsvHomes, chunk_rows: int) -> Parts:
    width = len(csv_file.header)
    cells: list[list[str]] = []
    for row in csv_file.rows():
        cells.append(row)
        if len(cells) == chunk_rows:
            yield _csv_chunk(csv_file, cells, width)
            cells = []
    if cells:
        yield _csv_chunk(csv_file, cells, width)


def _csv_chunk(
    csv_file: CsvHomes, rows: list[list[str]], width: int
) -> tuple[list[list[str]], Callable[[], HomeChunk]]:
    # A row with more or fewer values than columns keeps the columns the header names.
    shaped = [r if len(r) == width else (r + [""] * width)[:width] for r in rows]
    return shaped, lambda: chunk_from_values([csv_file.values(cells) for cells in rows])


def _need_pyarrow(path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ModuleNotFoundError:
        raise FileError(f"{path}: {MISSING_FILES_EXTRA.replace('reading', 'writing')}") from None


def _writer(kind: str, path: Path, header: list[str], separator: str) -> Writer:
    if kind == "parquet":
        return ParquetWriter(path, header)
    return CsvWriter(path, header, separator)


class CsvWriter:
    """A CSV with the input's separator; a semicolon file gets decimal commas, as the
    Spanish spreadsheets that write them read them."""

    def __init__(self, path: Path, header: list[str], separator: str) -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, delimiter=separator)
        self._csv.writerow([*header, *OUTPUT_COLUMNS])
        self._comma = separator == DECIMAL_COMMA

    def write(self, part: Any, results: Results) -> None:
        """One chunk of rows."""
        cells = part if isinstance(part, list) else _cells(part)
        columns = [self._prices(results.prices[name]) for name in PRICES]
        columns += [_json(results.lists[name]) for name in LISTS]
        columns.append(["" if m is None else m for m in results.motivos])
        self._csv.writerows(
            row + list(extra) for row, extra in zip(cells, zip(*columns, strict=True), strict=True)
        )

    def _prices(self, values: npt.NDArray[np.float64]) -> list[str]:
        texts = ["" if v != v else repr(v) for v in values.tolist()]  # v != v: NaN
        return [t.replace(".", ",") for t in texts] if self._comma else texts

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


def _json(column: Shared) -> list[str]:
    """Each row's list as JSON text ("" for None)."""
    texts = ["" if v is None else json.dumps(v, ensure_ascii=False) for v in column.distinct]
    return [texts[i] for i in column.which.tolist()]


def _arrow_lists(pa: Any, column: Shared, kind: Any) -> Any:
    """An Arrow list column, each distinct list converted once."""
    return pa.array(column.distinct, kind).take(column.which)


def _cells(batch: Any) -> list[list[str]]:
    """A Parquet record batch's rows as CSV cells."""
    columns = [[_cell(v) for v in column.to_pylist()] for column in batch.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ParquetWriter:
    """A Parquet file: the input's columns as they were (text, from a CSV), then the
    results (prices as doubles, warnings and unknown fields as lists of text)."""

    def __init__(self, path: Path, header: list[str]) -> None:
        import pyarrow as pa

        self._pa = pa
        self._path = path
        self._header = header
        self._types = {
            **{name: pa.float64() for name in PRICES},
            **{name: pa.list_(pa.string()) for name in LISTS},
            "motivo": pa.string(),
        }
        self._writer: Any = None

    def write(self, part: Any, results: Results) -> None:
        """One chunk of rows."""
        pa = self._pa
        if isinstance(part, list):  # CSV rows: each column as text
            inputs = [
                pa.array([row[i] for row in part], pa.string()) for i in range(len(self._header))
            ]
        else:
            inputs = list(part.columns)
        added = [pa.array(results.prices[n], mask=np.isnan(results.prices[n])) for n in PRICES]
        added += [_arrow_lists(pa, results.lists[n], self._types[n]) for n in LISTS]
        added.append(pa.array(results.motivos, pa.string()))
        batch = pa.RecordBatch.from_arrays(inputs + added, names=[*self._header, *OUTPUT_COLUMNS])
        if self._writer is None:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self._path, batch.schema)
        self._writer.write_batch(batch)

    def close(self) -> None:
        """Write the footer (an empty file with the schema when no row came)."""
        if self._writer is None:
            import pyarrow.parquet as pq

            schema = self._pa.schema(
                [(n, self._pa.string()) for n in self._header]
                + [(n, self._types[n]) for n in OUTPUT_COLUMNS]
            )
            self._writer = pq.ParquetWriter(self._path, schema)
        self._writer.close()


__all__: Sequence[str] = [
    "OUTPUT_COLUMNS",
    "Progress",
    "Summary",
    "appraise_file",
    "default_output",
    "output_kind",
]

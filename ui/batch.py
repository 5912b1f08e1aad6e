"""A CSV of homes → the API's batch call, in chunks → a table with a price per row.

The file is read by ``app.home_files``, the reader of ``tasador train`` and ``tasador
predecir``: the same separators (comma, semicolon, tab), Spanish numbers in semicolon
files, ``banos`` for ``baños``, and the same diagnoses of a file it cannot use (a Latin-1
file is named with its line and byte). Rows the reader or the API refuse are reported
with their line in the file and the field at fault; the other rows of their chunk are
sent again without them, so one bad row costs one price, not a chunk's.
"""

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.features import OPTIONAL
from app.home_files import CsvHomes, FileError
from app.schemas.formulario import FORMULARIO_EJEMPLO
from ui.api import ApiError, Tasador
from ui.formatting import LABELS, field_error

COLUMNS = list(FORMULARIO_EJEMPLO)  # the fields, as the API names them
REQUIRED = [c for c in COLUMNS if c not in OPTIONAL]
CHUNK_ROWS = 500
PRICE, LOW, HIGH, PROBLEM = "Precio estimado", "Desde", "Hasta", "Problema"
# The reader's diagnoses (English, as the CLI prints them) said in Spanish; any other
# is shown as it is.
_SPANISH = (
    (
        re.compile(
            r"^(?P<file>.+) is not UTF-8 text: line (?P<line>\d+) has byte (?P<byte>0x[0-9a-f]+)"
        ),
        "{file} no está en UTF-8: la línea {line} tiene el byte {byte} (¿Latin-1 o "
        "Windows-1252?). Guárdalo como UTF-8 (en Excel: Guardar como, «CSV UTF-8») y "
        "súbelo de nuevo.",
    ),
    (
        re.compile(r"^(?P<file>.+) is UTF-16 text"),
        "{file} está en UTF-16 (el «Texto Unicode» de Excel), no en UTF-8. Guárdalo como "
        "UTF-8 (en Excel: Guardar como, «CSV UTF-8») y súbelo de nuevo.",
    ),
    (
        re.compile(r"^(?P<file>.+) lacks column\(s\) (?P<missing>[^;]+);"),
        "A {file} le faltan columnas: {missing}. Hacen falta "
        + ", ".join(REQUIRED)
        + "; y, si se saben, "
        + ", ".join(OPTIONAL)
        + " (separadas por comas, puntos y comas o tabuladores).",
    ),
    (
        re.compile(r"^(?P<file>.+) has the same column more than once: (?P<which>.+)$"),
        "{file} tiene la misma columna más de una vez: {which}.",
    ),
)

_REASONS = {
    "not a number": "no es un número",
    "not a yes/no value": "no es un sí o no",
    "empty": "está vacía",
    "fewer values than columns": "tiene menos valores que columnas",
    "more values than columns": "tiene más valores que columnas",
}


@dataclass
class Row:
    """One row of the file: its cells as read (by header), its line, and what the API
    takes (``None`` where the reader refused it, saying why in ``problem``)."""

    cells: dict[str, str]
    line: int
    formulario: dict[str, Any] | None
    problem: str = ""


@dataclass
class Result:
    """The file's rows with an appraisal each (None where refused) and why rows were
    refused."""

    rows: list[Row]
    appraisals: list[dict[str, Any] | None]
    problems: dict[int, str] = field(default_factory=dict)  # row index → message

    @property
    def prices(self) -> list[float | None]:
        """One price per row, None where refused."""
        return [None if a is None else float(a["precio"]) for a in self.appraisals]

    def table(self) -> list[dict[str, Any]]:
        """The answer first (price and its range), then the row's cells as read, then
        why a row was refused."""
        table = []
        for i, (row, appraisal) in enumerate(zip(self.rows, self.appraisals, strict=True)):
            interval = (appraisal or {}).get("intervalo") or {}
            table.append(
                {
                    PRICE: None if appraisal is None else float(appraisal["precio"]),
                    LOW: interval.get("inferior"),
                    HIGH: interval.get("superior"),
                    **row.cells,
                    PROBLEM: self.problems.get(i, ""),
                }
            )
        return table


def read_csv(data: bytes, name: str = "archivo.csv") -> list[Row]:
    """The rows of an uploaded CSV, read as ``tasador train`` reads a file;
    ``ValueError`` saying in Spanish why the file cannot be used."""
    with tempfile.TemporaryDirectory(prefix="tasador-ui-") as folder:
        path = Path(folder) / (Path(name).name or "archivo.csv")
        path.write_bytes(data)
        try:
            with CsvHomes(path, REQUIRED) as homes:
                rows = []
                for cells in homes.rows():
                    values = homes.values(cells)
                    by_header = dict(zip(homes.header, cells, strict=False))
                    if isinstance(values, str):
                        rows.append(Row(by_header, homes.line, None, _reason(values)))
                    else:
                        home = {c: values.get(c) for c in COLUMNS}
                        rows.append(Row(by_header, homes.line, home))
        except FileError as exc:
            # Named as the person named it, not by the temporary copy's path.
            said = str(exc).splitlines()[0].replace(str(path), path.name)
            raise ValueError(spanish(said)) from None
    return rows


def _label(name: str) -> str:
    return LABELS.get(name, name).split(" (")[0]


def _reason(reason: str) -> str:
    """Why the reader refused a row (``superficie_util: not a number``), in Spanish."""
    name, _, what = reason.rpartition(": ")
    said = _REASONS.get(what, what)
    return f"{_label(name)}: {said}" if name else said[:1].upper() + said[1:]


def spanish(diagnosis: str) -> str:
    """One of the reader's diagnoses, in Spanish where it is a known one."""
    for pattern, template in _SPANISH:
        found = pattern.match(diagnosis)
        if found:
            return template.format(**found.groupdict())
    return diagnosis


def appraise(
    api: Tasador,
    rows: list[Row],
    chunk: int = CHUNK_ROWS,
    progress: Callable[[float], object] = lambda _: None,
) -> Result:
    """Appraisals for ``rows`` from the batch route, ``chunk`` rows per call."""
    appraisals: list[dict[str, Any] | None] = [None] * len(rows)
    problems = {i: row.problem for i, row in enumerate(rows) if row.formulario is None}
    readable = [i for i, row in enumerate(rows) if row.formulario is not None]
    for start in range(0, len(readable), chunk):
        pending = readable[start : start + chunk]
        while pending:
            try:
                answer = api.lote_detalle([rows[i].formulario or {} for i in pending])
            except ApiError as exc:
                refused = exc.by_row()
                if not refused:  # not about rows: the whole call failed
                    raise
                for position, fields in refused.items():
                    problems[pending[position]] = "; ".join(
                        f"{_label(name)}: {' '.join(field_error(m) for m in messages)}"
                        for name, messages in fields.items()
                    )
                pending = [i for p, i in enumerate(pending) if p not in refused]
                continue
            for i, appraisal in zip(pending, answer, strict=True):
                appraisals[i] = appraisal
            pending = []
        progress(min(start + chunk, len(readable)) / max(len(readable), 1))
    return Result(rows, appraisals, problems)

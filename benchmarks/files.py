"""``tasador predecir`` on large generated files: rows/s end to end and peak memory, for
Parquet and CSV, beside the forest alone on the same rows, and a sample checked against
``/predecir/lote?detalle=true`` to the cent.

    uv run python -m benchmarks.files                 # 2,000,000 rows, 3 runs of each
    uv run python -m benchmarks.files --rows 200000 --csv-rows 50000 --repeat 1

The baseline is the compiled forest alone (the bundle's engine, as ``tasador predecir``
runs it: chunks of ``CHUNK_ROWS`` rows) on the same homes' feature matrix, timed in this
process in the same run: the ratio says what reading, checking, intervals, warnings and
writing add to the model itself, whatever else the machine is doing.

The homes are drawn on whole columns with numpy (2 million ``Formulario`` objects would
take minutes to make): Madrid coordinates, areas, rooms, one home in ten with baños,
antiguedad or superficie_util unknown (null), and one in a thousand refused (an area of
5 m²), so the run pays for warnings, unknown fields and motivos as real files do. The
command runs as a child process, as a user runs it; its peak resident memory is the
kernel's high-water mark (``VmHWM``), its time the wall clock from exec to exit (start-up included),
and its CPU time (user + system, all threads): on a machine shared with other work the
wall clock says what a user waits, the CPU time what the command costs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from app.config import EMBEDDED_MODEL_DIR, Settings
from app.features import FIELDS
from app.predecir import CHUNK_ROWS, OUTPUT_COLUMNS

SAMPLE = 10_000  # rows compared with the HTTP API (its largest batch)
CONDICIONES = ["A reformar", "Reformado", "A estrenar", "En buen estado"]


def homes(n: int, seed: int = 5) -> pa.Table:
    """``n`` homes as a table with the Formulario columns."""
    rng = np.random.default_rng(seed)
    built = rng.uniform(30, 300, n).round(1)
    bedrooms = np.clip((built / 35).astype(np.int64) + rng.integers(-1, 2, n), 0, 8)
    built[rng.random(n) < 0.001] = 5.0  # refused: below Formulario's 10 m²

    def unknown(values: np.ndarray) -> pa.Array:
        return pa.array(values, mask=rng.random(n) < 0.1)

    return pa.table(
        {
            "latitud": rng.uniform(40.36, 40.5, n),
            "longitud": rng.uniform(-3.78, -3.6, n),
            "superficie_construida": built,
            "baños": unknown(np.clip(bedrooms // 2 + 1, 1, 4)),
            "habitaciones": bedrooms,
            "jardin": rng.random(n) < 0.2,
            "antiguedad": unknown(rng.integers(0, 110, n)),
            "superficie_util": unknown(np.maximum(10.0, (built * 0.85).round(1))),
            "ascensor": rng.random(n) < 0.7,
            "garaje": rng.random(n) < 0.3,
            "condicion": pa.array(np.array(CONDICIONES)[rng.integers(0, 4, n)]).dictionary_encode(),
        }
    )


@dataclass(frozen=True)
class Run:
    """One measured run of the command."""

    seconds: float
    cpu_seconds: float
    peak_mb: float


# Runs the command and writes its own peak resident memory to argv[1]: the kernel's
# high-water mark of the process's memory (VmHWM), which, unlike getrusage's maxrss of a
# child, does not start from the size of the parent it was forked from.
_MEASURED = """
import atexit, runpy, sys
from pathlib import Path

def peak(out=Path(sys.argv.pop(1))):
    status = Path("/proc/self/status").read_text()
    out.write_text(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM")))

atexit.register(peak)
sys.argv[0] = "tasador"
runpy.run_module("app.cli", run_name="__main__")
"""


def run(entrada: Path, salida: Path, model_dir: Path) -> Run:
    """Wall and CPU seconds and peak resident MB of ``tasador predecir`` in a child."""
    peak = salida.with_name("peak_kb")
    command = [sys.executable, "-c", _MEASURED, str(peak), "predecir", str(entrada)]
    command += ["--salida", str(salida), "--model-dir", str(model_dir), "--idioma", "en"]
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, command)
    return Run(seconds, usage.ru_utime + usage.ru_stime, int(peak.read_text()) / 1024)


def forest_alone(entrada: Path, model_dir: Path, repeat: int) -> list[tuple[float, float]]:
    """Wall and CPU seconds of the bundle's engine alone on the file's valid rows, in the
    file's order, ``CHUNK_ROWS`` a call; ``repeat`` times."""
    from app.bundle.source import load_served_bundle
    from app.home_files import ParquetHomes

    bundle = load_served_bundle(Settings(model_dir=model_dir))
    parquet = ParquetHomes(entrada, [f.name for f in FIELDS if not f.optional])
    matrices = []
    for batch in parquet.batches(CHUNK_ROWS):
        chunk = parquet.homes(batch)
        matrices.append(bundle.features.matrix_columns(chunk.take(chunk.valid())))
    times = []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        for x in matrices:
            bundle.engine.predict(x)
        times.append((time.perf_counter() - started, time.process_time() - used))
    return times


def compare(entrada: Path, salida: Path, model_dir: Path, rows: int) -> int:
    """Rows of a random sample whose answers differ from the detailed batch's."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    rng = np.random.default_rng(1)
    picked = np.sort(rng.choice(rows, size=min(SAMPLE, rows), replace=False))
    given = pq.read_table(entrada).take(picked).to_pylist()
    out = pq.read_table(salida, columns=list(OUTPUT_COLUMNS)).take(picked).to_pylist()
    valid = [i for i, row in enumerate(out) if row["motivo"] is None]
    body = {"formularios": [_wire(given[i]) for i in valid]}
    with TestClient(create_app(Settings(model_dir=model_dir))) as client:
        answer = client.post("/predecir/lote?detalle=true", json=body)
        answer.raise_for_status()
    differ = 0
    for i, expected in zip(valid, answer.json()["resultados"], strict=True):
        got = out[i]
        same = (
            got["precio"] == expected["precio"]
            and got["intervalo_inferior"] == expected["intervalo"]["inferior"]
            and got["intervalo_superior"] == expected["intervalo"]["superior"]
            and got["precio_m2"] == expected["precio_m2"]
            and got["advertencias"] == [w["mensaje"] for w in expected["advertencias"]]
            and got["desconocidos"] == expected["desconocidos"]
        )
        differ += not same
    print(f"sample: {len(valid)} priced rows compared, {differ} differ", flush=True)
    return differ


def _wire(row: dict[str, Any]) -> dict[str, Any]:
    return {f.name: row[f.name] for f in FIELDS if row.get(f.name) is not None}


def _spread(values: list[float], unit: str, scale: float = 1.0) -> str:
    """``best (worst-best)`` of repeated measures."""
    shown = sorted(v * scale for v in values)
    if len(shown) == 1:
        return f"{shown[0]:,.0f}{unit}"
    return f"{shown[0]:,.0f}-{shown[-1]:,.0f}{unit}"


def measure(label: str, rows: int, entrada: Path, salida: Path, args: Any) -> None:
    """Run the command ``args.repeat`` times on ``entrada``; print its figures."""
    runs = [run(entrada, salida, args.model_dir) for _ in range(args.repeat)]
    print(
        f"tasador predecir, {label}, {rows:,} rows, {len(runs)} runs: "
        f"{_spread([rows / r.seconds for r in runs], ' rows/s')} end to end "
        f"({_spread([r.seconds for r in runs], ' s')} wall), "
        f"{_spread([rows / r.cpu_seconds for r in runs], ' rows per CPU-second')}; "
        f"peak RSS {_spread([r.peak_mb for r in runs], ' MB')}",
        flush=True,
    )


def write_csv(table: pa.Table, path: Path) -> None:
    """The homes as a CSV file (unknown cells empty), as a spreadsheet exports them."""
    import pyarrow.csv as pcsv

    plain = table.set_column(
        table.schema.get_field_index("condicion"),
        "condicion",
        table["condicion"].cast(pa.string()),
    )
    pcsv.write_csv(plain, path)


def main() -> int:
    """Generate, appraise, compare, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--csv-rows", type=int, default=200_000, help="0: no CSV run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=EMBEDDED_MODEL_DIR)
    parser.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        entrada = args.keep or Path(folder) / "casas.parquet"
        salida = Path(folder) / "casas.tasado.parquet"
        started = time.perf_counter()
        table = homes(args.rows)
        pq.write_table(table, entrada)
        made = time.perf_counter() - started
        print(f"{args.rows:,} homes generated in {made:.1f} s ({entrada})", flush=True)
        forest = forest_alone(entrada, args.model_dir, args.repeat)
        print(
            f"baseline, the forest alone ({CHUNK_ROWS:,} rows a call) on the same rows: "
            f"{_spread([args.rows / s for s, _ in forest], ' rows/s')}, "
            f"{_spread([args.rows / c for _, c in forest], ' rows per CPU-second')}",
            flush=True,
        )
        measure("Parquet to Parquet", args.rows, entrada, salida, args)
        differ = compare(entrada, salida, args.model_dir, args.rows)
        if args.csv_rows:
            csv_in, csv_out = Path(folder) / "casas.csv", Path(folder) / "casas.tasado.csv"
            write_csv(table.slice(0, args.csv_rows), csv_in)
            del table
            measure("CSV to CSV", args.csv_rows, csv_in, csv_out, args)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

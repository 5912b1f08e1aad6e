"""``tasador predecir`` on a large generated Parquet file: rows/s end to end, peak memory,
and a sample checked against ``/predecir/lote?detalle=true`` to the cent.

    uv run python -m benchmarks.files                 # 2,000,000 rows
    uv run python -m benchmarks.files --rows 200000 --keep /tmp/casas.parquet

The homes are drawn on whole columns with numpy (2 million ``Formulario`` objects would
take minutes to make): Madrid coordinates, areas, rooms, one home in ten with baños,
antiguedad or superficie_util unknown (null), and one in a thousand refused (an area of
5 m²), so the run pays for warnings, unknown fields and motivos as real files do. The
command runs as a child process, as a user runs it; its peak resident memory is the
kernel's (``getrusage``), its time the wall clock from exec to exit (start-up included).
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from app.config import EMBEDDED_MODEL_DIR, Settings
from app.features import FIELDS
from app.predecir import OUTPUT_COLUMNS

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


def run(entrada: Path, salida: Path, model_dir: Path) -> tuple[float, float]:
    """Seconds and peak resident MB of ``tasador predecir`` in a child process."""
    command = [sys.executable, "-m", "app.cli", "predecir", str(entrada), "--salida", str(salida)]
    command += ["--model-dir", str(model_dir), "--idioma", "en"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kb / 1024


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


def main() -> int:
    """Generate, appraise, compare, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--model-dir", type=Path, default=EMBEDDED_MODEL_DIR)
    parser.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        entrada = args.keep or Path(folder) / "casas.parquet"
        salida = Path(folder) / "casas.tasado.parquet"
        started = time.perf_counter()
        pq.write_table(homes(args.rows), entrada)
        made = time.perf_counter() - started
        print(f"{args.rows:,} homes generated in {made:.1f} s ({entrada})", flush=True)
        seconds, peak_mb = run(entrada, salida, args.model_dir)
        print(
            f"tasador predecir: {args.rows:,} rows in {seconds:.1f} s = "
            f"{args.rows / seconds:,.0f} rows/s end to end; peak RSS {peak_mb:.0f} MB",
            flush=True,
        )
        differ = compare(entrada, salida, args.model_dir, args.rows)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy on real Madrid listings that are not in the repository: trains on 80 % of a
listings file with ``tasador train``'s own pipeline, then appraises the other 20 % through
the service (``/predecir/lote?detalle=true``) as a person would send them: the fields the
listing does not give (bathrooms, build year, usable area) left out.

The file is the public ``repo/tfg/dbases/development3.csv`` of the GitHub repository
cmmarti/housing-madrid (GPL-3.0; ~19,000 idealista listings of 2018 with price, built
area, rooms, lift, garden, garage, condition flags and coordinates). Bring it onto the
machine yourself and pass its path; it is never committed here.

    uv run python -m benchmarks.real_listings PATH/development3.csv [--antes]

``--antes`` also measures the pipeline as it was before unknown values (every field
required, so the unknown ones invented as a person would have to: 1 bathroom, 45 years,
usable area 85 % of the built one; price target, leaves of 5, no location columns, the
served forest fitted on 80 % of the training file), on the same split.
"""

import argparse
import csv
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from app.config import Settings
from app.features import FIELDS
from app.main import create_app
from app.training.dataset import read_csv
from app.training.pipeline import TrainingConfig, train

SPLIT_SEED = 2026
INVENTED = {"baños": 1, "antiguedad": 45}  # what a person would have had to type before


def listings(path: Path) -> list[dict[str, Any]]:
    """The file's rows as ``tasador train`` CSV rows (unknown fields absent)."""
    rows = []
    with path.open(encoding="latin-1", newline="") as handle:
        for row in csv.DictReader(handle):
            condicion = (
                "A estrenar"
                if row["new_dev"] == "1"
                else "A reformar"
                if row["needs_renovating"] == "1"
                else "En buen estado"
            )
            rows.append(
                {
                    "latitud": float(row["lat"]),
                    "longitud": float(row["lon"]),
                    "superficie_construida": float(row["ms"]),
                    "habitaciones": int(float(row["rooms"])),
                    "jardin": row["garden"] == "1",
                    "ascensor": row["lift"] == "1",
                    "garaje": row["garage"] == "1",
                    "condicion": condicion,
                    "precio": float(row["price"]),
                }
            )
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    names = sorted({k for r in rows for k in r}, key=lambda k: (k == "precio", k))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)


def invented(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **INVENTED,
        "superficie_util": round(0.85 * row["superficie_construida"], 1),
        **row,
    }


def appraise(bundle: Path, homes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with TestClient(create_app(Settings(model_dir=bundle))) as client:
        for start in range(0, len(homes), 5_000):
            batch = [
                {k: v for k, v in h.items() if k != "precio"} for h in homes[start : start + 5_000]
            ]
            answer = client.post("/predecir/lote?detalle=true", json={"formularios": batch})
            answer.raise_for_status()
            results.extend(answer.json()["resultados"])
    return results


def figures(homes: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    y = np.array([h["precio"] for h in homes])
    p = np.array([r["precio"] for r in results])
    lower = np.array([r["intervalo"]["inferior"] for r in results])
    upper = np.array([r["intervalo"]["superior"] for r in results])
    inside = (y >= lower) & (y <= upper)
    ape = np.abs(p - y) / y
    thirds = np.searchsorted(np.quantile(y, [1 / 3, 2 / 3]), y, side="right")
    no_age = np.array(["antiguedad" in r.get("desconocidos", ["antiguedad"]) for r in results])
    return {
        "rows": len(y),
        "r2": 1 - float(np.sum((p - y) ** 2)) / float(np.sum((y - y.mean()) ** 2)),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_10": float((ape <= 0.1).mean()),
        "within_20": float((ape <= 0.2).mean()),
        "coverage": float(inside.mean()),
        "coverage_terciles": [float(inside[thirds == t].mean()) for t in range(3)],
        "median_width": float(np.median((upper - lower) / y)),
        "no_age_rows": int(no_age.sum()),
        "no_age_mape": float(ape[no_age].mean()) if no_age.any() else None,
        "no_age_coverage": float(inside[no_age].mean()) if no_age.any() else None,
    }


def show(name: str, f: dict[str, Any], seconds: float) -> None:
    terciles = " / ".join(f"{c:.1%}" for c in f["coverage_terciles"])
    no_age = (
        f"; without age ({f['no_age_rows']}): MAPE {f['no_age_mape']:.1%}, coverage {f['no_age_coverage']:.1%}"
        if f["no_age_rows"]
        else ""
    )
    print(
        f"| {name} | {f['rows']} | {f['r2']:.3f} | {f['mape']:.1%} | {f['median_ape']:.1%} | "
        f"{f['within_10']:.0%} / {f['within_20']:.0%} | {f['coverage']:.1%} ({terciles}) | "
        f"{f['median_width']:.1%} | {seconds:.0f} s{no_age} |",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="development3.csv of cmmarti/housing-madrid")
    parser.add_argument("--antes", action="store_true", help="also measure the old pipeline")
    args = parser.parse_args()
    rows = listings(args.path)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(rows))
    cut = int(0.8 * len(rows))
    train_rows = [rows[i] for i in order[:cut]]
    test_rows = [rows[i] for i in order[cut:]]
    print(f"{len(rows)} listings: training on {len(train_rows)}, appraising {len(test_rows)}.")
    print(
        "| pipeline | homes | R² | MAPE | median APE | within 10 / 20 % | 80 % interval coverage (terciles) | median width | train time |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        runs: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], TrainingConfig]] = []
        if args.antes:
            before = replace(
                TrainingConfig(),
                search=None,
                folds=0,
                target_scale="precio",
                min_samples_leaf=5,
                refit=False,
                features=tuple(f.name for f in FIELDS),
            )
            runs.append(
                (
                    "before (fields invented)",
                    [invented(r) for r in train_rows],
                    [invented(r) for r in test_rows],
                    before,
                )
            )
        runs.append(("now (unknown left out)", train_rows, test_rows, TrainingConfig()))
        for name, fit_rows, appraised, config in runs:
            data = work / f"{len(runs)}-{name[:3]}.csv"
            write_csv(fit_rows, data)
            started = time.perf_counter()
            manifest = train(
                read_csv(data),
                work / name[:3],
                config,
                say=lambda m: print(f"  {m}", file=sys.stderr),
                progress=False,
            )
            seconds = time.perf_counter() - started
            show(name, figures(appraised, appraise(work / name[:3], appraised)), seconds)
            if manifest.validation is not None:
                v = manifest.validation
                print(
                    f"  grouped CV on the training file: R² {v.r2:.3f}, MAPE {v.mape:.1%}, median APE {v.median_ape:.1%}, "
                    f"coverage {v.coverage:.1%}; chosen {v.chosen.model_dump(exclude_none=True)}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Baseline servers the benchmark compares tasador with, each a minimal FastAPI app."""

import json
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from app.config import EMBEDDED_MODEL_DIR
from app.features import LOCATION, location_columns
from app.schemas import Formulario


def model_dir() -> Path:
    """The bundle the baselines read: ``TASADOR_MODEL_DIR`` or the embedded one."""
    return Path(os.environ.get("TASADOR_MODEL_DIR", EMBEDDED_MODEL_DIR))


@cache
def manifest() -> dict[str, Any]:
    """The bundle's manifest, read once."""
    data: dict[str, Any] = json.loads((model_dir() / "manifest.json").read_text())
    return data


def features() -> list[str]:
    """The model's feature order."""
    names: list[str] = manifest()["features"]
    return names


def feature_row(formulario: Formulario, encodings: dict[str, Any]) -> np.ndarray:
    """The feature row in the manifest's order, as a tutorial would build it (the location
    columns from tasador's one definition of them; unknown fields as NaN)."""
    data = formulario.model_dump(by_alias=True)  # by wire name: baños, not the attribute
    located = location_columns(np.array([formulario.latitud]), np.array([formulario.longitud]))
    data.update({f.name: float(located[0, j]) for j, f in enumerate(LOCATION)})
    values = [data[name] for name in features()]
    row = [
        encodings[n][v] if n in encodings else v for n, v in zip(features(), values, strict=True)
    ]
    return np.array([row], dtype=np.float64)


def price(model: Any, row: np.ndarray) -> float:
    """The model's price for one row (exp of its answer when it learnt log prices)."""
    raw = float(model.predict(row)[0])
    return math.exp(raw) if manifest().get("target_scale") == "log" else raw

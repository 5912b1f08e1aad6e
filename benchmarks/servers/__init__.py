"""Baseline servers the benchmark compares tasador with, each a minimal FastAPI app."""

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from app.config import EMBEDDED_MODEL_DIR
from app.schemas import Formulario


def model_dir() -> Path:
    """The bundle the baselines read: ``TASADOR_MODEL_DIR`` or the embedded one."""
    return Path(os.environ.get("TASADOR_MODEL_DIR", EMBEDDED_MODEL_DIR))


@cache
def features() -> list[str]:
    """The model's feature order, read once."""
    names: list[str] = json.loads((model_dir() / "manifest.json").read_text())["features"]
    return names


def feature_row(formulario: Formulario, encodings: dict[str, Any]) -> np.ndarray:
    """The feature row in the manifest's order, as a tutorial would build it."""
    data = formulario.model_dump(by_alias=True)  # by wire name: baños, not the attribute
    values = [data[name] for name in features()]
    row = [
        encodings[n][v] if n in encodings else v for n, v in zip(features(), values, strict=True)
    ]
    return np.array([row], dtype=np.float64)

"""Helpers shared by the tests: sample homes, an independent scikit-learn oracle, and
small HTTP utilities."""

import json
import urllib.request
from pathlib import Path
from typing import Any

import joblib
import numpy as np


def sklearn_prices(bundle_dir: Path, rows: list[dict[str, Any]]) -> np.ndarray:
    """What the bundle's scikit-learn model predicts for ``rows``, built independently of
    the service: a DataFrame by column name, in the manifest's order."""
    import pandas as pd

    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    encodings = joblib.load(bundle_dir / "encodings.pkl")
    model = joblib.load(bundle_dir / "model.pkl")
    frame = pd.DataFrame(
        [{("baños" if k == "banos" else k): v for k, v in r.items()} for r in rows]
    )
    for name, codes in encodings.items():
        frame[name] = frame[name].map(codes)
    return model.predict(frame[manifest["features"]].astype(float).to_numpy())


def first_error(response: Any) -> dict[str, Any]:
    """The first problem of a 4xx answer, after checking the answer has the error shape."""
    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    first: dict[str, Any] = detail[0]
    return first


def sample_homes(n: int) -> list[dict[str, Any]]:
    """``n`` valid, varied homes as a client would send them (the same for a given n)."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        built = float(rng.integers(40, 250))
        rows.append(
            {
                "latitud": float(rng.uniform(40.35, 40.5)),
                "longitud": float(rng.uniform(-3.8, -3.58)),
                "superficie_construida": built,
                "baños": int(rng.integers(1, 4)),
                "habitaciones": int(rng.integers(0, 6)),
                "jardin": bool(i % 3 == 0),
                "antiguedad": int(rng.integers(0, 120)),
                "superficie_util": round(built * 0.85, 1),
                "ascensor": bool(i % 2),
                "garaje": bool(i % 5 == 0),
                "condicion": ["A reformar", "Reformado", "A estrenar", "En buen estado"][i % 4],
            }
        )
    return rows


def post_json(url: str, body: dict[str, Any]) -> Any:
    """POST a JSON body and decode the JSON answer."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())

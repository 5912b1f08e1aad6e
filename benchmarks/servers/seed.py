"""What the popular tutorial does: load the pickles inside the handler, on every request."""

from datetime import UTC, datetime

import joblib
from fastapi import FastAPI

from app.schemas import Formulario, Prediccion
from benchmarks.servers import feature_row, model_dir, price

app = FastAPI()


@app.get("/ready")
def ready() -> dict[str, str]:
    """Nothing to load up front."""
    return {"status": "ready"}


@app.post("/predecir")
def predecir(formulario: Formulario) -> Prediccion:
    """Read model and encodings from disk, then predict."""
    model = joblib.load(model_dir() / "model.pkl")
    encodings = joblib.load(model_dir() / "encodings.pkl")
    precio = price(model, feature_row(formulario, encodings))
    return Prediccion(precio=precio, fecha=datetime.now(UTC), modelo="seed")

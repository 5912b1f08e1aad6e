"""scikit-learn loaded once at start-up, predicting in FastAPI's thread pool."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import joblib
from fastapi import FastAPI

from app.schemas import Formulario, Prediccion
from benchmarks.servers import feature_row, model_dir, price

state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Load once."""
    state["model"] = joblib.load(model_dir() / "model.pkl")
    state["encodings"] = joblib.load(model_dir() / "encodings.pkl")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/ready")
def ready() -> dict[str, str]:
    """Loaded by the time the server listens."""
    return {"status": "ready"}


@app.post("/predecir")
def predecir(formulario: Formulario) -> Prediccion:
    """Predict with the model loaded at start-up."""
    precio = price(state["model"], feature_row(formulario, state["encodings"]))
    return Prediccion(precio=precio, fecha=datetime.now(UTC), modelo="sklearn")

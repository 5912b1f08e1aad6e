"""The ceiling: the same validation, no model at all; answers a constant."""

from datetime import UTC, datetime

from fastapi import FastAPI

from app.schemas import Formulario, Prediccion

app = FastAPI()
CONSTANT = Prediccion(precio=1.0, fecha=datetime(2026, 1, 1, tzinfo=UTC), modelo="ceiling")


@app.get("/ready")
async def ready() -> dict[str, str]:
    """Always ready."""
    return {"status": "ready"}


@app.post("/predecir")
async def predecir(formulario: Formulario) -> Prediccion:  # noqa: ARG001
    """Validate the body, answer a constant."""
    return CONSTANT

"""A large batch is computed off the event loop: other requests are answered meanwhile."""

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx2
import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from app.api.operations import SERIALISED_ROWS, serialise
from app.bundle.loader import load_bundle
from app.config import Settings
from app.engines import Engine
from app.main import create_app
from app.schemas.prediccion import Lote, PrediccionLoteDetalle
from app.service.valuation import Options, appraise_batch
from tests.helpers import sample_homes


class _WaitingEngine:
    """Delegates to the real engine, but a batch waits until /health has been answered."""

    def __init__(self, inner: Engine, health_answered: threading.Event) -> None:
        self.name = inner.name
        self._inner = inner
        self._health_answered = health_answered
        self.waited_for_health = False

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if len(x) > 1:
            self.waited_for_health = self._health_answered.wait(timeout=10)
        return self._inner.predict(x)


def test_health_is_answered_while_a_large_batch_is_computed(tiny_bundle: Path) -> None:
    health_answered = threading.Event()
    bundle = load_bundle(tiny_bundle)
    engine = _WaitingEngine(bundle.engine, health_answered)
    app = create_app(Settings(model_dir=tiny_bundle), replace(bundle, engine=engine))
    order: list[str] = []

    async def scenario() -> None:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:

            async def batch() -> None:
                response = await client.post(
                    "/predecir/lote", json={"formularios": sample_homes(300)}
                )
                assert response.status_code == 200
                order.append("lote")

            async def health() -> None:
                await anyio.sleep(0.05)  # let the batch start first
                response = await client.get("/health")
                assert response.status_code == 200
                order.append("health")
                health_answered.set()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(batch)
                tasks.start_soon(health)

    anyio.run(scenario)

    assert order == ["health", "lote"]
    assert engine.waited_for_health


@pytest.mark.parametrize("explicar", [False, True])
def test_a_large_detailed_batch_is_serialised_by_blocks_into_the_same_json(
    client: TestClient, formulario: dict[str, Any], explicar: bool
) -> None:
    homes = [{**formulario, "antiguedad": age % 100} for age in range(SERIALISED_ROWS * 2 + 7)]
    bundle = client.app.state.bundle  # type: ignore[attr-defined]
    lote = Lote.model_validate({"formularios": homes})
    result = appraise_batch(bundle, lote, len(homes), True, Options(explain=explicar))
    assert isinstance(result, PrediccionLoteDetalle)

    assert serialise(result) == result.model_dump_json().encode()
    query = f"detalle=true&explicar={str(explicar).lower()}"
    answer = client.post(f"/predecir/lote?{query}", json={"formularios": homes})
    assert [r["precio"] for r in answer.json()["resultados"]] == [
        r.precio for r in result.resultados
    ]

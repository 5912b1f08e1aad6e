"""A large batch is computed off the event loop: other requests are answered meanwhile."""

import threading
from dataclasses import replace
from pathlib import Path

import anyio
import httpx2
import numpy as np
import numpy.typing as npt

from app.bundle.loader import load_bundle
from app.config import Settings
from app.engines import Engine
from app.main import create_app
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

"""Replicas behind HAProxy: a replica killed, another restarted, no client request lost."""

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest

from app.bundle.loader import load_bundle
from app.schemas.formulario import Formulario
from app.schemas.prediccion import Prediccion
from scaleout.cluster import Cluster
from tests.helpers import sample_homes

pytestmark = pytest.mark.scaleout

CONCURRENCY = 8
MAX_REQUESTS = 50_000  # bounds, whatever happens
MAX_SECONDS = 90
AFTER_CHAOS = 300  # requests still sent once the restarted replica is back


class Chaos(threading.Thread):
    """Kills replica 0 (SIGKILL), then stops (SIGTERM) and restarts replica 1, each step
    once enough responses have come back; the load runs on throughout."""

    def __init__(self, cluster: Cluster, answered: list[int]) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.answered = answered
        self.steps: list[tuple[str, int]] = []
        self.done = threading.Event()

    def _after(self, count: int) -> None:
        while self.answered[0] < count:
            time.sleep(0.005)

    def run(self) -> None:
        try:
            self._after(200)
            self.cluster.kill(0)
            self.steps.append(("killed replica 0", self.answered[0]))
            self._after(self.answered[0] + 300)
            self.cluster.stop(1)
            self.steps.append(("stopped replica 1", self.answered[0]))
            self.cluster.start(1)
            self.steps.append(("restarted replica 1", self.answered[0]))
        finally:
            self.done.set()


async def _load(url: str, homes: list[dict[str, Any]], chaos: Chaos) -> list[Any]:
    outcomes: list[Any] = []
    deadline = time.monotonic() + MAX_SECONDS
    limits = httpx2.Limits(max_connections=CONCURRENCY)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker(offset: int) -> None:
            i = offset
            while len(outcomes) < MAX_REQUESTS and time.monotonic() < deadline:
                if chaos.done.is_set() and chaos.answered[0] > chaos.steps[-1][1] + AFTER_CHAOS:
                    return
                home = i % len(homes)
                try:
                    response = await client.post("/predecir", json=homes[home])
                    outcomes.append((home, response.status_code, response.text))
                except httpx2.HTTPError as exc:
                    outcomes.append((home, None, repr(exc)))
                chaos.answered[0] += 1
                i += CONCURRENCY

        await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
    return outcomes


def test_no_request_is_lost_while_replicas_die_and_restart(tiny_bundle: Path) -> None:
    homes = sample_homes(16)
    bundle = load_bundle(tiny_bundle)
    expected = bundle.engine.predict(bundle.features.matrix([Formulario(**h) for h in homes]))

    with Cluster(3, tiny_bundle) as cluster:
        chaos = Chaos(cluster, answered := [0])
        chaos.start()
        outcomes = asyncio.run(_load(cluster.url, homes, chaos))
        chaos.join(timeout=60)

    assert [name for name, _ in chaos.steps] == [
        "killed replica 0",
        "stopped replica 1",
        "restarted replica 1",
    ]
    assert answered[0] > chaos.steps[-1][1]  # load went on after the restart
    failures = [o for o in outcomes if o[1] != 200]
    assert failures == [], f"{len(failures)} of {len(outcomes)} failed, e.g. {failures[:3]}"
    for home, _, text in outcomes:
        answer = Prediccion.model_validate_json(text)
        assert answer.modelo == bundle.version
        assert np.isclose(answer.precio, round(float(expected[home]), 2))


def test_cluster_needs_at_least_one_replica() -> None:
    with pytest.raises(ValueError, match="at least one replica"):
        Cluster(0)

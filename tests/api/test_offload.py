"""Heavy work is done off the event loop, one piece at a time, and a detailed batch is
written in chunks: other requests are answered meanwhile."""

import gc
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import anyio
import httpx2
import numpy as np
import numpy.typing as npt

from app.api.offload import HeavyWork
from app.api.routes import CHUNK_ROWS, detail_json
from app.bundle.loader import load_bundle
from app.config import Settings
from app.engines import Engine
from app.main import create_app
from app.schemas.formulario import FORMULARIO_EJEMPLO
from app.schemas.prediccion import Lote, PrediccionLoteDetalle
from app.service.appraisal import DetailedBatch, Options, appraise_batch
from benchmarks.reliability import HealthWatch
from tests.helpers import (
    http_request,
    sample_homes,
)
from tools.process import TASADOR_SERVE, ServerProcess

HOME = FORMULARIO_EJEMPLO


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


def test_a_detailed_batch_is_made_and_written_in_chunks_with_the_same_bytes(
    tiny_bundle: Path,
) -> None:
    bundle = load_bundle(tiny_bundle)
    lote = Lote.model_validate({"formularios": sample_homes(2 * CHUNK_ROWS + 7)})
    options = Options(explain=True)
    batch = appraise_batch(bundle, lote, 10_000, detail=True, options=options)
    assert isinstance(batch, DetailedBatch)
    whole = PrediccionLoteDetalle(
        resultados=[batch.make(i) for i in range(batch.rows)],
        fecha=batch.fecha,
        modelo=batch.modelo,
    )
    sizes: list[int] = []

    assert (
        detail_json(batch, lambda chunk: sizes.append(len(chunk)))
        == whole.model_dump_json().encode()
    )
    assert sizes == [CHUNK_ROWS, CHUNK_ROWS, 7]
    empty = replace(batch, rows=0)
    assert detail_json(empty) == empty.head().model_dump_json().encode()


def test_heavy_work_runs_one_piece_at_a_time_with_the_collector_paused() -> None:
    heavy = HeavyWork()
    running = 0
    seen: list[tuple[int, bool]] = []
    lock = threading.Lock()

    def piece() -> None:
        nonlocal running
        with lock:
            running += 1
            seen.append((running, gc.isenabled()))
        time.sleep(0.02)
        with lock:
            running -= 1

    async def scenario() -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(4):
                tasks.start_soon(heavy.run, piece)

    assert gc.isenabled()
    anyio.run(scenario)
    assert seen == [(1, False)] * 4
    assert gc.isenabled()  # on again afterwards


def test_a_collector_turned_off_elsewhere_stays_off() -> None:
    gc.disable()
    try:
        anyio.run(HeavyWork().run, gc.isenabled)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_health_answers_while_explained_batches_are_computed(tiny_bundle: Path) -> None:
    # The review's finding 4: eight clients posting 10,000 homes with detalle and explicar
    # at once (the default budget admits about six) held /health 1.0-1.5 s and kept half a
    # GB. Precise figures: ``python -m benchmarks.reliability --burst``; here only what a
    # load balancer would see: every poll answered, none near a 1 s timeout.
    body = json.dumps({"formularios": sample_homes(1) * 10_000}).encode()
    path = "/predecir/lote?detalle=true&explicar=true"
    headers = {"content-type": "application/json"}
    with ServerProcess(TASADOR_SERVE, env={"TASADOR_MODEL_DIR": str(tiny_bundle)}) as server:
        one = json.dumps({"formularios": sample_homes(1)}).encode()
        status, _, _ = http_request(server, "POST", path, one, headers)  # builds the explainer
        assert status == 200
        time.sleep(0.5)
        before = _rss_mb(server.pid)
        watch = HealthWatch(server.port)  # the benchmark's poller, in a process of its own
        watch.start()
        statuses: list[int] = []

        def post() -> None:
            statuses.append(http_request(server, "POST", path, body, headers)[0])

        clients = [threading.Thread(target=post) for _ in range(8)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=120)
        watch.finish()
        time.sleep(0.5)
        after = _rss_mb(server.pid)
        _still_serving_open(server)

    assert len(statuses) == 8
    assert 200 in statuses
    assert set(statuses) <= {200, 503}, statuses
    assert watch.polls > 10
    assert watch.failures == 0
    assert watch.worst_ms < 500, f"/health took {watch.worst_ms:.0f} ms"
    # Before anything of a batch was in memory: 100 MB; after, 115-118 MB, against 142-147
    # MB while every cell's lookups were remembered, all of a batch's appraisals made at
    # once and glibc's threshold for large blocks left to rise. The embedded model's
    # figure (1.17-1.18 times, within the 20 % the review asked) is the benchmark's.
    assert after <= 1.25 * before, f"{before:.0f} MB before, {after:.0f} MB after"


def _still_serving_open(server: ServerProcess) -> None:
    status, _, _ = http_request(
        server, "POST", "/predecir", json.dumps(HOME).encode(), {"content-type": "application/json"}
    )
    assert status == 200

"""The Prometheus instruments and /metrics: requests counted by route template and status, a
batch's prices observed at once, the model served and its reloads, and multiprocess mode's
folder."""

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Message

from app.bundle.loader import BundleError
from app.monitoring import (
    MULTIPROC_VARIABLE,
    PRICE_EUROS_BUCKETS,
    Instruments,
    forget_dead_workers,
    shared_metrics,
)
from app.reload import reload_bundle
from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import TINY, ClientFactory, post_json, train_quietly
from tools.process import TASADOR_SERVE, ServerProcess

EVERY_EDGE = [1.0, 99_999.99, 100_000.0, 100_000.01, 4e6, 5e6, 7e6]


def _prices(text: str) -> dict[str, float]:
    """The price histogram's samples in an exposition, by name and labels."""
    lines = [line for line in text.splitlines() if line.startswith("tasador_predicted_price")]
    pairs = [line.rsplit(" ", 1) for line in lines if "created" not in line]
    return {name: float(value) for name, value in pairs}


def _observed_one_by_one(values: list[float]) -> dict[str, float]:
    """What prometheus-client's own Histogram shows after ``observe`` of each value."""
    registry = CollectorRegistry()
    histogram = Histogram(
        "tasador_predicted_price_euros", "prices", buckets=PRICE_EUROS_BUCKETS, registry=registry
    )
    for value in values:
        histogram.observe(value)
    return _prices(generate_latest(registry).decode())


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="none"),
        pytest.param([150_000.0], id="on-a-bound"),
        pytest.param(EVERY_EDGE, id="every-edge"),
        pytest.param(np.random.default_rng(1).lognormal(12.8, 0.6, 5000).tolist(), id="many"),
    ],
)
def test_prices_read_as_prometheus_clients_histogram_observed_one_by_one(
    values: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_VARIABLE, raising=False)
    instruments = Instruments()
    if values:
        instruments.priced(values[0])  # one alone, as /predecir answers it
    instruments.priced(iter(values[1:]))  # the rest as a batch
    expected = _observed_one_by_one(values)

    shown = _prices(instruments.exposition().decode())

    # The sum is added up in another order: equal to the rounding.
    assert shown == pytest.approx(expected, rel=1e-12)
    assert "_in_bucket" not in instruments.exposition().decode()


_WORKER = """
import sys
import numpy as np
from app.monitoring import Instruments
instruments = Instruments()
instruments.priced(float(sys.argv[1]))
instruments.priced(iter(np.array(sys.argv[2:], dtype=float)))
"""


def test_prices_add_up_across_worker_processes(tmp_path: Path) -> None:
    env = {**os.environ, MULTIPROC_VARIABLE: str(tmp_path)}
    first, second = EVERY_EDGE[:3], EVERY_EDGE[3:]
    for prices in (first, second):  # two processes: two workers' files
        command = [sys.executable, "-c", _WORKER, *map(str, prices)]
        subprocess.run(command, env=env, check=True, timeout=60)

    shown = _prices(Instruments(directory=tmp_path).exposition().decode())

    assert shown == pytest.approx(_observed_one_by_one(EVERY_EDGE), rel=1e-12)


def test_a_given_folder_is_emptied_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "counter_1.db").write_bytes(b"from an earlier server")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_VARIABLE, str(tmp_path))

    with shared_metrics(workers=False) as directory:
        assert directory == tmp_path
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

    assert tmp_path.is_dir()


def test_several_workers_get_a_new_folder_removed_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_VARIABLE, raising=False)

    with shared_metrics(workers=True) as directory:
        assert directory is not None
        assert os.environ[MULTIPROC_VARIABLE] == str(directory)
        assert list(directory.iterdir()) == []

    assert not directory.exists()
    assert MULTIPROC_VARIABLE not in os.environ


def test_one_worker_stays_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_VARIABLE, raising=False)

    with shared_metrics(workers=False) as directory:
        assert directory is None
        assert MULTIPROC_VARIABLE not in os.environ


def test_the_live_gauges_of_dead_workers_are_dropped(tmp_path: Path) -> None:
    alive = tmp_path / f"gauge_livemax_{os.getpid()}.db"
    dead = tmp_path / "gauge_livemax_999999999.db"  # above any pid Linux hands out
    counter = tmp_path / "counter_999999999.db"
    for path in (alive, dead, counter):
        path.write_bytes(b"")

    forget_dead_workers(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, counter.name])


def test_metrics_count_requests_by_route(client: TestClient, formulario: dict[str, Any]) -> None:
    client.post("/predecir", json=formulario)
    client.post("/predecir", json={})
    client.post("/predecir/lote", json={"formularios": [formulario]})
    client.request("BREW", "/predecir")
    client.get("/no/such/page")
    client.get("/modelo")

    text = client.get("/metrics").text

    assert 'tasador_requests_total{method="POST",route="/predecir",status="200"} 1.0' in text
    assert 'tasador_requests_total{method="POST",route="/predecir",status="422"} 1.0' in text
    assert 'tasador_requests_total{method="POST",route="/predecir/lote",status="200"} 1.0' in text
    assert 'tasador_requests_total{method="other",route="/predecir",status="405"} 1.0' in text
    assert 'tasador_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'tasador_requests_total{method="GET",route="/modelo",status="200"} 1.0' in text
    assert "tasador_request_seconds_bucket" in text


def test_a_client_hanging_up_mid_body_is_counted_apart_and_logged_once(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[Message] = []
    messages: Iterator[Message] = iter(
        [
            {"type": "http.request", "body": b'{"latitud": 40.4', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predecir", "raw_path": b"/predecir", "root_path": "",
        "query_string": b"", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    with caplog.at_level("INFO", "tasador"):
        assert client.portal is not None
        client.portal.call(cast(FastAPI, client.app), scope, receive, send)
        metrics = client.get("/metrics").text

    assert not [m for m in sent if m["type"] == "http.response.body" and m.get("body")]
    assert 'route="/predecir",status="499"} 1.0' in metrics
    assert 'status="500"' not in metrics
    (line,) = [r.getMessage() for r in caplog.records if "hung up" in r.getMessage()]
    assert "127.0.0.1:5555" in line
    assert "POST /predecir" in line


def _sample(text: str, name: str) -> float:
    """The value of the one sample named ``name`` (with its labels) in ``text``."""
    (value,) = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


def test_metrics_tell_batch_sizes_and_the_prices_answered(
    client: TestClient, formulario: dict[str, Any]
) -> None:
    single = client.post("/predecir", json=formulario).json()["precio"]
    batch = client.post("/predecir/lote", json={"formularios": [formulario] * 3}).json()
    detailed = client.post(
        "/predecir/lote?detalle=true", json={"formularios": [formulario] * 2}
    ).json()
    muestras = [{**formulario, "precio": 400_000}, {**formulario, "precio": 500_000}]
    client.post("/evaluar", json={"muestras": muestras})

    text = client.get("/metrics").text
    prices = [single, *batch["precios"], *(r["precio"] for r in detailed["resultados"])]

    assert _sample(text, 'tasador_batch_rows_count{route="/predecir/lote"}') == 2
    assert _sample(text, 'tasador_batch_rows_sum{route="/predecir/lote"}') == 5
    assert _sample(text, 'tasador_batch_rows_bucket{le="2.0",route="/predecir/lote"}') == 1
    assert _sample(text, 'tasador_batch_rows_count{route="/evaluar"}') == 1
    assert _sample(text, "tasador_predicted_price_euros_count") == 6
    assert _sample(text, "tasador_predicted_price_euros_sum") == pytest.approx(sum(prices))
    below = sum(p <= 500_000 for p in prices)
    assert _sample(text, 'tasador_predicted_price_euros_bucket{le="500000.0"}') == below


def test_metrics_name_the_model_served_and_count_reloads(
    bundle_copy: Path, client_factory: ClientFactory
) -> None:
    with client_factory(model_dir=bundle_copy) as client:
        first = client.get("/modelo").json()
        assert client.portal is not None
        train_quietly(bundle_copy, replace(TINY, seed=99))
        client.portal.call(reload_bundle, cast(FastAPI, client.app))
        second = client.get("/modelo").json()
        (bundle_copy / "model.pkl").write_bytes(b"tampered")
        with pytest.raises(BundleError):
            client.portal.call(reload_bundle, cast(FastAPI, client.app))
        text = client.get("/metrics").text

    def info(manifest: dict[str, Any]) -> str:
        engine, version = manifest["engine"], manifest["version"]
        return f'tasador_model_info{{engine="{engine}",version="{version}"}}'

    assert _sample(text, info(second)) == 1
    assert _sample(text, info(first)) == 0
    assert _sample(text, 'tasador_model_reloads_total{outcome="success"}') == 1
    assert _sample(text, 'tasador_model_reloads_total{outcome="failure"}') == 1


def _counted(metrics: str, route: str = "/predecir") -> float:
    """What a scrape says of POST /predecir answered with 200."""
    prefix = f'tasador_requests_total{{method="POST",route="{route}",status="200"}} '
    (line,) = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


def _by_worker(folder: Path, method: str, route: str) -> list[float]:
    """How many ``method route`` requests each worker answered (200), from its own file."""
    labels = {"method": method, "route": route, "status": "200"}
    counts = []
    for worker_file in sorted(folder.glob("counter_*.db")):
        count = 0.0
        files = [str(worker_file)]
        for metric in MultiProcessCollector.merge(files):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "tasador_requests_total" and sample.labels == labels:
                    count = float(sample.value)
        counts.append(count)
    return counts


def _both(folder: Path, method: str, route: str) -> bool:
    counts = _by_worker(folder, method, route)
    return len(counts) == 2 and 0 not in counts


def test_metrics_add_up_across_workers(tiny_bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left by an earlier server")
    env = {"TASADOR_MODEL_DIR": str(tiny_bundle), "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    command = [*TASADOR_SERVE, "--port", "{port}", "--workers", "2"]
    with ServerProcess(command, env=env) as server:
        assert not (folder / "counter_1.db").exists()
        # A connection each, which either worker accepts (the second may still be
        # starting): on until both have answered some, as each one's own file says, and
        # at least 20 (at most 400).
        sent = 0
        while sent < 20 or (sent < 400 and not _both(folder, "POST", "/predecir")):
            post_json(f"{server.url}/predecir", FORMULARIO_EJEMPLO)
            sent += 1
        scrapes: list[float] = []
        while len(scrapes) < 8 or (len(scrapes) < 400 and not _both(folder, "GET", "/metrics")):
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
                scrapes.append(_counted(response.read().decode()))
        answered = _by_worker(folder, "POST", "/predecir")
        scraped = _by_worker(folder, "GET", "/metrics")
        server.stop()
        output = server.output()

    assert len(answered) == 2
    assert 0 not in answered, answered
    assert 0 not in scraped, scraped
    assert scrapes == [sent] * len(scrapes), output
    assert list(folder.glob("gauge_live*.db")) == []  # each worker said it was gone

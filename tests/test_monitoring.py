"""The Prometheus instruments: a batch's prices observed at once, and multiprocess mode's
folder (the two-worker server itself is in tests/test_serve.py)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest

from app.monitoring import (
    MULTIPROC_VARIABLE,
    PRICE_EUROS_BUCKETS,
    Instruments,
    forget_dead_workers,
    shared_metrics,
)

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

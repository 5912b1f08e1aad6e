"""The Prometheus instruments: a batch's prices observed at once, and multiprocess mode's
folder (the two-worker server itself is in tests/test_serve.py)."""

import os
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest

from app.monitoring import (
    MULTIPROC_VARIABLE,
    PRICE_EUROS_BUCKETS,
    forget_dead_workers,
    observe_many,
    shared_metrics,
)


def _histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("p", "prices", buckets=PRICE_EUROS_BUCKETS, registry=registry)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="none"),
        pytest.param([150_000.0], id="on-a-bound"),
        pytest.param([1.0, 99_999.99, 100_000.0, 100_000.01, 4e6, 5e6, 7e6], id="every-edge"),
        pytest.param(np.random.default_rng(1).lognormal(12.8, 0.6, 5000).tolist(), id="many"),
    ],
)
def test_a_batch_observed_at_once_reads_as_observed_one_by_one(values: list[float]) -> None:
    # observe_many uses prometheus-client's internals: this fails if they change.
    one_by_one, by_one = _histogram()
    at_once, by_all = _histogram()
    for value in values:
        by_one.observe(value)

    observe_many(by_all, np.array(values, dtype=np.float64))

    def samples(registry: CollectorRegistry) -> dict[str, float]:
        lines = generate_latest(registry).decode().splitlines()
        pairs = [line.rsplit(" ", 1) for line in lines if line.startswith("p_")]
        return {name: float(value) for name, value in pairs if "created" not in name}

    # The sum is added up in another order: equal to the rounding.
    assert samples(at_once) == pytest.approx(samples(one_by_one), rel=1e-12)


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

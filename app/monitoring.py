"""Prometheus instruments of the service: requests by route and status, latency, batch
sizes, predicted prices, the model served and its reloads.

One process keeps its figures in memory, one registry per app (so that several apps in
one process, as in the tests, do not collide). Several workers (``tasador serve
--workers N``) use prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``
is set before any worker imports prometheus-client, each worker writes its figures to
memory-mapped files there, and ``/metrics`` adds up the files of every worker, so that
whichever worker answers a scrape gives the same totals.
"""

import bisect
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import Scope

# Set in the environment before prometheus-client is imported: multiprocess mode.
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# nginx's "client closed request": what a request the client abandoned is counted as.
CLIENT_CLOSED = 499
# Any other method is counted as "other": a label value must not come from the client.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"
REQUEST_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
BATCH_ROWS_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000)
PRICE_EUROS_BUCKETS = (
    50_000, 100_000, 150_000, 200_000, 300_000, 400_000, 500_000, 750_000,
    1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000,
)  # fmt: skip
PRICES_HELP = "Prices answered by /predecir and /predecir/lote, in EUR."
# A worker's files of gauges that only count while the worker lives (``livemax``).
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def multiprocess_dir() -> Path | None:
    """The folder of multiprocess mode, when this process is in it."""
    value = os.environ.get(MULTIPROC_VARIABLE)
    return Path(value) if value else None


@contextmanager
def shared_metrics(workers: bool) -> Iterator[Path | None]:
    """Multiprocess mode for the server about to start, when it has several ``workers``
    or ``PROMETHEUS_MULTIPROC_DIR`` is set already: that folder, or a new one, emptied of
    any earlier server's files. A folder made here (in memory, under /dev/shm, where
    there is one: it is written on every request) is removed when the server stops."""
    given = multiprocess_dir()
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        for stale in given.glob("*.db"):
            stale.unlink()
        yield given
        return
    if not workers:
        yield None
        return
    memory = Path("/dev/shm")
    parent = memory if memory.is_dir() and os.access(memory, os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="tasador-metrics-", dir=parent))
    os.environ[MULTIPROC_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


class Instruments:
    """The app's Prometheus metrics, and what ``/metrics`` exposes of them."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or multiprocess_dir()
        # One process: the metrics live in ``store``. Several workers: in files, which
        # MultiProcessCollector reads back, every worker's added up.
        store = CollectorRegistry()
        metrics: CollectorRegistry | None = store
        source: Collector = store
        if self.directory is not None:
            source = MultiProcessCollector(None, str(self.directory))  # type: ignore[no-untyped-call]
            metrics = None
        self.prices = PriceHistogram(metrics, source)
        self.registry = CollectorRegistry()  # what /metrics shows
        self.registry.register(self.prices)
        self.requests = Counter(
            "tasador_requests",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=metrics,
        )
        self.latency = Histogram(
            "tasador_request_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=metrics,
        )
        self.warnings = Counter(
            "tasador_advertencias",
            "Warnings given with an appraisal (a home unlike the training data), by field.",
            ["campo"],
            registry=metrics,
        )
        self.batch_rows = Histogram(
            "tasador_batch_rows",
            "Rows per batch request (/predecir/lote, /evaluar), by route.",
            ["route"],
            buckets=BATCH_ROWS_BUCKETS,
            registry=metrics,
        )
        self.model = Gauge(
            "tasador_model_info",
            "The model bundle served (1) and the engine running it; 0 for one served before "
            "a reload.",
            ["version", "engine"],
            multiprocess_mode="livemax",
            registry=metrics,
        )
        self.reloads = Counter(
            "tasador_model_reloads",
            "Model reloads (SIGHUP), by outcome: success, or failure (the model kept).",
            ["outcome"],
            registry=metrics,
        )
        for outcome in ("success", "failure"):
            self.reloads.labels(outcome)
        self._serving: tuple[str, str] | None = None
        # Labelled children, looked up once: labels() is paid on every request otherwise.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def count(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request answered."""
        children = self._children.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(route),
            )
            self._children[(method, route, status)] = children
        requests, latency = children
        requests.inc()
        latency.observe(seconds)

    def warned(self, campo: str) -> None:
        """One warning given about ``campo`` (a field, a ratio, or ubicacion)."""
        self.warnings.labels(campo).inc()

    def batch(self, route: str, rows: int) -> None:
        """A batch of ``rows`` rows served by ``route``."""
        self.batch_rows.labels(route).observe(rows)

    def priced(self, prices: float | Iterable[float]) -> None:
        """Prices answered: one, or a batch's."""
        if isinstance(prices, float | int):
            self.prices.observe(prices)
        else:
            self.prices.observe_many(np.fromiter(prices, dtype=np.float64))

    def serving(self, version: str, engine: str) -> None:
        """The model now served (at start, or after a reload)."""
        if self._serving is not None:
            self.model.labels(*self._serving).set(0)
        self._serving = (version, engine)
        self.model.labels(version, engine).set(1)

    def reloaded(self, success: bool) -> None:
        """A reload finished: the new model serves, or it was refused."""
        self.reloads.labels("success" if success else "failure").inc()

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers: this process's figures, or every worker's."""
        if self.directory is not None:
            forget_dead_workers(self.directory)
        return generate_latest(self.registry)

    def close(self) -> None:
        """The app stops: in multiprocess mode, its live gauges stop counting."""
        if self.directory is not None:
            mark_process_dead(os.getpid(), str(self.directory))  # type: ignore[no-untyped-call]


class PriceHistogram(Collector):
    """The prices answered, a Prometheus histogram that takes a batch in one update per
    bucket: prometheus-client's ``Histogram`` takes one value per call, which a 10,000-row
    batch would pay 10,000 times (``uv run python -m benchmarks.libraries``). The counts
    per bucket and the sum are public ``Counter``s, which multiprocess mode adds up across
    workers; as a collector, it shows ``source``'s metrics with those two as the histogram."""

    name = "tasador_predicted_price_euros"
    in_bucket, summed = f"{name}_in_bucket", f"{name}_summed"

    def __init__(self, registry: CollectorRegistry | None, source: Collector) -> None:
        self.source = source
        self.bounds = [*map(float, PRICE_EUROS_BUCKETS), float("inf")]
        self.labels = [floatToGoString(bound) for bound in self.bounds]  # type: ignore[no-untyped-call]
        in_bucket = Counter(self.in_bucket, "Prices per bucket.", ["le"], registry=registry)
        self._buckets = [in_bucket.labels(label) for label in self.labels]
        self._sum = Counter(self.summed, "Sum of the prices.", registry=registry)

    def observe(self, price: float) -> None:
        """One price answered."""
        self._buckets[bisect.bisect_left(self.bounds, price)].inc()
        self._sum.inc(price)

    def observe_many(self, prices: npt.NDArray[np.float64]) -> None:
        """A batch's prices, as if each were observed."""
        at = np.searchsorted(self.bounds, prices, side="left")
        counts = np.bincount(at, minlength=len(self.bounds))[: len(self.bounds)]
        for bucket, count in zip(self._buckets, counts.tolist(), strict=True):
            if count:
                bucket.inc(count)
        if len(prices):
            self._sum.inc(float(prices.sum()))

    def collect(self) -> Iterator[Metric]:
        """``source``'s metrics, with the two counters shown as the histogram."""
        totals: dict[tuple[str, str | None], float] = {}
        for family in self.source.collect():
            if family.name not in (self.in_bucket, self.summed):
                yield family
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):  # not _created
                    key = (family.name, sample.labels.get("le"))
                    totals[key] = totals.get(key, 0.0) + sample.value
        cumulative, buckets = 0.0, []
        for label in self.labels:
            cumulative += totals.get((self.in_bucket, label), 0.0)
            buckets.append((label, cumulative))
        summed = totals.get((self.summed, None), 0.0)
        yield HistogramMetricFamily(self.name, PRICES_HELP, buckets, summed)


def forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges of workers that are gone (killed, so they could not say so),
    as prometheus-client's ``mark_process_dead`` does for a worker that exits."""
    for path in directory.glob("gauge_live*_*.db"):
        match = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if match and not _alive(int(match.group(1))):
            mark_process_dead(int(match.group(1)), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def route_label(scope: Scope, paths: frozenset[str]) -> str:
    """The request's route template (FastAPI's match, or one of the API's own paths, all
    static), never its raw path, so that unknown URLs cannot blow up the series."""
    name = getattr(scope.get("route"), "path", None)
    if name:
        return str(name)
    path: str = scope["path"]
    return path if path in paths else UNMATCHED


def method_label(scope: Scope) -> str:
    """The request's method, or "other": a label value must not come from the client."""
    method: str = scope["method"]
    return method if method in METHODS else "other"

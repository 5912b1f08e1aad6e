"""What a library costs beside tasador's own code: ``uv run --with asgi-correlation-id
--with starlette-exporter --with prometheus-fastapi-instrumentator python -m
benchmarks.libraries`` (the three middlewares are optional: one not installed is skipped).

1. A JSON log line: ``app.logs.JsonFormatter`` (python-json-logger) against ``json.dumps``
   of the same four fields, the least any JSON formatter does, and against the text format
   of uvicorn's console log.
2. A request through a middleware, in process (no server, no socket): a FastAPI app that
   answers ``GET /health`` with a constant, bare and behind each middleware: tasador's
   request log (id, counters, no log line), asgi-correlation-id, starlette-exporter and
   prometheus-fastapi-instrumentator. Each figure is CPU µs per request, best of the
   rounds; the middlewares run in alternating rounds, as the machine is shared.

3. The prices of a 10,000-row batch into the price histogram: prometheus-client's
   ``Histogram.observe`` of each price against ``app.monitoring.PriceHistogram``'s
   ``observe_many`` (one update per bucket), in memory and in multiprocess mode (files).

Ratios are against the baseline of the same run; each table is printed with the spread
of its rounds (min-max of the per-round ratios).
"""

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message

from app.logs import JsonFormatter
from app.monitoring import MULTIPROC_VARIABLE, PRICE_EUROS_BUCKETS, Instruments, PriceHistogram
from app.request_log import RequestLog

ROUNDS = 5
LINES = 20_000
CALLS = 3_000
BATCH = 10_000


def _record() -> logging.LogRecord:
    return logging.LogRecord(
        "tasador", logging.INFO, __file__, 1, "serving model %s", ("2026-01-01-abc",), None
    )


def _floor(record: logging.LogRecord) -> str:
    return json.dumps(
        {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        },
        ensure_ascii=False,
    )


def _per_line_us(format_line: Callable[[logging.LogRecord], str]) -> float:
    record = _record()
    started = time.process_time()
    for _ in range(LINES):
        format_line(record)
    return (time.process_time() - started) / LINES * 1e6


def _log_lines() -> dict[str, list[float]]:
    text = logging.Formatter("%(levelname)s:     %(message)s")
    formatters: dict[str, Callable[[logging.LogRecord], str]] = {
        "json.dumps (floor)": _floor,
        "text (uvicorn's)": text.format,
        "python-json-logger": JsonFormatter().format,
    }
    rounds: dict[str, list[float]] = {name: [] for name in formatters}
    for _ in range(ROUNDS):
        for name, format_line in formatters.items():
            rounds[name].append(_per_line_us(format_line))
    return rounds


def _bare() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        """A constant."""
        return {"status": "ok"}

    return app


def _tasador_request_log() -> ASGIApp:
    return RequestLog(_bare(), Instruments(), paths=["/health"])


def _correlation_id() -> ASGIApp:
    from asgi_correlation_id import CorrelationIdMiddleware

    app = _bare()
    # tasador's rule for a client's id (its default accepts only UUID4s)
    accepted = re.compile(r"[A-Za-z0-9._-]{1,64}")
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        validator=lambda value: accepted.fullmatch(value) is not None,
    )
    return app


def _starlette_exporter() -> ASGIApp:
    from starlette_exporter import PrometheusMiddleware

    app = _bare()
    app.add_middleware(PrometheusMiddleware, prefix="tasador", group_paths=True)
    return app


def _instrumentator() -> ASGIApp:
    from prometheus_fastapi_instrumentator import Instrumentator

    app = _bare()
    Instrumentator(registry=CollectorRegistry()).instrument(app)
    return app


MIDDLEWARES: dict[str, Callable[[], ASGIApp]] = {
    "bare FastAPI": _bare,
    "tasador RequestLog": _tasador_request_log,
    "asgi-correlation-id": _correlation_id,
    "starlette-exporter": _starlette_exporter,
    "prometheus-fastapi-instrumentator": _instrumentator,
}
_SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/health", "raw_path": b"/health", "root_path": "",
    "query_string": b"", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    "headers": [(b"host", b"x"), (b"x-request-id", b"r-1")],
}  # fmt: skip


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    if message["type"] == "http.response.start" and message["status"] != 200:
        raise RuntimeError(f"answered {message['status']}")


async def _per_request_us(app: ASGIApp) -> float:
    started = time.process_time()
    for _ in range(CALLS):
        await app(dict(_SCOPE), _receive, _send)
    return (time.process_time() - started) / CALLS * 1e6


async def _middlewares() -> dict[str, list[float]]:
    apps: dict[str, ASGIApp] = {}
    for name, build in MIDDLEWARES.items():
        try:
            apps[name] = build()
        except ImportError:
            print(f"  ({name} is not installed: skipped)")
    rounds: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(ROUNDS):
        for name, app in apps.items():
            rounds[name].append(await _per_request_us(app))
    return rounds


def _table(title: str, rounds: dict[str, list[float]], unit: str) -> None:
    baseline = next(iter(rounds))
    print(f"{title} (best of {ROUNDS} rounds; ratio to {baseline}, min-max over rounds):")
    for name, figures in rounds.items():
        ratios = [mine / base for mine, base in zip(figures, rounds[baseline], strict=True)]
        print(
            f"  {name:36} {min(figures):7.2f} {unit}  "
            f"×{min(figures) / min(rounds[baseline]):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        )


def _batch_prices() -> dict[str, list[float]]:
    """ms per batch of BATCH prices, each way, in this process's mode."""
    prices = np.random.default_rng(1).lognormal(12.8, 0.6, BATCH)
    histogram = Histogram("p", "p", buckets=PRICE_EUROS_BUCKETS, registry=None)
    mine = PriceHistogram(None, CollectorRegistry())

    def each() -> None:
        for price in prices.tolist():
            histogram.observe(price)

    ways: dict[str, Callable[[], None]] = {
        "Histogram.observe, each price": each,
        "PriceHistogram.observe_many": lambda: mine.observe_many(prices),
    }
    rounds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, way in ways.items():
            started = time.process_time()
            way()
            rounds[name].append((time.process_time() - started) * 1e3)
    return rounds


def _prices_in_files() -> dict[str, list[float]]:
    """_batch_prices in a process of its own in multiprocess mode (chosen at import)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, MULTIPROC_VARIABLE: folder}
        code = "import json; from benchmarks.libraries import _batch_prices as b; print(json.dumps(b()))"
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
    rounds: dict[str, list[float]] = json.loads(out)
    return rounds


def main() -> None:
    """Measure and print."""
    _table("One JSON log line", _log_lines(), "µs")
    logging.disable(logging.INFO)
    _table("One GET /health through a middleware", asyncio.run(_middlewares()), "µs")
    _table(f"{BATCH:,} prices into the histogram, in memory", _batch_prices(), "ms")
    _table(f"{BATCH:,} prices into the histogram, multiprocess files", _prices_in_files(), "ms")


if __name__ == "__main__":
    main()

"""Prometheus instruments of the HTTP service: requests by route and status, and latency."""

import time
from collections.abc import Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# nginx's "client closed request": what a request the client abandoned is counted as.
CLIENT_CLOSED = 499
# Any other method is counted as "other": a label value must not come from the client.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class Instruments:
    """One registry per app, so several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tasador_requests",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tasador_request_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.warnings = Counter(
            "tasador_advertencias",
            "Warnings given with an appraisal (a home unlike the training data), by field.",
            ["campo"],
            registry=self.registry,
        )
        # Labelled children, looked up once: prometheus-client's labels() costs ~4 µs.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def warned(self, campo: str) -> None:
        """One warning given about ``campo`` (a field, a ratio, or ubicacion)."""
        self.warnings.labels(campo).inc()

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


class InstrumentsMiddleware:
    """Counts and times every HTTP request under its route template."""

    def __init__(self, app: ASGIApp, instruments: Instruments, paths: Collection[str]) -> None:
        self.app = app
        self.instruments = instruments
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = CLIENT_CLOSED  # when the app returns without answering: the client left

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except BaseException:
            status = 500
            raise
        finally:
            # Label by route template (FastAPI's match, or one of the API's own paths, all
            # static), never by raw path, so unknown URLs cannot blow up the series.
            name = getattr(scope.get("route"), "path", None) or (
                scope["path"] if scope["path"] in self.paths else "unmatched"
            )
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.instruments.count(method, name, status, time.perf_counter() - start)

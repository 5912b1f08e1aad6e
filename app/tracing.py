"""Optional OpenTelemetry traces: a server span per request, with spans for validation,
feature building and the engine inside it.

Off by default. On with ``TASADOR_TRACING=on``, or when ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and ``TASADOR_TRACING`` is ``auto``
(the default); ``OTEL_SDK_DISABLED=true`` keeps it off. Spans go over OTLP/HTTP, configured
by the standard ``OTEL_*`` variables, in batches from a background thread. The SDK (the
``tracing`` extra) is imported only when tracing is on.

FastAPI's own OpenTelemetry support opens the server span (propagating a caller's
``traceparent``), given the app's tracer provider. ``TracingMiddleware`` names it after
the API's route (the dispatcher serves them, so FastAPI's router does not name them) and
lets ``span`` reach the provider. ``span(name)`` is what the service calls: while
tracing is off it returns one shared do-nothing context manager.
"""

import importlib.util
import logging
import os
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

log = logging.getLogger("tasador")

SERVICE_NAME = "tasador"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
EXTRA_MISSING = (
    "tracing needs the tracing extra (opentelemetry-sdk and its OTLP exporter): "
    "uv sync --extra tracing, or pip install 'tasador[tracing]'"
)
# The tracer of the app serving the current request; None while tracing is off.
_TRACER: ContextVar["Tracer | None"] = ContextVar("tasador.tracer", default=None)
_OFF: AbstractContextManager[None] = nullcontext()


def span(name: str) -> AbstractContextManager[Any]:
    """A span named ``name`` around a step of the request, or nothing when tracing is off."""
    tracer = _TRACER.get()
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(name)


def sdk_installed() -> bool:
    """Whether the ``tracing`` extra is installed (without importing it)."""
    return importlib.util.find_spec("opentelemetry.sdk") is not None


def wanted(setting: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to trace: ``on`` or ``off``, or (``auto``) whether an OTLP endpoint is set."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if setting != "auto":
        return setting == "on"
    if not any(environ.get(name) for name in ENDPOINT_VARIABLES):
        return False
    if not sdk_installed():
        log.warning("%s is set, but not tracing: %s", ENDPOINT_VARIABLES[0], EXTRA_MISSING)
        return False
    return True


class Tracing:
    """The app's tracer provider and how spans leave it (OTLP/HTTP unless ``exporter``)."""

    def __init__(self, version: str, exporter: "SpanExporter | None" = None) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over these.
        resource = Resource.create({"service.name": SERVICE_NAME, "service.version": version})
        self.provider: TracerProvider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("tasador", version)

    def fastapi_telemetry(self) -> dict[str, Any]:
        """FastAPI's telemetry settings: its server span, with this provider, alone."""
        return {
            "tracing": True,
            "tracer_provider": self.provider,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        }

    def shutdown(self) -> None:
        """Send the spans still waiting, and stop the exporter's thread."""
        self.provider.shutdown()


class TracingMiddleware:
    """Added only while tracing: lets ``span`` find the tracer, and names the server span
    after the API's route (its path: every one is static)."""

    def __init__(self, app: ASGIApp, tracing: Tracing, paths: Collection[str]) -> None:
        self.app = app
        self.tracer = tracing.tracer
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import trace

        from app.request_log import REQUEST_ID_SCOPE_KEY

        server_span = trace.get_current_span()
        path = scope["path"]
        if path in self.paths:
            server_span.update_name(f"{scope['method']} {path}")
            server_span.set_attribute("http.route", path)
        rid = scope.get(REQUEST_ID_SCOPE_KEY)
        if rid is not None:
            server_span.set_attribute("tasador.request_id", rid.decode())
        # The model serving now (the span ends with the answer, before this returns).
        bundle = scope["app"].state.bundle
        if bundle is not None:
            server_span.set_attribute("tasador.model", bundle.version)
            server_span.set_attribute("tasador.engine", bundle.engine.name)
        token = _TRACER.set(self.tracer)
        try:
            await self.app(scope, receive, send)
        finally:
            _TRACER.reset(token)

"""Builds the FastAPI application. The model is loaded in the lifespan, never at import.

``uvicorn --factory app.main:create_app`` builds it from the ``TASADOR_*`` environment;
``uvicorn app.main:app`` works too, building it when uvicorn asks for ``app``.
"""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Security, params
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from app import logs, tracing
from app.api.access import ROUTE_ACCESS, RequestGate
from app.api.deps import API_KEY_SCHEME
from app.api.errors import install_error_handlers
from app.api.fast import FastTransport
from app.api.offload import HeavyWork
from app.api.routes import evaluation, model, monitoring, prediction, status
from app.bundle.loader import Bundle, BundleError
from app.bundle.source import load_served_bundle
from app.config import Settings, SettingsProblemError, get_settings
from app.monitoring import Instruments
from app.reload import reload_on_sighup
from app.request_log import JsonLines, RequestLog

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("tasador")

VERSION = "0.2.0"

SUMMARY = "Appraisal of homes in Madrid: an asking price a person can judge."
DESCRIPTION = """
Estimates the asking price of a home in Madrid from its features, with a RandomForest
trained by `tasador train`, and says how far to trust it: a calibrated range, the area's
€/m², warnings when the home is unlike the training data, and (`?explicar=true`) what
drives the price. The model bundle is verified (hashes, library versions, reference
answers) before it is served.

* `POST /predecir`: one home → its appraisal. `POST /predecir/lote`: many homes in one call.
* `POST /evaluar`: homes with their true price → RMSE, MAE, R², MAPE and the range's
  coverage, beside the hold-out figures.
* `GET /modelo`: the manifest of the model being served.

Names are Spanish, as the users speak; prose is English, and error messages are Spanish
for a request with `Accept-Language: es`. Every bad request gets a 4xx JSON error naming
the field and the problem.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load and verify the bundle once, before the first request is served."""
    if app.state.bundle is None:
        settings: Settings = app.state.settings
        try:
            app.state.bundle = load_served_bundle(settings)
        except BundleError as exc:
            log.error("tasador cannot start: %s", exc)
            raise
    bundle: Bundle = app.state.bundle
    log.info(
        "serving model %s from %s with %s", bundle.version, bundle.directory, bundle.engine.name
    )
    instruments: Instruments = app.state.instruments
    instruments.serving(bundle.version, bundle.engine.name)
    del bundle  # app.state holds it: a reload must be able to free it
    uninstall = reload_on_sighup(app)
    # The first hand-off to a worker thread imports anyio's asyncio backend, ~45 ms on the
    # event loop (``uv run python -m benchmarks.reliability``: /health stalled that long at
    # the first large body after each start); paid here, before the first request.
    await run_in_threadpool(lambda: None)
    # What start-up built lives as long as the process: out of the collector's sight, a
    # full collection (which a large batch's thousands of objects set off) no longer walks
    # it while holding the GIL. /health stalled ~60-80 ms under the largest batches before,
    # ~15 ms after (``uv run python -m benchmarks.reliability``). Still freed by refcount.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()  # collectable again (an app built and closed in a longer process)
        uninstall()
        app.state.bundle = None
        instruments.close()
        if app.state.request_lines is not None:
            app.state.request_lines.flush()
        if app.state.tracing is not None:
            app.state.tracing.shutdown()


def create_app(
    settings: Settings | None = None,
    bundle: Bundle | None = None,
    span_exporter: "SpanExporter | None" = None,
) -> FastAPI:
    """The tasador app; ``bundle`` skips loading when the caller has already verified one;
    ``span_exporter`` traces to it (the tests' in-memory exporter) instead of OTLP."""
    if settings is None:
        try:
            settings = get_settings()
        except SettingsProblemError as exc:  # one line, not uvicorn's traceback
            raise SystemExit(f"tasador: {exc}") from None
    logs.ensure_handler(settings.log_level, settings.log_format)
    traces = None
    if span_exporter is not None or tracing.wanted(settings.tracing):
        traces = tracing.Tracing(VERSION, span_exporter)
    app = FastAPIOffline(
        title="tasador",
        summary=SUMMARY,
        description=DESCRIPTION,
        version=VERSION,
        lifespan=lifespan,
        # tasador exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks look
        # up providers on every request, ~5 % of a /predecir call when measured: only
        # its server span, and only while tracing.
        telemetry=traces.fastapi_telemetry()
        if traces
        else {"tracing": False, "metrics": False, "logs": False},
        # No redirect to a slash-less path: it would be built from the Host header.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.bundle = bundle
    app.state.instruments = Instruments()
    app.state.heavy = HeavyWork()
    app.state.tracing = traces
    paths = {path for _, path in ROUTE_ACCESS}
    # uvicorn's access log is off in the json format (app.logs): this replaces it.
    logged = settings.log_format == "json" and settings.log_level in ("info", "debug")
    app.state.request_lines = JsonLines(paths) if logged else None
    # Middleware added last runs first: the request log (id, metrics, log line), the
    # tracing context, CORS (when configured), the gate, then the fast transport.
    if settings.fast_path:
        app.add_middleware(FastTransport, settings=settings)
    app.add_middleware(RequestGate, settings=settings)
    if settings.cors_origins:
        # Outside the gate: a browser's preflight carries no API key.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["content-type", "x-api-key", "accept-language", "x-request-id"],
            expose_headers=["retry-after", "x-request-id"],
            max_age=600,
        )
    if traces is not None:
        app.add_middleware(tracing.TracingMiddleware, tracing=traces, routes=ROUTE_ACCESS)
    app.add_middleware(
        RequestLog,
        instruments=app.state.instruments,
        paths=paths,
        lines=app.state.request_lines,
    )
    install_error_handlers(app)
    app.add_api_route("/", _to_the_docs, include_in_schema=False)
    for router in (prediction.router, evaluation.router, model.router, monitoring.router,
                   status.router):  # fmt: skip
        app.include_router(
            router,
            dependencies=_documented_key(router, settings),
            max_body_size=settings.max_body_bytes,
        )
    return app


async def _to_the_docs() -> RedirectResponse:
    """The root is the interactive documentation (a relative Location: no Host in it)."""
    return RedirectResponse("/docs", status_code=307)


def _documented_key(router: APIRouter, settings: Settings) -> list[params.Depends]:
    """The API key, declared on a router whose routes need one: the RequestGate checks it;
    declaring it puts it in the OpenAPI document and Swagger's "Authorize" button."""
    paths = {route.path for route in router.routes if isinstance(route, APIRoute)}
    keyed = any(
        access.key and path in paths and path not in settings.open_routes
        for (_, path), access in ROUTE_ACCESS.items()
    )
    return [Security(API_KEY_SCHEME)] if keyed and settings.api_keys else []


@cache
def _environment_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    """``app.main.app``: the app, built from the environment when first asked for."""
    if name == "app":
        return _environment_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

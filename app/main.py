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

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline

from app import logs, tracing
from app.allocator import keep_large_blocks_apart
from app.api.dispatch import Dispatcher
from app.api.docs import document_routes
from app.api.offload import HeavyWork
from app.api.refusal_responses import install_error_handlers
from app.api.routes import ROUTES
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
    # The first hand-off to a worker thread imports anyio's asyncio backend on the event
    # loop (/health would stall behind it at the first large body): paid here, at start.
    await run_in_threadpool(lambda: None)
    # What start-up built lives as long as the process: out of the collector's sight, a
    # full collection (which a large batch's thousands of objects set off) no longer walks
    # it while holding the GIL (a /health stall under the largest batches). Still freed by
    # reference counting.
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
    keep_large_blocks_apart()
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
    paths = {route.path for route in ROUTES}
    # uvicorn's access log is off in the json format (app.logs): this replaces it.
    logged = settings.log_format == "json" and settings.log_level in ("info", "debug")
    app.state.request_lines = JsonLines(paths) if logged else None
    # Middleware added last runs first: the request log (id, metrics, log line), the
    # tracing context, CORS (when configured), then the dispatcher, which serves every
    # route of the API and leaves the docs and unknown paths to FastAPI.
    app.add_middleware(
        Dispatcher, settings=settings, instruments=app.state.instruments, heavy=app.state.heavy
    )
    if settings.cors_origins:
        # Outside the dispatcher: a browser's preflight carries no API key.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["content-type", "x-api-key", "accept-language", "x-request-id"],
            expose_headers=["retry-after", "x-request-id"],
            max_age=600,
        )
    if traces is not None:
        app.add_middleware(tracing.TracingMiddleware, tracing=traces, paths=paths)
    app.add_middleware(
        RequestLog,
        instruments=app.state.instruments,
        paths=paths,
        lines=app.state.request_lines,
    )
    install_error_handlers(app)
    app.add_api_route("/", _to_the_docs, include_in_schema=False)
    document_routes(app, settings)
    return app


async def _to_the_docs() -> RedirectResponse:
    """The root is the interactive documentation (a relative Location: no Host in it)."""
    return RedirectResponse("/docs", status_code=307)


@cache
def _environment_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    """``app.main.app``: the app, built from the environment when first asked for."""
    if name == "app":
        return _environment_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

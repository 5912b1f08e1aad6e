"""Builds the FastAPI application. The model is loaded in the lifespan, never at import.

``uvicorn --factory app.main:create_app`` builds it from the ``TASADOR_*`` environment;
``uvicorn app.main:app`` works too, building it when uvicorn asks for ``app``.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

from fastapi import APIRouter, FastAPI, Security, params
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from app import logs
from app.api.access import ROUTE_ACCESS, RequestGate
from app.api.deps import API_KEY_SCHEME
from app.api.errors import install_error_handlers
from app.api.fast import FastTransport
from app.api.routes import evaluation, model, monitoring, prediction, status
from app.bundle.loader import Bundle, BundleError
from app.bundle.source import load_served_bundle
from app.config import Settings, get_settings
from app.monitoring import Instruments, InstrumentsMiddleware
from app.reload import reload_on_sighup

log = logging.getLogger("tasador")

SUMMARY = "Tasación de viviendas en Madrid: precio estimado a partir de sus características."
DESCRIPTION = """
Estimates the asking price of a home in Madrid from its features, with a RandomForest
trained by `tasador train`. The model bundle is verified (hashes, library versions,
reference predictions) before it is served.

* `POST /predecir`: one home → its price. `POST /predecir/lote`: many homes in one call.
* `POST /evaluar`: labelled homes → RMSE, MAE, R², MAPE beside the hold-out metrics.
* `GET /modelo`: the manifest of the model being served.

Every bad request gets a 4xx JSON error naming the field and the problem.
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
    uninstall = reload_on_sighup(app)
    try:
        yield
    finally:
        uninstall()
        app.state.bundle = None


def create_app(settings: Settings | None = None, bundle: Bundle | None = None) -> FastAPI:
    """The tasador app; ``bundle`` skips loading when the caller has already verified one."""
    settings = settings or get_settings()
    logs.ensure_handler(settings.log_level)
    app = FastAPIOffline(
        title="tasador",
        summary=SUMMARY,
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        # tasador exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks look
        # up providers on every request, ~5 % of a /predecir call when measured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # No redirect to a slash-less path: it would be built from the Host header.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.bundle = bundle
    app.state.instruments = Instruments()
    # Middleware added last runs first: instruments, gate, then the fast transport.
    if settings.fast_path:
        app.add_middleware(FastTransport, settings=settings)
    app.add_middleware(RequestGate, settings=settings)
    app.add_middleware(
        InstrumentsMiddleware,
        instruments=app.state.instruments,
        paths={path for _, path in ROUTE_ACCESS},
    )
    install_error_handlers(app)
    for router in (prediction.router, evaluation.router, model.router, monitoring.router,
                   status.router):  # fmt: skip
        app.include_router(
            router,
            dependencies=_documented_key(router, settings),
            max_body_size=settings.max_body_bytes,
        )
    return app


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

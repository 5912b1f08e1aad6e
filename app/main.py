"""Builds the FastAPI application. The model is loaded in the lifespan, never at import."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from app.body import register_schemas
from app.bundle import Bundle, BundleError, load_bundle
from app.config import Settings, get_settings
from app.deps import require_api_key
from app.errors import install_error_handlers
from app.fastpath import PrediccionFastPath
from app.observability import Metrics, MetricsMiddleware
from app.observability import router as metrics_router
from app.reload import reload_on_sighup
from app.routers import evaluation, health, prediction
from app.schemas import Formulario, Lote, PeticionEvaluacion

log = logging.getLogger("tasador")

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
            app.state.bundle = load_bundle(settings.model_dir, settings.engine)
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
    app = FastAPIOffline(
        title="tasador",
        summary="Tasación de viviendas en Madrid: precio estimado a partir de sus características.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        # tasador exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks look
        # up providers on every request, ~5 % of a /predecir call when measured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.bundle = bundle
    app.state.metrics = Metrics()
    # Added last, so outermost: metrics see every request, fast path or not.
    app.add_middleware(PrediccionFastPath)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    # Only when keys are configured: a dependency on every request is not free.
    protected = [Depends(require_api_key)] if settings.api_keys else []
    app.include_router(prediction.router, dependencies=protected)
    app.include_router(evaluation.router, dependencies=protected)
    app.include_router(health.router)
    app.include_router(metrics_router)
    register_schemas(app, [Formulario, Lote, PeticionEvaluacion])
    return app


app = create_app()

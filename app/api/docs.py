"""``ROUTES`` in FastAPI's OpenAPI document (``/openapi.json``, ``/docs``, ``/redoc``).

Each route is declared to FastAPI as it would be written by hand (its body and query
models, its answer, the API key when it needs one), so that the document is FastAPI's
own; the ``Dispatcher`` serves them, so FastAPI never calls these endpoints.
"""

import inspect
from typing import Annotated, Any

from fastapi import FastAPI, Query, Security
from fastapi.security import APIKeyHeader

from app.api.access import API_KEY_HEADER
from app.api.routes import ROUTES, Route
from app.config import Settings

# Declared on protected routes when keys are configured, so that the OpenAPI document and
# Swagger's "Authorize" show it; the check itself is the Dispatcher's.
API_KEY_SCHEME = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="APIKey")


def document_routes(app: FastAPI, settings: Settings) -> None:
    """Add every route of ``ROUTES`` to ``app``'s OpenAPI document."""
    for route in ROUTES:
        keyed = route.key and settings.api_keys and route.path not in settings.open_routes
        app.add_api_route(
            route.path,
            _endpoint(route),
            methods=[route.method],
            summary=route.summary,
            tags=[route.tag],
            dependencies=[Security(API_KEY_SCHEME)] if keyed else None,
            **route.docs,
        )


def _endpoint(route: Route) -> Any:
    """A function with the signature FastAPI documents: the body and the query model."""

    async def endpoint() -> None:
        raise AssertionError(f"{route.method} {route.path} is served by the Dispatcher")

    parameters = []
    if route.body is not None:
        parameters.append(_parameter("body", route.body))
    if route.params is not None:
        parameters.append(_parameter("params", Annotated[route.params, Query()]))
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = route.handler.__name__
    endpoint.__doc__ = route.handler.__doc__
    return endpoint


def _parameter(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)

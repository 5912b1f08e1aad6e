"""Errors the API reports to clients, each with its HTTP status, and the responses for them.

Bodies keep FastAPI's validation-error shape, ``{"detail": [{"loc", "msg", "type"}]}``,
so a client parses every 4xx the same way.
"""

import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.schemas import Errores

# Documented answers of routes that take a body (see the OpenAPI document).
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Errores, "description": "Missing or unknown API key (when keys are set)."},
    413: {"model": Errores, "description": "Body larger than the configured limit."},
    422: {"model": Errores, "description": "Invalid body: each problem names its field."},
    503: {"model": Errores, "description": "The model is not loaded yet."},
}
MAX_ECHO_CHARS = 200


class ApiError(Exception):
    """A request the service understood but will not serve; carries its HTTP status."""

    def __init__(
        self,
        status_code: int,
        msg: str,
        *,
        loc: Sequence[str | int] = (),
        type: str = "invalid",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.detail = [{"loc": list(loc), "msg": msg, "type": type}]
        self.headers = headers


def check_rows(n: int, limit: int, field: str) -> None:
    """Refuse a batch larger than the configured row limit, naming the field."""
    if n > limit:
        raise ApiError(
            422,
            f"List should have at most {limit} items, got {n}",
            loc=("body", field),
            type="too_long",
        )


def api_error_response(exc: ApiError) -> JSONResponse:
    """The JSON answer to an ``ApiError``."""
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def body_too_large(limit: int) -> ApiError:
    """The error for a body over ``limit`` bytes."""
    return ApiError(
        413,
        f"Request body is larger than the limit of {limit} bytes",
        loc=("body",),
        type="body_too_large",
    )


async def _handle_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


def _json_safe(value: Any) -> Any:
    """Scalars as they are, but NaN/Infinity (which JSON cannot carry) as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _problem(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error as sent to the client: where, what, and the offending value.

    The value is echoed only when it is a scalar: echoing a whole object or a batch
    would send the request back to the client.
    """
    problem = {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
    value = error.get("input")
    if isinstance(value, str) and (error["type"] == "json_invalid" or len(value) > MAX_ECHO_CHARS):
        pass  # the raw body, or a long text: not worth sending back
    elif value is None or isinstance(value, str | int | float | bool):
        problem["input"] = _json_safe(value)
    if ctx := error.get("ctx"):
        problem["ctx"] = {key: _json_safe(v) for key, v in ctx.items()}
    return problem


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """The 422 answer to a body that failed validation, one entry per problem."""
    return JSONResponse({"detail": [_problem(e) for e in exc.errors()]}, status_code=422)


async def _handle_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn refused requests into JSON 4xx answers."""
    app.add_exception_handler(ApiError, _handle_api_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)

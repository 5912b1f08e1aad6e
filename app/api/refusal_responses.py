"""Every refused request answered in one JSON shape, whoever refused it.

``{"detail": [{"loc", "msg", "type", "input"?, "ctx"?}, ...]}``: FastAPI's validation-error
shape, so a client parses every 4xx the same way.
"""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Scope

from app.i18n import Language, negotiate, problem_message
from app.refusals import RefusalError, RefusedError
from app.schemas.errores import Errores


def _documented(description: str, *problems: dict[str, Any]) -> dict[str, Any]:
    """A documented error answer, with an example of each of its problems."""
    examples = {
        problem["type"]: {"summary": problem["type"], "value": {"detail": [problem]}}
        for problem in problems
    }
    return {
        "model": Errores,
        "description": description,
        "content": {"application/json": {"examples": examples}},
    }


_KEY_LOC = ["header", "X-API-Key"]
# Documented answers of routes that take a body (see the OpenAPI document).
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _documented(
        "No API key (when keys are set).",
        {"loc": _KEY_LOC, "msg": "this route needs an API key in the X-API-Key header",
         "type": "api_key_missing"},
    ),
    403: _documented(
        "An API key that is not one of the service's.",
        {"loc": _KEY_LOC, "msg": "the API key in the X-API-Key header is not one of this "
         "service's", "type": "api_key_unknown"},
    ),
    413: _documented(
        "Body larger than the configured limit.",
        {"loc": ["body"], "msg": "Request body is larger than the limit of 4194304 bytes",
         "type": "body_too_large", "ctx": {"limit": 4194304}},
    ),
    415: _documented(
        "Body not sent as plain JSON.",
        {"loc": ["header", "Content-Type"], "msg": "send JSON: Content-Type: application/json "
         "(this request has Content-Type text/plain)", "type": "unsupported_media_type",
         "ctx": {"sent": "text/plain"}},
    ),
    422: _documented(
        "Invalid body: each problem names its field.",
        {"loc": ["body", "condicion"], "msg": "Input should be 'A reformar', 'Reformado', "
         "'A estrenar' or 'En buen estado'", "type": "enum", "input": "Nuevo"},
        {"loc": ["body", "superficie_util"], "msg": "superficie_util (120.0) cannot exceed "
         "superficie_construida (95.0)", "type": "superficie_util_too_large", "input": 120.0},
    ),
    503: _documented(
        "The model is not loaded yet, or the service is busy with large bodies: try again "
        "after Retry-After seconds.",
        {"loc": [], "msg": "the model is not loaded yet", "type": "not_ready"},
        {"loc": [], "msg": "busy with 16777216 bytes of requests; try again in a moment",
         "type": "busy", "ctx": {"in_flight": 16777216}},
    ),
}  # fmt: skip
MAX_ECHO_CHARS = 200
# Whole numbers are capped alike: a 4,000-digit one is valid JSON, and was sent back whole.
_MAX_ECHO_INT = 10 ** (MAX_ECHO_CHARS - 1)  # at most 199 digits and a sign
MAX_LOC_CHARS = 64  # a field name sent back in loc, at most (an unknown key can be huge)

log = logging.getLogger("tasador")


def client_disconnected(scope: Scope) -> None:
    """Say, in one line, that a client hung up before its request was read."""
    client = scope.get("client") or ("?", 0)
    log.info(
        "client %s:%s hung up before sending its whole request: %s %s",
        client[0],
        client[1],
        scope.get("method"),
        scope.get("path"),
    )


def _json_safe(value: Any) -> Any:
    """Scalars as they are, but NaN/Infinity (which JSON cannot carry) as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _problem(error: dict[str, Any], language: Language) -> dict[str, Any]:
    """One problem as sent to the client: where, what (in the client's language), and
    the offending value.

    The value is echoed only when it is a scalar: echoing a whole object or a batch
    would send the request back to the client.
    """
    loc = [_short(part) for part in error["loc"]]
    problem = {"loc": loc, "msg": problem_message(error, language), "type": error["type"]}
    value = error.get("input")
    if isinstance(value, str) and (error["type"] == "json_invalid" or len(value) > MAX_ECHO_CHARS):
        pass  # the raw body, or a long text: not worth sending back
    elif isinstance(value, int) and abs(value) >= _MAX_ECHO_INT:
        pass  # a long number, likewise
    elif "input" in error and (value is None or isinstance(value, str | int | float | bool)):
        problem["input"] = _json_safe(value)
    # class_name names one of our Python classes (LoteIgnore...): nothing a client sent.
    if ctx := {k: v for k, v in (error.get("ctx") or {}).items() if k != "class_name"}:
        problem["ctx"] = {key: _json_safe(v) for key, v in ctx.items()}
    return problem


def _short(part: Any) -> Any:
    if isinstance(part, str) and len(part) > MAX_LOC_CHARS:
        return part[:MAX_LOC_CHARS] + "…"
    return part


def refusal_response(refusal: RefusalError, language: Language) -> JSONResponse:
    """The JSON answer to a refusal, in the request's language."""
    return JSONResponse(
        {"detail": [_problem(p, language) for p in refusal.problems()]},
        status_code=refusal.status_code,
        headers=refusal.headers,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    # Starlette's own (404, 405...): the same list shape as every other refusal, saying
    # what would have worked.
    kinds = {404: ("not_found", "path"), 405: ("method_not_allowed", "method")}
    kind, where = kinds.get(exc.status_code, ("http_error", "request"))
    headers = dict(exc.headers or {})
    message, ctx = str(exc.detail), None
    path = request.url.path
    if exc.status_code == 404 and (near := _nearest_route(request.app, path)):
        message, ctx = f"Not Found: no route {path}; did you mean {near}?", {"sugerencia": near}
    elif exc.status_code == 405 and (allow := headers.get("allow") or headers.get("Allow")):
        message = f"Method Not Allowed: {path} takes {allow}"
        ctx = {"metodos": allow}
    refusal = RefusedError(
        exc.status_code, message, loc=(where,), type=kind, ctx=ctx, headers=headers
    )
    language = negotiate(request.headers.get("accept-language"))
    return refusal_response(refusal, language)


# What clients of other model servers, and English speakers, try first.
_ENGLISH = {
    "/predict": "/predecir",
    "/prediction": "/predecir",
    "/invocations": "/predecir/lote",
    "/batch": "/predecir/lote",
    "/predict/batch": "/predecir/lote",
    "/evaluate": "/evaluar",
    "/model": "/modelo",
    "/healthz": "/health",
    "/readyz": "/ready",
}


def _nearest_route(app: FastAPI, path: str) -> str | None:
    """The route a mistyped or English path most likely meant, as ``METHOD /path``."""
    import difflib

    # The documented routes (the OpenAPI document is built once and cached by FastAPI).
    routes = {
        route: sorted(method.upper() for method in methods if method != "head")
        for route, methods in app.openapi().get("paths", {}).items()
    }
    wanted = path.rstrip("/").lower() or "/"
    found = _ENGLISH.get(wanted) or next(
        iter(difflib.get_close_matches(wanted, list(routes), n=1, cutoff=0.75)), None
    )
    if found is None or found not in routes:
        return None
    return f"{'/'.join(routes[found])} {found}"


def install_error_handlers(app: FastAPI) -> None:
    """Answer FastAPI's own refusals (no such route, or not with that method) in the
    same shape; the dispatcher answers every other refusal itself."""
    app.add_exception_handler(HTTPException, _http_error)

"""A fast path for ``POST /predecir``: the same answer, without FastAPI's per-request
machinery.

Measured on the 2-core benchmark machine (``benchmarks/``): FastAPI's routing, dependency
solving and exception middleware cost ~150 µs per request, several times the model itself
(~25 µs in a warm loop, ~60 µs under load). This ASGI middleware recognises exactly
``POST /predecir`` and answers it with the route's own functions (``predict_one``, the
same API-key check, body limit, 503 and error bodies); every other request, and this one
when ``TASADOR_FAST_PATH=false``, goes through FastAPI as usual. The FastAPI route stays
the documented (OpenAPI) description and the reference the tests compare the fast path to.
"""

from collections.abc import AsyncIterator
from typing import NamedTuple

from fastapi.exceptions import RequestValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.body import read_limited, run_sized
from app.config import Settings
from app.deps import API_KEY_HEADER, bundle_of, check_api_key
from app.errors import ApiError, api_error_response, validation_error_response
from app.routers.prediction import predict_one

PATH = "/predecir"


class _Route(NamedTuple):
    path: str


_ROUTE = _Route(PATH)
_API_KEY = API_KEY_HEADER.lower().encode()


class PrediccionFastPath:
    """Serves ``POST /predecir`` directly; passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != scope.get("root_path", "") + PATH
            or not scope["app"].state.settings.fast_path
        ):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: Settings = state.settings
        headers = dict(scope["headers"])
        response: Response
        try:
            check_api_key(settings, _text(headers.get(_API_KEY)))
            bundle = bundle_of(state)
            declared = headers.get(b"content-length", b"")
            body = await read_limited(
                _chunks(receive),
                int(declared) if declared.isdigit() else None,
                settings.max_body_bytes,
            )
            response = await run_sized(lambda b: predict_one(bundle, b), body)
        except ApiError as exc:
            response = api_error_response(exc)
        except RequestValidationError as exc:
            response = validation_error_response(exc)
        scope["route"] = _ROUTE  # what /metrics labels requests by, as FastAPI sets it
        await response(scope, receive, send)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None

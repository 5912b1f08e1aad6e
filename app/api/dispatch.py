"""The one way a request of the API is served: ``Dispatcher``, ASGI middleware over FastAPI.

For each request it finds the route in ``ROUTES`` once, makes the checks of
``app.api.access``, reads the body within the size limit, validates it with ``parse_json``
(pydantic's own JSON parser) and the query with the route's model, calls the handler and
sends its answer; every refusal on the way is answered here, in one shape. FastAPI serves
what is not in the table: the docs, and 404/405 for unknown paths and methods.

Why not FastAPI's routes: its routing, dependency solving and exception middleware cost
more than the model itself, and kept ``POST /predecir`` below a plain FastAPI app that
only validates the same body (``uv run python -m benchmarks.run``, the "ceiling").
"""

from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.access import (
    API_KEY_HEADER,
    BodyBudget,
    Headers,
    check_json,
    check_key,
    declared_length,
    route_path,
)
from app.api.offload import HeavyWork
from app.api.refusal_responses import client_disconnected, refusal_response
from app.api.routes import ROUTES, Context, Route, to_json
from app.config import Settings
from app.i18n import negotiate
from app.keys import ApiKeys
from app.monitoring import Instruments
from app.refusals import RefusalError, body_too_large
from app.request_log import SERVED_BY_SCOPE_KEY
from app.service.parsing import parse_json

_API_KEY = API_KEY_HEADER.lower().encode()
# Bodies from this size are answered in a worker thread, so that a large batch does not
# hold the event loop (other requests) for tens of milliseconds; below it the thread
# hand-off would cost more than the work.
OFFLOAD_FROM_BYTES = 32 * 1024


class Dispatcher:
    """Serves every route of ``ROUTES``; passes everything else on to FastAPI."""

    def __init__(
        self, app: ASGIApp, settings: Settings, instruments: Instruments, heavy: HeavyWork
    ) -> None:
        self.app = app
        self.settings = settings
        self.instruments = instruments
        self.heavy = heavy
        self.routes = {(route.method, route.path): route for route in ROUTES}
        self.keys = ApiKeys(settings.api_keys)
        self.open = frozenset(settings.open_routes)
        self.bodies = BodyBudget(settings.max_bodies_in_flight_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            # Answered as GET; the server, which still sees HEAD, sends no body.
            scope = {**scope, "method": "GET"}
        route = self.routes.get((scope["method"], route_path(scope)))
        if route is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope)
        language = negotiate(headers.get(b"accept-language"))
        # The bundle serving now serves this request to the end, even if a reload swaps it.
        context = Context(scope["app"].state.bundle, self.settings, language, self.instruments)
        reserved = 0
        try:
            answer: bytes | Response
            try:
                if route.key and self.keys and route.path not in self.open:
                    check_key(self.keys, headers.get(_API_KEY))
                if route.model:
                    scope[SERVED_BY_SCOPE_KEY] = context.served  # 503 while there is none
                if route.body is None:
                    answer = _serialised(route.handler(context, None, None))
                else:
                    limit = self.settings.max_body_bytes
                    declared = declared_length(headers, limit)
                    check_json(headers)
                    reserved = self.bodies.admit(limit if declared is None else declared)
                    body = await _read_body(receive, limit)
                    query: bytes = scope["query_string"]
                    if len(body) < OFFLOAD_FROM_BYTES and b"explicar" not in query:
                        answer = _answer(route, context, body, query)
                    else:
                        # Large bodies, and explanations (the first builds their engine),
                        # are answered in a worker thread, off the event loop, one at a time.
                        answer = await self.heavy.run(_answer, route, context, body, query)
            except RefusalError as refusal:
                answer = refusal_response(refusal, language)
            except ClientDisconnect:
                client_disconnected(scope)
                return  # nobody to answer
            if isinstance(answer, Response):
                await answer(scope, receive, send)
                return
            # What Response(answer, media_type="application/json") sends, without one.
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-length", str(len(answer)).encode()),
                (b"content-type", b"application/json"),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": answer})
        finally:
            self.bodies.release(reserved)


def _answer(route: Route, context: Context, body: bytes, query: bytes) -> bytes | Response:
    """The handler's answer to a body (in the worker thread when offloaded)."""
    assert route.body is not None
    # The body first, then the query: FastAPI's order, so the same errors come first.
    validated = parse_json(route.body, body, context.settings.max_batch_rows)
    params = route.parse_params(query)
    return _serialised(route.handler(context, validated, params))


def _serialised(answer: BaseModel | Response) -> bytes | Response:
    return answer if isinstance(answer, Response) else to_json(answer)


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused (413) once it outgrows ``limit`` bytes: a body sent
    without ``Content-Length`` is counted as it arrives."""
    parts = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise body_too_large(limit)
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)

"""The body operations answered straight from ASGI, without FastAPI's per-request machinery.

Measured with ``uv run python -m benchmarks.run``: FastAPI's routing, dependency solving
and exception middleware cost more than the model itself, and a ``POST /predecir`` served
by FastAPI's route stays below the plain FastAPI "ceiling" server (see the README's Speed
section). This middleware sits behind the ``RequestGate`` (so every check has been made)
and serves each ``BodyOperation`` with the same pieces FastAPI's routes use: the body read
within FastAPI's own limiter, ``parse_json``, the service call and the error shape. Every
other request goes on to FastAPI; ``TASADOR_FAST_PATH=false`` leaves them all to it.
"""

from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.access import route_path
from app.api.body import OFFLOAD_FROM_BYTES
from app.api.errors import client_disconnected, refusal_response
from app.api.operations import OPERATIONS, BodyOperation, Context, answer_json
from app.api.scope import BODY_LENGTH_SCOPE_KEY, BUNDLE_SCOPE_KEY, LANGUAGE_SCOPE_KEY
from app.config import Settings
from app.errors import RefusalError, body_too_large
from app.service.parsing import parse_json

_OPERATION_SCOPE_KEY = "tasador.operation"


class FastTransport:
    """ASGI middleware serving ``OPERATIONS``; passes everything else on."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._operations = {operation.path: operation for operation in OPERATIONS}
        # FastAPI's routes get the same limiter from ``max_body_size``.
        self._limited = RequestBodyLimitMiddleware(self._serve, settings.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            operation = self._operations.get(route_path(scope))
            if operation is not None:
                scope[_OPERATION_SCOPE_KEY] = operation
                if scope[BODY_LENGTH_SCOPE_KEY] is not None:
                    # The gate refused a declared length over the limit, and HTTP framing
                    # ends the body there: nothing is left to count.
                    await self._serve(scope, receive, send)
                else:
                    await self._limited(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation: BodyOperation[Any, Any] = scope[_OPERATION_SCOPE_KEY]
        context = Context(
            bundle=scope[BUNDLE_SCOPE_KEY],
            settings=self.settings,
            language=scope[LANGUAGE_SCOPE_KEY],
            instruments=scope["app"].state.instruments,
        )
        response: Response
        try:
            body = await _read_body(receive)
            query: bytes = scope["query_string"]
            if len(body) < OFFLOAD_FROM_BYTES and b"explicar" not in query:
                payload = self._answer(operation, context, body, query)
            else:
                # Large bodies, and explanations (the first builds their engine), are
                # answered in a worker thread, off the event loop, one at a time.
                payload = await scope["app"].state.heavy.run(
                    self._answer, operation, context, body, query
                )
        except RefusalError as refusal:
            response = refusal_response(refusal, scope)
        except HTTPException as exc:
            if exc.status_code != 413:  # the limiter's, when the body outgrew the limit
                raise
            response = refusal_response(body_too_large(self.settings.max_body_bytes), scope)
        except ClientDisconnect:
            client_disconnected(scope)
            return  # nobody to answer
        else:
            # What Response(payload, media_type="application/json") sends, without
            # building one: the headers of every answer are these two.
            length = str(len(payload)).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-length", length), (b"content-type", b"application/json"),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": payload})
            return
        await response(scope, receive, send)

    @staticmethod
    def _answer(
        operation: BodyOperation[Any, Any], context: Context, body: bytes, query: bytes
    ) -> bytes:
        # The body first, then the query: FastAPI's order, so the same errors come first.
        validated = parse_json(operation.body, body, context.settings.max_batch_rows)
        params = operation.parse_params(query)
        return answer_json(operation, context, validated, params)


async def _read_body(receive: Receive) -> bytes:
    """The request body, from the (size-limited) ``receive``.

    Starlette's ``Request.body()`` does the same through an async generator, which cost
    ~10 µs per request more (``uv run python -m benchmarks.run``, the in-process table)."""
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)

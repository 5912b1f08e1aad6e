"""JSON bodies for FastAPI's routes, parsed as the fast transport parses them.

A route declares its body as usual (``formulario: Formulario``), so FastAPI documents it;
``JsonBodyRoute``, FastAPI's documented hook for custom request handling, has FastAPI read
that body through ``parse_json`` (pydantic's own JSON parser) instead of ``json.loads``
followed by validation, so both transports accept and refuse exactly the same bodies.
Large bodies are parsed in a worker thread (``app.api.offload``), so that they do not hold
the event loop.
"""

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from app.api.errors import RefusedBody
from app.api.offload import HeavyWork
from app.errors import RefusalError
from app.schemas.base import RequestModel
from app.service.parsing import parse_json

# Bodies from this size are handled in a worker thread, so that a large batch does not
# hold the event loop (other requests) for tens of milliseconds. Below it the thread
# hand-off would cost more than the work.
OFFLOAD_FROM_BYTES = 32 * 1024
ModelT = TypeVar("ModelT", bound=RequestModel)


async def parse_sized(model: type[ModelT], body: bytes, max_rows: int, heavy: HeavyWork) -> ModelT:
    """``parse_json``, in ``heavy``'s worker thread when ``body`` is large."""
    if len(body) < OFFLOAD_FROM_BYTES:
        return parse_json(model, body, max_rows)
    return await heavy.run(parse_json, model, body, max_rows)


class _JsonBodyRequest(Request):
    """A request whose ``json()`` is its body validated as ``model``."""

    def __init__(self, scope: Scope, receive: Receive, model: type[RequestModel]) -> None:
        super().__init__(scope, receive)
        self._model = model
        self._parsed: BaseModel | None = None

    async def json(self) -> Any:
        """The validated body (FastAPI accepts the instance as it is)."""
        if self._parsed is None:
            state = self.scope["app"].state
            max_rows = state.settings.max_batch_rows
            try:
                body = await self.body()
                self._parsed = await parse_sized(self._model, body, max_rows, state.heavy)
            except RefusalError as refusal:
                raise RefusedBody(refusal) from None
        return self._parsed


class JsonBodyRoute(APIRoute):
    """An ``APIRoute`` whose declared JSON body is parsed by ``parse_json``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        model = self.body_field.field_info.annotation if self.body_field else None
        if not (isinstance(model, type) and issubclass(model, RequestModel)):
            return handler

        async def parse_then_handle(request: Request) -> Response:
            return await handler(_JsonBodyRequest(request.scope, request.receive, model))

        return parse_then_handle

"""Request bodies: read within the size limit, validated straight from bytes, answered
inline or in a worker thread by size, and described exactly in the OpenAPI document.

Routes that take a body read it themselves and validate it with
``Model.model_validate_json`` (pydantic's JSON parser, in Rust) instead of FastAPI's
decode-to-Python-then-validate path, and answer with bytes serialised once instead of
FastAPI's validate-again-then-encode. The price is that FastAPI no longer sees the body
parameter, so ``json_body`` describes it in the OpenAPI document as FastAPI would, and
``register_schemas`` adds the models to ``components``; a test compares both with what
FastAPI generates for ordinary declared bodies.
"""

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError

from app.errors import body_too_large

ModelT = TypeVar("ModelT", bound=BaseModel)
REF = "#/components/schemas/{model}"
# Bodies above this size are validated and predicted in a worker thread, so that a large
# batch does not hold the event loop (other requests) for tens of milliseconds. Below it
# the thread hand-off would cost more than the work.
OFFLOAD_FROM_BYTES = 32 * 1024


def parse(model: type[ModelT], body: bytes) -> ModelT:
    """Validate a JSON body, or raise the same error FastAPI raises for a bad body."""
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        raise RequestValidationError(errors) from None


async def read_limited(chunks: AsyncIterator[bytes], declared: int | None, limit: int) -> bytes:
    """The whole body, or a 413 ``ApiError`` as soon as it is known to exceed ``limit``."""
    if declared is not None and declared > limit:
        raise body_too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


async def read_request_body(request: Request, limit: int) -> bytes:
    """A route's request body, at most ``limit`` bytes."""
    declared = request.headers.get("content-length")
    size = int(declared) if declared and declared.isdigit() else None
    return await read_limited(request.stream(), size, limit)


async def run_sized(work: Callable[[bytes], Response], body: bytes) -> Response:
    """Run ``work`` on ``body``: inline when small, in a worker thread when large."""
    if len(body) < OFFLOAD_FROM_BYTES:
        return work(body)
    return await run_in_threadpool(work, body)


def json_response(model: BaseModel) -> Response:
    """A JSON response serialised by pydantic, bypassing FastAPI's re-validation."""
    return Response(model.model_dump_json(), media_type="application/json")


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the required JSON request body."""
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


def register_schemas(app: FastAPI, models: Iterable[type[BaseModel]]) -> None:
    """Make ``app.openapi()`` include the schemas of bodies declared with ``json_body``."""
    models = list(models)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template=REF)
                for name, definition in schema.pop("$defs", {}).items():
                    schemas.setdefault(name, definition)
                schemas[model.__name__] = schema
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Who may call what: the checks every request passes before any body is read.

``RequestGate`` runs once per request, in front of both transports, so every route gets
the same answer for the same headers: the API key (401), the model loaded (503, with
``Retry-After``), a declared body size over the limit (413), and a body that is not
declared as plain JSON (415). It hands the bundle it
checked to the request (``BUNDLE_SCOPE_KEY``): a request keeps that bundle to the end, even
if a reload swaps the model meanwhile. A body sent without ``Content-Length`` is counted
as it arrives, by FastAPI's ``max_body_size`` limiter (``app.main``).
"""

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import refusal_response
from app.api.scope import BODY_LENGTH_SCOPE_KEY, BUNDLE_SCOPE_KEY, LANGUAGE_SCOPE_KEY
from app.config import Settings
from app.errors import RefusedError, body_too_large, not_ready
from app.i18n import negotiate
from app.keys import ApiKeys

API_KEY_HEADER = "X-API-Key"
_API_KEY = API_KEY_HEADER.lower().encode()


@dataclass(frozen=True)
class Access:
    """What a route needs before it is served."""

    key: bool = False  # an API key, when keys are configured
    model: bool = False  # the model loaded
    body: bool = False  # takes a body, within the size limit


OPEN = Access()
BODY_ROUTE = Access(key=True, model=True, body=True)

# Every route of the API, by method and path; a test checks that none is missing.
ROUTE_ACCESS: Mapping[tuple[str, str], Access] = {
    ("POST", "/predecir"): BODY_ROUTE,
    ("POST", "/predecir/lote"): BODY_ROUTE,
    ("POST", "/evaluar"): BODY_ROUTE,
    ("GET", "/modelo"): Access(key=True, model=True),
    ("GET", "/metrics"): Access(key=True),
    ("GET", "/health"): OPEN,
    ("GET", "/ready"): OPEN,
}


class RequestGate:
    """ASGI middleware applying ``ROUTE_ACCESS`` to every request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
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
        access = ROUTE_ACCESS.get((scope["method"], route_path(scope)))
        if access is None or access == OPEN:
            await self.app(scope, receive, send)
            return
        try:
            headers = _Headers(scope)
            self._admit(scope, access, headers)
            size = 0
            if access.body:
                declared = _length(headers)
                scope[BODY_LENGTH_SCOPE_KEY] = declared
                size = self.bodies.admit(
                    self.settings.max_body_bytes if declared is None else declared
                )
        except RefusedError as refusal:
            await refusal_response(refusal, scope)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.bodies.release(size)

    def _admit(self, scope: Scope, access: Access, headers: "_Headers") -> None:
        scope[LANGUAGE_SCOPE_KEY] = negotiate(headers.get(b"accept-language"))
        if access.key and self.keys and route_path(scope) not in self.open:
            key = headers.get(_API_KEY)
            if key is None:
                raise RefusedError(
                    401,
                    f"this route needs an API key in the {API_KEY_HEADER} header",
                    loc=("header", API_KEY_HEADER),
                    type="api_key_missing",
                    headers={"WWW-Authenticate": API_KEY_HEADER},
                )
            if not self.keys.accepts(key):
                raise RefusedError(
                    403,
                    f"the API key in the {API_KEY_HEADER} header is not one of this service's",
                    loc=("header", API_KEY_HEADER),
                    type="api_key_unknown",
                )
        if access.model:
            bundle = scope["app"].state.bundle
            if bundle is None:
                raise not_ready()
            scope[BUNDLE_SCOPE_KEY] = bundle
        if access.body:
            declared = _length(headers)
            if declared is not None and declared > self.settings.max_body_bytes:
                raise body_too_large(self.settings.max_body_bytes)
            _check_json(headers)


class BodyBudget:
    """Bytes of request bodies being served at once, at most ``limit``: a body costs about
    ten times its size in memory while it is validated and predicted, so concurrent large
    batches are what could outgrow a small VM. Past the limit a request is refused with
    503 and ``Retry-After``, before its body is read. A body without ``Content-Length``
    counts as the largest allowed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def admit(self, size: int) -> int:
        """Reserve ``size`` bytes; ``RefusedError`` (503) when they do not fit."""
        if self.in_flight and self.in_flight + size > self.limit:
            raise RefusedError(
                503,
                f"busy with {self.in_flight} bytes of requests; try again in a moment",
                type="busy",
                headers={"Retry-After": "1"},
                ctx={"in_flight": self.in_flight},
            )
        self.in_flight += size
        return size

    def release(self, size: int) -> None:
        """The request is answered: its bytes are free again."""
        self.in_flight -= size


class _Headers:
    """The first value of each of the few headers the gate reads, in one pass.

    Starlette's ``Headers`` decodes every header on every lookup; on the hot path that
    cost more than the checks themselves (``uv run python -m benchmarks.run``)."""

    WANTED = frozenset(
        {
            b"x-api-key",
            b"content-length",
            b"content-type",
            b"content-encoding",
            b"accept-language",
        }
    )

    def __init__(self, scope: Scope) -> None:
        self._values: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in self.WANTED and name not in self._values:
                self._values[name] = value.decode("latin-1")

    def get(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        return self._values.get(name)


def _length(headers: _Headers) -> int | None:
    """The body's declared length, or None when it is sent without one (chunked)."""
    declared = headers.get(b"content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


def _check_json(headers: _Headers) -> None:
    """A body must be declared as JSON, and sent as it is (not compressed)."""
    media_type = (headers.get(b"content-type") or "").split(";")[0].strip().lower()
    if not (media_type == "application/json" or media_type.endswith("+json")):
        sent = f"Content-Type {media_type}" if media_type else "no Content-Type"
        raise RefusedError(
            415,
            f"send JSON: Content-Type: application/json (this request has {sent})",
            loc=("header", "Content-Type"),
            type="unsupported_media_type",
            ctx={"sent": media_type or None},
        )
    encoding = (headers.get(b"content-encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise RefusedError(
            415,
            f"send the body uncompressed: Content-Encoding {encoding} is not accepted",
            loc=("header", "Content-Encoding"),
            type="unsupported_content_encoding",
            ctx={"encoding": encoding},
        )


def route_path(scope: Scope) -> str:
    """The request's path below the app's mount point (``root_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path

"""Who may call what: the checks a request passes before its body is read.

The dispatcher (``app.api.dispatch``) makes them, in this order, for the route it found:
the API key (401/403), the model loaded (503, with ``Retry-After``), then for a body the
declared size (413), that it is declared as plain JSON (415) and room for it among the
bodies in flight (503).
"""

from starlette.types import Scope

from app.keys import ApiKeys
from app.refusals import RefusedError, body_too_large

API_KEY_HEADER = "X-API-Key"


def check_key(keys: ApiKeys, sent: str | None) -> None:
    """The API key sent (the first ``X-API-Key``) must be one of ``keys``."""
    if sent is None:
        raise RefusedError(
            401,
            f"this route needs an API key in the {API_KEY_HEADER} header",
            loc=("header", API_KEY_HEADER),
            type="api_key_missing",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    if not keys.accepts(sent):
        raise RefusedError(
            403,
            f"the API key in the {API_KEY_HEADER} header is not one of this service's",
            loc=("header", API_KEY_HEADER),
            type="api_key_unknown",
        )


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


class Headers:
    """The first value of each of the few headers a request's checks read, in one pass:
    Starlette's ``Headers`` decodes every header on every lookup, which on the hot path
    cost more than the checks themselves."""

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


def declared_length(headers: Headers, limit: int) -> int | None:
    """The body's declared length, or None when it is sent without one (chunked); a
    declared length over ``limit`` is refused (413)."""
    declared = headers.get(b"content-length")
    if declared is None or not declared.isdigit():
        return None
    length = int(declared)
    if length > limit:
        raise body_too_large(limit)
    return length


def check_json(headers: Headers) -> None:
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

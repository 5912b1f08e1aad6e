"""Every request's record, kept by the outermost middleware: its id, its Prometheus figures
and, with ``log_format=json``, one JSON log line.

The id is the client's ``X-Request-ID`` when it is short and plain (at most 64 of
``A-Z a-z 0-9 . _ -``), so that a caller can follow its own id through our logs; any
other value is replaced, never echoed, and a request without one gets a new one. Every
answer carries it back in ``X-Request-ID``.

The JSON line replaces uvicorn's access log (``app.logs`` turns it off). It holds the
method, the path, the route template, the status, the time to answer, the bytes of the
response body, the request id, the model version and the client's address. Never a
body, nor the query string: the API's own parameters are booleans, but a client can put
anything there. Lines are built with an f-string rather than ``json.dumps`` (only the
values a client chooses are escaped) and written once per event-loop turn, not with one
``logging`` call and one write each: measured with ``uv run python -m
benchmarks.observability``, uvicorn's access log took about a quarter of the throughput of
``/predecir`` at c=32; this log a few per cent.
"""

import asyncio
import json
import random
import re
import sys
import time
from collections.abc import Collection

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.monitoring import CLIENT_CLOSED, METHODS, Instruments, method_label, route_label

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_SCOPE_KEY = "tasador.request_id"
# The bundle a request was served by (the dispatcher's), which a reload may have replaced
# by the time the line is written.
SERVED_BY_SCOPE_KEY = "tasador.served_by"
LOGGER = "tasador.requests"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_ACCEPTED_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
MAX_LOGGED_PATH = 256  # characters of a path a client made up


def request_id(scope: Scope) -> bytes:
    """The client's ``X-Request-ID`` when it is acceptable, else a new random one."""
    for name, value in scope["headers"]:
        if name == _REQUEST_ID:
            if _ACCEPTED_ID.fullmatch(value):
                return bytes(value)
            break
    # 128 random bits from Python's generator, seeded from the system at start and again
    # in every forked worker: as unique as os.urandom's, without a system call per request.
    # Not a secret: a client may send any id it likes.
    return b"%032x" % random.getrandbits(128)


class RequestLog:
    """ASGI middleware: the request id, echoed; each request counted and timed; and, when
    ``lines`` is given, its JSON log line."""

    def __init__(
        self,
        app: ASGIApp,
        instruments: Instruments,
        paths: Collection[str],
        lines: "JsonLines | None" = None,
    ) -> None:
        self.app = app
        self.instruments = instruments
        self.paths = frozenset(paths)
        self.lines = lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = request_id(scope)
        scope[REQUEST_ID_SCOPE_KEY] = rid
        echoed = (_REQUEST_ID, rid)
        status = CLIENT_CLOSED  # when the app returns without answering: the client left
        started = False
        sent = 0

        async def send_recorded(message: Message) -> None:
            nonlocal status, started, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), echoed]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            status = 500
            if not started:
                # Starlette's own answer to an error, which it would send from outside
                # this middleware, without the id; it re-raises, and uvicorn logs it.
                error = PlainTextResponse("Internal Server Error", status_code=500)
                await error(scope, receive, send_recorded)
            raise
        except BaseException:
            status = 500
            raise
        finally:
            seconds = time.perf_counter() - start
            route = route_label(scope, self.paths)
            self.instruments.count(method_label(scope), route, status, seconds)
            if self.lines is not None:
                self.lines.add(scope, route, status, seconds, sent, rid)


class JsonLines:
    """The JSON request log: lines gathered during one turn of the event loop, written to
    standard output (where uvicorn's access log went) in one write at its end."""

    def __init__(self, paths: Collection[str]) -> None:
        self._pending: list[str] = []
        self._quoted = {path: json.dumps(path) for path in paths}
        self._second = -1
        self._second_text = ""
        self._model: tuple[object, str] = (None, "null")
        self._client: tuple[object, str] = (None, "null")

    def add(
        self, scope: Scope, route: str, status: int, seconds: float, sent: int, rid: bytes
    ) -> None:
        """The line of one request answered."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(self._line(scope, route, status, seconds, sent, rid))

    def flush(self) -> None:
        """Write the lines gathered so far."""
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            sys.stdout.write(text)
            sys.stdout.flush()

    def _line(
        self, scope: Scope, route: str, status: int, seconds: float, sent: int, rid: bytes
    ) -> str:
        method = scope["method"]
        if method not in METHODS:  # HTTP's token characters hold no quote, but be sure
            method = json.dumps(method)[1:-1]
        path = self._quoted.get(scope["path"]) or json.dumps(scope["path"][:MAX_LOGGED_PATH])
        level = "error" if status >= 500 else "info"
        return (
            f'{{"time":"{self._now()}","level":"{level}","logger":"{LOGGER}",'
            f'"message":"{method} {path[1:-1]} {status}","method":"{method}","path":{path},'
            f'"route":"{route}","status":{status},"duration_ms":{seconds * 1000:.3f},'
            f'"bytes":{sent},"request_id":"{rid.decode()}","model":{self._version(scope)},'
            f'"client":{self._address(scope)}}}\n'
        )

    def _now(self) -> str:
        """UTC time to the millisecond, ISO 8601 (the second's text is kept)."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((now - second) * 1000):03d}Z"

    def _version(self, scope: Scope) -> str:
        bundle = scope.get(SERVED_BY_SCOPE_KEY) or scope["app"].state.bundle
        if bundle is not self._model[0]:
            self._model = (bundle, json.dumps(bundle.version) if bundle is not None else "null")
        return self._model[1]

    def _address(self, scope: Scope) -> str:
        client = scope.get("client")
        host = client[0] if client else None
        if host != self._client[0]:
            self._client = (host, json.dumps(host))
        return self._client[1]

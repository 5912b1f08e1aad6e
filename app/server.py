"""The HTTP protocol ``tasador serve`` runs uvicorn with: guarded and written in one piece.

Kept as code because no uvicorn setting does it: uvicorn 0.55 has no deadline for a
request's headers or body and no header cap on httptools (``h11_max_incomplete_event_size``
is h11's, answers 400, and leaves slow headers unbounded), so a client trickling one header
byte a second holds a connection forever, and a 64 MiB header block is accepted and blocks
the event loop while it is concatenated (granian's header timeout and buffer limit would
do it, by replacing the server, its workers and their SIGHUP reloads). ``TasadorProtocol``
adds what HAProxy and nginx have:

- the request line and headers must arrive whole within ``header_timeout`` seconds,
  however slowly they trickle (HAProxy's ``timeout http-request``): 408, then close;
- they may not exceed ``max_header_bytes`` bytes or ``max_header_count`` fields: 431;
- a body may not stall for ``body_idle_timeout`` seconds, nor take longer than
  ``body_timeout`` in all: 408 (the application then sees the client as gone);
- after such an answer the server shuts its side and reads what is still coming for a
  moment (a lingering close), so the client reads the answer rather than a reset;
- on SIGTERM, a request in flight is finished (as uvicorn does) and an idle keep-alive
  connection is kept for ``shutdown_grace`` seconds: a request the client had already
  sent on it is answered, with ``Connection: close``, instead of being cut.

It also hands each response to the socket in one write: uvicorn writes a response's
headers and its body separately, and a replica killed between the two leaves its load
balancer holding headers without a body, a half-answer no proxy can retry (the scale-out
test saw it). Everything written during one turn of the event loop goes out together, so
a small answer is sent whole or not at all.

These override uvicorn's internal ``HttpToolsProtocol``; ``pyproject.toml`` bounds
uvicorn to the release they were written against and ``tests/test_server.py`` fails
loudly if the methods they rely on change.
"""

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.config import get_settings

# The uvicorn methods and attributes overridden or used below; the tests check they exist.
UVICORN_HOOKS = (
    "shutdown",
    "connection_made",
    "connection_lost",
    "data_received",
    "eof_received",
    "on_message_begin",
    "on_header",
    "on_headers_complete",
    "on_message_complete",
    "send_400_response",
)


class _CoalescingTransport:
    """Passes everything to ``transport``, but joins the writes of one loop turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HeaderLimitError(Exception):
    """Raised from ``on_header``; httptools turns it into a parser error."""


class TasadorProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with request deadlines, header limits and one write
    per loop turn. The limits are the process's settings (``TASADOR_HEADER_TIMEOUT``...),
    read where uvicorn builds the protocol, in each worker."""

    max_header_count: ClassVar[int] = 100
    body_idle_timeout: ClassVar[float] = 10.0
    linger: ClassVar[float] = 2.0
    # On SIGTERM an idle keep-alive connection stays open this long, so that a request
    # already on its way is answered (with Connection: close) rather than reset.
    shutdown_grace: ClassVar[float] = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.header_timeout
        self.max_header_bytes = settings.max_header_bytes
        self.body_timeout = settings.body_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._discarding = False
        self._in_headers = True  # from the end of a message to its successor's headers
        self._in_body = False
        self._header_bytes = 0
        self._header_count = 0
        self._reject_status: int | None = None
        self._shutting_down = False

    # --- the connection ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._arm_header_timer()  # also covers "connect and send nothing"

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel(header=True, body=True)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding or self.transport.is_closing():
            return
        if self._in_headers:
            self._arm_header_timer()
            # Counted before the parser sees them: httptools keeps a header it has not
            # seen the end of, so counting in on_header would be too late.
            room = self.max_header_bytes - self._header_bytes
            if len(data) > room:
                head, rest = data[: max(room, 0)], data[max(room, 0) :]
                self._header_bytes += len(head)
                super().data_received(head)
                if self.transport.is_closing():
                    return
                if self._in_headers:
                    self._reject(431, "Request header fields too large")
                    return
                self.data_received(rest)
                return
            self._header_bytes += len(data)
        elif self._in_body:
            self._arm_body_timer()
        super().data_received(data)

    def shutdown(self) -> None:
        """Called by uvicorn on SIGTERM: finish the request in flight (uvicorn's own
        behaviour), and give an idle connection a moment for a request already sent."""
        self._shutting_down = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(self.shutdown_grace, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()
        # else a request arrived during the grace: it ends with Connection: close

    def eof_received(self) -> None:
        if self._discarding:
            self.transport.close()
        return

    # --- the parser's callbacks -------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_count = 0
        self._arm_header_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_header_count:
            self._reject_status = 431
            raise _HeaderLimitError(f"more than {self.max_header_count} header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_body = True
        self._cancel(header=True)
        super().on_headers_complete()
        if self._shutting_down and self.cycle is not None:
            self.cycle.keep_alive = False  # answered, then closed
        self._arm_body_timer()
        self._body_deadline = self.loop.call_later(self.body_timeout, self._body_expired, True)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._in_headers = True
        self._header_bytes = 0
        self._cancel(body=True)
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._reject_status is not None:
            self._reject(self._reject_status, "Request header fields too large")
        else:
            super().send_400_response(msg)

    # --- timers -----------------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_expired)

    def _arm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(self.body_idle_timeout, self._body_expired)

    def _cancel(self, header: bool = False, body: bool = False) -> None:
        if header and self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if body and self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if body and self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _header_expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request stalled while an answer is still being written: let
            # that answer finish, then close, reading nothing more.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        self.logger.info(
            "%s: request headers not received within %g s", self.client, self.header_timeout
        )
        if self._header_bytes:
            self._reject(408, "Request Timeout")
        else:
            self.transport.close()

    def _body_expired(self, deadline: bool = False) -> None:
        if self.transport.is_closing() or not self._in_body:
            return
        if self.flow.read_paused and not deadline:
            self._arm_body_timer()  # the application reads slowly, not the client
            return
        self._cancel(body=True)
        why = (
            f"not complete within {self.body_timeout:g} s"
            if deadline
            else f"idle for {self.body_idle_timeout:g} s"
        )
        self.logger.info("%s: request body %s", self.client, why)
        cycle = self.cycle
        started = cycle is not None and cycle.response_started
        if cycle is not None:
            cycle.disconnected = True  # the application's receive() says the client left
            cycle.message_event.set()
        if started:
            self.transport.close()
        else:
            self._reject(408, "Request Timeout")

    def _reject(self, status: int, msg: str) -> None:
        body = msg.encode("ascii")
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        self._cancel(header=True, body=True)
        self.transport.write(b"".join(content))
        # Lingering close: read (and drop) what the client still sends for a moment after
        # the answer and our FIN, so that it reads the answer instead of a reset.
        self._discarding = True
        self.flow.resume_reading()
        self.loop.call_soon(self._half_close)
        self.loop.call_later(self.linger, self.transport.close)

    def _half_close(self) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

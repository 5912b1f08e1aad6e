"""The HTTP protocol ``tasador serve`` runs uvicorn with: each response in one write.

uvicorn writes a response's status line and headers, then its body, as two socket
writes. A replica that dies between the two (a crash, a SIGKILL) leaves the load
balancer holding headers without a body: a half-answer no proxy can retry, and one in
about 2,000 requests failed that way in the scale-out test when a replica was killed
under load. Here everything the server writes during one turn of the event loop goes to
the socket as one write, so a small answer is either sent whole or not at all (and then
retried elsewhere). It also saves a system call per request.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each loop turn's output at once."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

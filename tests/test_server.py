"""The protocol `tasador serve` runs: deadlines, header limits, one write per answer, and
requests in flight answered through a SIGTERM.

These talk raw HTTP to a real `tasador serve` on 127.0.0.1, as a slow or hostile client
would; every socket has a timeout, so each test stops by itself."""

import asyncio
import contextlib
import http.client
import inspect
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.schemas.formulario import FORMULARIO_EJEMPLO
from app.server import UVICORN_HOOKS, _CoalescingTransport
from tests.helpers import (
    ServerFactory,
    raw_socket,
    read_until_closed,
)
from tools.process import TASADOR_SERVE, ServerProcess

HOME = FORMULARIO_EJEMPLO

HEADER_TIMEOUT_S = 1.0


def test_the_uvicorn_hooks_it_extends_are_still_there() -> None:
    # A new uvicorn release that renames or drops one of these must fail here, loudly.
    assert uvicorn.__version__.startswith("0.55."), uvicorn.__version__
    for name in UVICORN_HOOKS:
        assert callable(getattr(HttpToolsProtocol, name, None)), name
    params = inspect.signature(HttpToolsProtocol.__init__).parameters
    assert list(params)[1:5] == ["config", "server_state", "app_state", "_loop"]
    source = inspect.getsource(HttpToolsProtocol)
    for attribute in ("self.cycle", "self.flow", "self.transport", "self.server_state"):
        assert attribute in source, attribute


class _Recorder:
    """A transport that records what reaches the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else None


def test_writes_of_one_loop_turn_reach_the_socket_together() -> None:
    async def scenario() -> _Recorder:
        inner = _Recorder()
        transport = _CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        assert inner.writes == []  # nothing yet: the headers wait for the body
        await asyncio.sleep(0)
        transport.write(b"HTTP/1.1 200 OK\r\n")  # the next response, next turn
        transport.close()  # closing flushes what is pending first
        assert transport.get_extra_info("sockname") == ("127.0.0.1", 8000)
        return inner

    inner = asyncio.run(scenario())

    assert inner.writes == [
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\n",
    ]
    assert inner.closed


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> ServerProcess:
    """`tasador serve` with a short header deadline."""
    return server_factory("--header-timeout", str(HEADER_TIMEOUT_S), TASADOR_LOG_LEVEL="warning")


def _get(server: ServerProcess, path: str = "/health") -> bytes:
    with raw_socket(server.port) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        return read_until_closed(sock)


def test_headers_trickled_past_the_deadline_get_408_and_a_closed_connection(
    server: ServerProcess,
) -> None:
    with raw_socket(server.port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        answer = b""
        for byte in b"host: x\r\nx-slow: " + b"a" * 100:  # one byte every 0.1 s
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            if time.monotonic() - started > HEADER_TIMEOUT_S + 3:
                break
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started

    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert HEADER_TIMEOUT_S * 0.9 <= elapsed <= HEADER_TIMEOUT_S + 3


def test_a_silent_connection_is_closed_after_the_deadline(server: ServerProcess) -> None:
    with raw_socket(server.port) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # closed, with nothing to say

    assert time.monotonic() - started <= HEADER_TIMEOUT_S + 3


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("x-big", "a" * (1024 * 1024))], id="one-MiB-header"),
        pytest.param([(f"x-{i}", "1") for i in range(500)], id="500-headers"),
    ],
)
def test_oversized_headers_get_431(server: ServerProcess, headers: list[tuple[str, str]]) -> None:
    block = "".join(f"{name}: {value}\r\n" for name, value in headers)
    with raw_socket(server.port) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(f"GET /health HTTP/1.1\r\nhost: x\r\n{block}\r\n".encode())
        answer = read_until_closed(sock)

    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert _get(server).startswith(b"HTTP/1.1 200")


def test_a_new_client_is_served_while_400_slow_sockets_are_open(server: ServerProcess) -> None:
    slow = []
    try:
        for _ in range(400):
            sock = raw_socket(server.port)
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n")  # never finished
            slow.append(sock)
        started = time.monotonic()
        answer = _get(server)
        elapsed = time.monotonic() - started
    finally:
        for sock in slow:
            sock.close()

    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
    assert elapsed < HEADER_TIMEOUT_S  # served at once, not after the slow ones expired


def test_keep_alive_requests_sent_before_sigterm_are_answered(tiny_bundle: Path) -> None:
    # Keep-alive clients post in a loop; SIGTERM arrives meanwhile. Every request a client
    # managed to send is answered (the last ones with Connection: close); a client learns
    # to stop from that header, or from a refused new connection, never from a reset.
    env = {"TASADOR_MODEL_DIR": str(tiny_bundle)}
    with ServerProcess(TASADOR_SERVE, env=env) as server:
        outcomes: list[str] = []
        body = json.dumps(HOME).encode()

        def client() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    connection.request(
                        "POST", "/predecir", body=body, headers={"content-type": "application/json"}
                    )
                except OSError:
                    outcomes.append("not sent")  # the server had closed the connection
                    return
                try:
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    outcomes.append("cut")  # sent, then lost: what must not happen
                    return
                outcomes.append("answered")
                if response.getheader("connection", "").lower() == "close":
                    outcomes.append("told to close")
                    return

        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        time.sleep(1.0)
        server.send_signal(signal.SIGTERM)
        for thread in clients:
            thread.join(timeout=30)
        code = server.stop()

    assert outcomes.count("cut") == 0, outcomes[-20:]
    assert outcomes.count("told to close") >= 1
    assert outcomes.count("answered") > 100
    assert code in (0, -signal.SIGTERM)

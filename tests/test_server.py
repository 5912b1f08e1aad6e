"""`tasador serve` writes each response in one socket write, so it is never cut in two."""

import asyncio
from typing import Any

from app.server import _CoalescingTransport


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

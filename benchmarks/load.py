"""Load generation against a local server: wrk when installed, else a bounded asyncio client.

Both send the same POST for a fixed time at a fixed concurrency over keep-alive
connections, and report requests/s, p50/p99 latency and errors.
"""

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {{"requests":%d,"duration_us":%d,"errors":%d,"non_2xx":%d,'
    .. '"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class LoadResult:
    """What one bounded load run measured."""

    tool: str
    concurrency: int
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


def run_load(
    url: str, body: bytes, concurrency: int, seconds: float, timeout_s: float = 30.0
) -> LoadResult:
    """Load ``url`` with POSTs of ``body`` for ``seconds`` at ``concurrency``."""
    if shutil.which("wrk"):
        return _wrk(url, body, concurrency, seconds, timeout_s)
    return asyncio.run(_async_load(url, body, concurrency, seconds, timeout_s))


def _wrk(url: str, body: bytes, concurrency: int, seconds: float, timeout_s: float) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(body=body.decode()))
    try:
        # One wrk thread: the other core is the server's.
        completed = subprocess.run(
            [
                "wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s",
                f"--timeout={timeout_s:.0f}s", "-s", script.name, url,
            ],
            capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=True,
        )  # fmt: skip
    finally:
        Path(script.name).unlink()
    line = next(ln for ln in completed.stdout.splitlines() if ln.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    duration = data["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        concurrency=concurrency,
        seconds=duration,
        requests=data["requests"],
        errors=data["errors"] + data["non_2xx"],
        rps=data["requests"] / duration,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


async def _async_load(
    url: str, body: bytes, concurrency: int, seconds: float, timeout_s: float
) -> LoadResult:
    """A small HTTP/1.1 keep-alive client, used when wrk is not installed."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    request = (
        f"POST /{path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                writer.write(request)
                status = await asyncio.wait_for(_read_response(reader), timeout_s)
                latencies.append(time.perf_counter() - start)
                errors += not 200 <= status < 300
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    lat = np.array(latencies or [float("nan")]) * 1000
    return LoadResult(
        tool="asyncio",
        concurrency=concurrency,
        seconds=elapsed,
        requests=len(latencies),
        errors=errors,
        rps=len(latencies) / elapsed,
        p50_ms=float(np.percentile(lat, 50)),
        p99_ms=float(np.percentile(lat, 99)),
    )


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        (int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length:")),
        0,
    )
    await reader.readexactly(length)
    return status

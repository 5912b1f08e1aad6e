"""CPU time per ``POST /predecir`` in process, whole app against the ceiling:
``uv run python -m benchmarks.asgi``.

Both ASGI apps are called directly (no server, no socket) with the same body, in
alternating rounds; the best round of each is kept. What this leaves out, the HTTP
server's own cost, is the same for both in ``benchmarks.run``, where it narrows the gap.
"""

import asyncio
import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message

from app.bundle.loader import load_bundle
from app.config import EMBEDDED_MODEL_DIR, Settings
from app.main import create_app
from app.schemas.formulario import FORMULARIO_EJEMPLO
from benchmarks.servers.ceiling import app as ceiling

BODY = json.dumps(FORMULARIO_EJEMPLO).encode()
ROUNDS, CALLS = 7, 3000


def _scope() -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": "/predecir", "raw_path": b"/predecir",
        "root_path": "", "query_string": b"", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(BODY)).encode())],
    }  # fmt: skip


async def _receive() -> Message:
    return {"type": "http.request", "body": BODY, "more_body": False}


async def _send(message: Message) -> None:
    if message["type"] == "http.response.start" and message["status"] != 200:
        raise RuntimeError(f"answered {message['status']}")


async def _cpu_us(app: ASGIApp) -> float:
    started = time.process_time()
    for _ in range(CALLS):
        await app(_scope(), _receive, _send)
    return (time.process_time() - started) / CALLS * 1e6


async def _main() -> None:
    tasador = create_app(Settings(), load_bundle(EMBEDDED_MODEL_DIR))
    async with tasador.router.lifespan_context(tasador):
        best = {"ceiling": float("inf"), "tasador": float("inf")}
        for _ in range(ROUNDS):
            for name, app in (("ceiling", ceiling), ("tasador", tasador)):
                best[name] = min(best[name], await _cpu_us(app))
    print(f"CPU per POST /predecir in process (best of {ROUNDS} rounds of {CALLS}):")
    for name, us in best.items():
        print(f"  {name:8} {us:6.1f} µs")
    print(f"  ceiling ÷ tasador: {best['ceiling'] / best['tasador']:.2f}")


def main() -> None:
    """Measure and print."""
    logging.disable(logging.INFO)
    asyncio.run(_main())


if __name__ == "__main__":
    main()

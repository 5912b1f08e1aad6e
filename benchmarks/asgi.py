"""CPU time per ``POST /predecir`` in process, whole app against the ceiling:
``uv run python -m benchmarks.asgi``.

The ASGI apps are called directly (no server, no socket) with the same body, in
alternating rounds; the best round of each is kept. Besides the ceiling and tasador, a
few more are tasador whose handler answers the ceiling's constant after doing one part of
the appraisal (nothing, the forest, the testigos, all of it): what each part adds to the
serving path (middleware, checks, body validation, serialisation), beside what the same
part costs called over and over on its own, where the CPU's caches hold nothing else.
What this leaves out, the HTTP server's own cost, is the same for all in
``benchmarks.run``, where it narrows the ratios.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from unittest import mock

from starlette.types import ASGIApp, Message

from app.api.routes import ROUTES
from app.bundle.loader import Bundle, load_bundle
from app.config import EMBEDDED_MODEL_DIR, Settings
from app.i18n import DEFAULT
from app.main import create_app
from app.schemas import Formulario, Prediccion
from app.schemas.formulario import FORMULARIO_EJEMPLO
from app.service.appraisal import _testigos, appraise
from benchmarks.servers.ceiling import CONSTANT
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


def _answering(bundle: Bundle, part: Callable[[Formulario], object]) -> ASGIApp:
    """tasador whose ``POST /predecir`` does ``part`` of the appraisal with the validated
    body, then answers the ceiling's constant."""

    def handler(_: object, formulario: Formulario, __: object) -> Prediccion:
        part(formulario)
        return CONSTANT

    routes = [
        replace(route, handler=handler) if route.path == "/predecir" else route for route in ROUTES
    ]
    app = create_app(Settings(), bundle)
    with mock.patch("app.api.dispatch.ROUTES", routes):
        app.middleware_stack = app.build_middleware_stack()  # where the routes are read
    return app


def _parts(bundle: Bundle) -> dict[str, Callable[[Formulario], object]]:
    """Parts of one appraisal, each done before the constant answer."""
    return {
        "nothing (its serving path)": lambda _: None,
        "the forest": lambda home: bundle.engine.predict(bundle.features.matrix([home])),
        "the testigos": lambda home: _testigos(bundle, home, DEFAULT),
        "the whole appraisal": lambda home: appraise(bundle, home),
    }


def _alone_us(part: Callable[[Formulario], object]) -> float:
    """CPU per call of ``part`` called over and over on its own, outside the app."""
    home = Formulario.model_validate_json(BODY)
    started = time.process_time()
    for _ in range(CALLS):
        part(home)
    return (time.process_time() - started) / CALLS * 1e6


async def _main() -> None:
    bundle = load_bundle(EMBEDDED_MODEL_DIR)
    tasador = create_app(Settings(), bundle)
    parts = _parts(bundle)
    apps: dict[str, ASGIApp] = {"ceiling (FastAPI, constant answer)": ceiling}
    apps |= {
        f"tasador: {name}, constant answer": _answering(bundle, p) for name, p in parts.items()
    }
    apps["tasador"] = tasador
    async with tasador.router.lifespan_context(tasador):
        best = dict.fromkeys(apps, float("inf"))
        alone = dict.fromkeys(parts, float("inf"))
        for _ in range(ROUNDS):
            for name, app in apps.items():
                best[name] = min(best[name], await _cpu_us(app))
            for name, part in parts.items():
                alone[name] = min(alone[name], _alone_us(part))
    path = best["tasador: nothing (its serving path), constant answer"]
    print(f"CPU per POST /predecir in process, µs (best of {ROUNDS} rounds of {CALLS}):")
    for name, us in best.items():
        print(f"  {name:55} {us:6.1f}")
    print("What each part adds to tasador's serving path, and what it costs on its own:")
    for name in list(parts)[1:]:
        added = best[f"tasador: {name}, constant answer"] - path
        print(
            f"  {name:20} adds {added:6.1f}, alone {alone[name]:6.1f} ({added / alone[name]:.1f}x)"
        )
    print(
        f"  ceiling ÷ tasador: {best['ceiling (FastAPI, constant answer)'] / best['tasador']:.2f}"
    )


def main() -> None:
    """Measure and print."""
    logging.disable(logging.INFO)
    asyncio.run(_main())


if __name__ == "__main__":
    main()

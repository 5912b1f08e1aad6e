"""A stand-in for the tasador API in front of a real one, for the front end's tests: every
request goes through to the real API, and the answers of ``/predecir`` that do not yet
carry ``testigos`` and ``confianza`` get made-up ones (six homes around the one appraised),
so the front end's rendering of them can be tested against any API.

The front end is pointed at it as at any API (``TASADOR_API_URL``); it listens on
127.0.0.1 on a free port, in a thread of the test's process.
"""

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONDITIONS = ("Reformado", "En buen estado", "A reformar", "A estrenar", "Reformado", "Reformado")


def made_up_testigos(answer: dict[str, Any], latitud: float, longitud: float) -> dict[str, Any]:
    """Six comparable homes around (``latitud``, ``longitud``), priced near ``answer``'s
    €/m², and their median €/m²: the shape the API gives (issue 19)."""
    per_m2 = float(answer.get("precio_m2") or 4_000.0)
    homes = []
    for i in range(6):
        size = 80.0 + 12 * i
        price_m2 = round(per_m2 * (0.9 + 0.04 * i))
        homes.append(
            {
                "distancia_m": 120.0 + 95 * i,
                "latitud": round(latitud + 0.001 * (i - 2.5), 5),
                "longitud": round(longitud + 0.0012 * (-1) ** i, 5),
                "superficie_construida": size,
                "habitaciones": 2 + i % 3,
                "condicion": CONDITIONS[i],
                "precio": round(size * price_m2, -3),
                "precio_m2": float(price_m2),
            }
        )
    prices = sorted(h["precio_m2"] for h in homes)
    return {"viviendas": homes, "mediana_precio_m2": (prices[2] + prices[3]) / 2, "aviso": None}


class _Proxy(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        self._forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _forward(self, body: bytes | None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        request = urllib.request.Request(
            self.target + self.path, data=body, headers=headers, method=self.command
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, data = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        if status == 200 and self.path.startswith("/predecir") and "/lote" not in self.path:
            data = self._augmented(json.loads(body or b"{}"), json.loads(data))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def _augmented(sent: dict[str, Any], answer: dict[str, Any]) -> bytes:
        answer.setdefault("confianza", "media")
        if "testigos" not in answer:
            answer["testigos"] = made_up_testigos(answer, sent["latitud"], sent["longitud"])
        return json.dumps(answer).encode()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests' output is theirs."""


@contextmanager
def api_stub(target: str) -> Iterator[str]:
    """The URL of a stand-in for the API at ``target``, serving until the block ends."""
    handler = type("Proxy", (_Proxy,), {"target": target.rstrip("/")})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

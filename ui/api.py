"""The tasador API as the front end calls it: JSON in, JSON out, errors by field.

Standard library only (``urllib``), so the front end adds no HTTP client of its own. Every
body is JSON with ``Content-Type: application/json`` (a form-encoded post is refused with
415), and messages are asked for in Spanish (``Accept-Language: es``).
"""

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "TASADOR_API_URL"
TIMEOUT_S = 30.0


def default_url() -> str:
    """The API's address: ``TASADOR_API_URL``, else the local default."""
    return os.environ.get(URL_VARIABLE, DEFAULT_URL).rstrip("/")


@dataclass
class ApiError(Exception):
    """The API refused the request (4xx/5xx) or could not be reached (status 0)."""

    status: int
    message: str
    detail: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}" if self.status else self.message

    def by_field(self, prefix: Sequence[str | int] = ("body",)) -> dict[str, list[str]]:
        """The messages naming a field, by field, for the errors whose ``loc`` starts
        with ``prefix`` (``("body", "formularios", 2)`` for one row of a batch)."""
        found: dict[str, list[str]] = {}
        n = len(prefix)
        for error in self.detail:
            loc = list(error.get("loc", []))
            if loc[:n] == list(prefix) and len(loc) > n:
                found.setdefault(str(loc[n]), []).append(str(error.get("msg", "")))
        return found

    def by_row(self) -> dict[int, dict[str, list[str]]]:
        """For a batch: row index → field → messages."""
        rows: dict[int, dict[str, list[str]]] = {}
        for error in self.detail:
            loc = list(error.get("loc", []))
            if len(loc) >= 4 and loc[:2] == ["body", "formularios"] and isinstance(loc[2], int):
                rows.setdefault(loc[2], {}).setdefault(str(loc[3]), []).append(
                    str(error.get("msg", ""))
                )
        return rows


class Tasador:
    """A client of one tasador API."""

    def __init__(self, url: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.timeout = timeout

    def predecir(self, formulario: dict[str, Any], explicar: bool = True) -> dict[str, Any]:
        """The appraisal of one home (with the explanation, when the API gives one)."""
        query = "?explicar=true" if explicar else ""
        answer: dict[str, Any] = self._call("POST", f"/predecir{query}", formulario)
        return answer

    def lote_detalle(self, formularios: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The full appraisal of each home (price, range, warnings...), in order."""
        answer = self._call("POST", "/predecir/lote?detalle=true", {"formularios": formularios})
        return [dict(r) for r in answer["resultados"]]

    def modelo(self) -> dict[str, Any]:
        """The manifest of the model being served."""
        answer: dict[str, Any] = self._call("GET", "/modelo")
        return answer

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "Accept-Language": "es"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise _api_error(exc) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"No se puede conectar con {self.url}: {reason}") from None


def _api_error(exc: urllib.error.HTTPError) -> ApiError:
    raw = exc.read()
    try:
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        messages = "; ".join(str(d.get("msg", "")) for d in detail if isinstance(d, dict))
        return ApiError(exc.code, messages, [d for d in detail if isinstance(d, dict)])
    text = detail if isinstance(detail, str) else raw.decode(errors="replace")[:300]
    return ApiError(exc.code, text or exc.reason)

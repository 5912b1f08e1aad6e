"""Helpers shared by the tests: tiny bundles, clients, sample homes, an independent
scikit-learn oracle, and small HTTP utilities. Tests import these from here, never from
one another or from ``conftest.py``."""

import http.client
import json
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.bundle import MANIFEST_FILE, SIGNATURE_FILE
from app.bundle.artefacts import sha256_file
from app.bundle.signing import load_signer, new_key_pair
from app.config import Settings
from app.features import FIELDS, LOCATION, location_columns
from app.keys import digest
from app.main import create_app
from app.schemas.formulario import FORMULARIO_EJEMPLO
from app.training.pipeline import TrainingConfig, train
from app.training.synthetic import generate
from tools.process import ServerProcess

TINY = TrainingConfig(seed=7, n_estimators=6, n_jobs=1, search=None, folds=0)
# The ``client_factory`` fixture: settings in, a client of an app built with them out.
ClientFactory = Callable[..., AbstractContextManager[TestClient]]
# uvicorn itself, given an app (``{port}``: see tools.process.ServerProcess).
UVICORN = [sys.executable, "-m", "uvicorn", "--port", "{port}"]
# The ``server_factory`` fixture: serve flags and TASADOR_* variables in, a running server out.
ServerFactory = Callable[..., ServerProcess]


def train_quietly(out: Path, config: TrainingConfig = TINY, rows: int = 400) -> Path:
    """Train a small forest on synthetic rows into ``out``, with no terminal output."""
    train(generate(rows, config.seed), out, config, say=lambda _: None, progress=False)
    return out


def make_key(folder: Path, name: str = "firma") -> tuple[Path, str]:
    """A new signing key in ``folder``: its private key file, and its public key as
    ``TASADOR_TRUSTED_KEYS`` takes it (base64)."""
    return folder / name, new_key_pair(folder / name).text


def sign(bundle: Path, key: Path) -> Path:
    """Sign ``bundle``'s manifest with the private key file ``key``, as ``tasador train
    --firmar`` does."""
    signature = load_signer(key).sign((bundle / MANIFEST_FILE).read_bytes())
    (bundle / SIGNATURE_FILE).write_bytes(signature)
    return bundle


def list_artefact(bundle: Path, name: str, digest: str) -> None:
    """Make ``bundle``'s manifest list the artefact ``name`` with ``digest``, as a hostile
    registry serving unsigned bundles could."""
    path = bundle / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["artefacts"][name] = digest
    path.write_text(json.dumps(manifest))


def rehash(bundle: Path, name: str) -> None:
    """``list_artefact`` with the SHA-256 of the artefact's bytes as they are now."""
    list_artefact(bundle, name, sha256_file(bundle / name))


def make_client(model_dir: Path, **settings: Any) -> TestClient:
    """A client for an app serving ``model_dir``; use it as a context manager."""
    return TestClient(create_app(Settings(model_dir=model_dir, **settings)))


def sklearn_prices(bundle_dir: Path, rows: list[dict[str, Any]]) -> np.ndarray:
    """What the bundle's scikit-learn model predicts for ``rows``, built independently of
    the service: a DataFrame by column name, in the manifest's order, unknown fields as
    NaN, the location's columns beside the coordinates, prices from log prices."""
    import pandas as pd

    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    encodings = joblib.load(bundle_dir / "encodings.pkl")
    model = joblib.load(bundle_dir / "model.pkl")
    frame = pd.DataFrame(
        [{("baños" if k == "banos" else k): v for k, v in r.items()} for r in rows]
    ).reindex(columns=[f.name for f in FIELDS])
    for name, codes in encodings.items():
        frame[name] = frame[name].map(codes)
    located = location_columns(frame["latitud"].to_numpy(float), frame["longitud"].to_numpy(float))
    for j, feature in enumerate(LOCATION):
        frame[feature.name] = located[:, j]
    raw = model.predict(frame[manifest["features"]].astype(float).to_numpy())
    prices: np.ndarray = np.exp(raw) if manifest.get("target_scale") == "log" else raw
    return prices


def first_error(response: Any) -> dict[str, Any]:
    """The first problem of a 4xx answer, after checking the answer has the error shape."""
    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    first: dict[str, Any] = detail[0]
    return first


def sample_homes(n: int) -> list[dict[str, Any]]:
    """``n`` valid, varied homes as a client would send them (the same for a given n)."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        built = float(rng.integers(40, 250))
        rows.append(
            {
                "latitud": float(rng.uniform(40.35, 40.5)),
                "longitud": float(rng.uniform(-3.8, -3.58)),
                "superficie_construida": built,
                "baños": int(rng.integers(1, 4)),
                "habitaciones": int(rng.integers(0, 6)),
                "jardin": bool(i % 3 == 0),
                "antiguedad": int(rng.integers(0, 120)),
                "superficie_util": round(built * 0.85, 1),
                "ascensor": bool(i % 2),
                "garaje": bool(i % 5 == 0),
                "condicion": ["A reformar", "Reformado", "A estrenar", "En buen estado"][i % 4],
            }
        )
    return rows


def post_json(url: str, body: dict[str, Any]) -> Any:
    """POST a JSON body and decode the JSON answer."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def raw_socket(port: int, timeout: float = 10) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port`` to write HTTP by hand, as a slow, partial or
    hostile client would; every send and receive gives up after ``timeout`` seconds."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_until_closed(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection; a reset, or silence past the
    socket's timeout, ends it too (the caller asserts on what arrived)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def guarded_server(server_factory: ServerFactory, key: str) -> ServerProcess:
    """`tasador serve` asking for API key ``key`` and taking 8 MiB of bodies at once: the
    server the hardening review attacked."""
    return server_factory(
        TASADOR_API_KEYS=digest(key), TASADOR_MAX_BODIES_IN_FLIGHT_BYTES=str(8 * 1024 * 1024)
    )


def http_request(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request to a live server on a connection of its own: the status, the headers
    (lower-case names) and the body, as sent (no redirect followed, nothing retried)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def post_raw(
    server: ServerProcess, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    """POST the bytes ``body`` as JSON (``headers`` added, or replacing the content type);
    the status and the decoded answer."""
    sent = {"content-type": "application/json", **headers}
    status, _, answer = http_request(server, "POST", path, body, sent)
    return status, json.loads(answer)


def assert_still_serving(server: ServerProcess, headers: dict[str, str]) -> None:
    """The server still appraises a home (sent with ``headers``) and answers /health."""
    status, answer = post_raw(server, "/predecir", json.dumps(FORMULARIO_EJEMPLO).encode(), headers)
    assert status == 200, answer
    assert http_request(server, "GET", "/health")[0] == 200


def answers_across_a_swap(
    url: str, swap: Callable[[], str], within_s: float = 60
) -> list[tuple[int, str]]:
    """What four clients posting predictions to ``url`` got, in order, while ``swap()``
    changed the model (it returns the version to expect after it): from 50 answers before
    until 100 after the new version first answered. Bounded: ``within_s`` seconds after
    the first answer, and 20,000 requests."""
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + within_s + 30
        while not stop.is_set() and time.monotonic() < deadline and len(answers) < 20_000:
            answers.append(model_answering(url))

    clients = [threading.Thread(target=load) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        deadline = time.monotonic() + within_s
        while len(answers) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        new = swap()
        while time.monotonic() < deadline and not any(v == new for _, v in answers[-20:]):
            time.sleep(0.05)
        seen = len(answers)
        while len(answers) < seen + 100 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
    return answers


def model_answering(url: str) -> tuple[int, str]:
    """The model version that answers one prediction (200, version), or a failure a test
    counts (0, why): what a client sees while the model is swapped under it."""
    try:
        return 200, post_json(url, FORMULARIO_EJEMPLO)["modelo"]
    except (urllib.error.URLError, OSError) as exc:
        return 0, repr(exc)


@dataclass
class Stage:
    """One FROM base AS name section of the Dockerfile."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        """The arguments of every instruction with this keyword, in order."""
        return [rest for kw, rest in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]  # --platform=...
            named = "AS" in (p.upper() for p in parts)
            stages.append(Stage(parts[-1] if named else parts[0], base=parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def compose_services(text: str) -> dict[str, str]:
    """The services of a compose file: name → the lines of its block (no YAML parser among
    the dependencies; the file keeps services two spaces in, under ``services:``)."""
    services = text.split("\nservices:\n", 1)[1]
    services = re.split(r"(?m)^[^\s#]", services, maxsplit=1)[0]  # up to the next top-level key
    names = list(re.finditer(r"(?m)^  ([\w-]+):$", services))
    ends = [m.start() for m in names[1:]] + [len(services)]
    return {m.group(1): services[m.end() : end] for m, end in zip(names, ends, strict=True)}


def require(module: str, install: str) -> Any:
    """``module``, imported; when it is missing the test fails (never skips) saying how to
    install it: a selected marker whose tools are absent must not pass unseen."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        pytest.fail(f"{module} is not installed ({exc}); install it with: {install}")


def require_program(name: str, install: str) -> str:
    """The path of program ``name``; the test fails saying how to install it if absent."""
    import shutil

    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not on PATH; install it with: {install}")
    return found


def detailed_answers(client: TestClient, homes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``/predecir/lote?detalle=true``'s answer for ``homes``, one flat row each as the
    MLflow model answers: prices, interval bounds, €/m², warning messages, unknown fields."""
    response = client.post("/predecir/lote?detalle=true", json={"formularios": homes})
    assert response.status_code == 200, response.text
    return [
        {
            "precio": r["precio"],
            "intervalo_inferior": r["intervalo"]["inferior"],
            "intervalo_superior": r["intervalo"]["superior"],
            "precio_m2": r["precio_m2"],
            "advertencias": [w["mensaje"] for w in r["advertencias"]],
            "desconocidos": r["desconocidos"],
        }
        for r in response.json()["resultados"]
    ]

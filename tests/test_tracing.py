"""OpenTelemetry tracing: off unless asked for; when on, a server span per request with
validation, features and the engine inside it."""

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from app.cli import main
from app.config import Settings
from app.main import create_app
from app.schemas.formulario import FORMULARIO_EJEMPLO
from app.tracing import wanted

HOME = FORMULARIO_EJEMPLO
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
BODIES = [
    pytest.param("/predecir", HOME, id="predecir"),
    pytest.param("/predecir/lote", {"formularios": [HOME, HOME]}, id="lote"),
    pytest.param(
        "/evaluar",
        {"muestras": [{**HOME, "precio": 400_000.0}, {**HOME, "precio": 500_000.0}]},
        id="evaluar",
    ),
]


def _traced(tiny_bundle: Path, path: str, body: object) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    app = create_app(Settings(model_dir=tiny_bundle), span_exporter=exporter)
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "X-Request-ID": "t-1"}
    with TestClient(app) as client:
        assert client.post(path, json=body, headers=headers).status_code == 200
    # The app's shutdown has sent every span.
    return list(exporter.get_finished_spans())


@pytest.mark.parametrize(("path", "body"), BODIES)
def test_a_request_is_traced_through_validation_features_and_engine(
    tiny_bundle: Path, path: str, body: object
) -> None:
    spans = _traced(tiny_bundle, path, body)
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    inside = sorted(
        (s for s in spans if s.parent and s.parent.span_id == server.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    attributes: Mapping[str, object] = server.attributes or {}

    assert server.name == f"POST {path}"
    assert attributes["http.route"] == path
    assert attributes["http.response.status_code"] == 200
    assert attributes["tasador.request_id"] == "t-1"
    assert attributes["tasador.engine"] == "onnxruntime"
    # The caller's trace goes on (W3C traceparent).
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == PARENT_ID
    assert [s.name for s in inside] == ["tasador.validation", "tasador.features", "tasador.engine"]
    assert {s.resource.attributes["service.name"] for s in spans} == {"tasador"}


@pytest.mark.parametrize(
    ("setting", "environ", "on"),
    [
        pytest.param("auto", {}, False, id="default-off"),
        pytest.param("auto", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}, True,
                     id="endpoint"),
        pytest.param(
            "auto", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://otel:4318/v1/traces"}, True,
            id="traces-endpoint",
        ),
        pytest.param("false", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}, False, id="off"),
        pytest.param("TRUE", {}, True, id="on"),
        pytest.param("on", {"OTEL_SDK_DISABLED": "true"}, False, id="sdk-disabled"),
    ],
)  # fmt: skip
def test_tracing_is_on_when_asked_for(setting: str, environ: dict[str, str], on: bool) -> None:
    assert wanted(Settings(tracing=setting).tracing, environ) is on


def test_tracing_off_imports_no_sdk(tiny_bundle: Path) -> None:
    script = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from app.main import create_app\n"
        "with TestClient(create_app()) as client:\n"
        "    assert client.post('/predecir', json=HOME).status_code == 200\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    env = {"TASADOR_MODEL_DIR": str(tiny_bundle), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", f"HOME = {HOME!r}\n{script}"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip

    assert done.stdout.strip() == "[]"


def test_tracing_without_the_extra_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("app.tracing.sdk_installed", lambda: False)

    with pytest.raises(ValidationError, match="tracing extra"):
        Settings(tracing="on")
    assert main(["serve", "--tracing", "on"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "--tracing" in line
    assert "uv sync --extra tracing" in line

"""Settings come from TASADOR_* variables, and from the platform's PORT/WEB_CONCURRENCY."""

import os
from pathlib import Path

import pytest

from app.config import EMBEDDED_MODEL_DIR, Settings


def test_defaults_serve_the_embedded_model_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "WEB_CONCURRENCY", "TASADOR_PORT", "TASADOR_WORKERS", "TASADOR_HOST"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.model_dir == EMBEDDED_MODEL_DIR


def test_platform_port_and_concurrency_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASADOR_PORT", raising=False)
    monkeypatch.delenv("TASADOR_WORKERS", raising=False)
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")

    assert (Settings().port, Settings().workers) == (9000, 3)

    monkeypatch.setenv("TASADOR_PORT", "9100")
    assert Settings().port == 9100


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASADOR_PORT", "99999")

    with pytest.raises(ValueError, match="less than or equal to 65535"):
        Settings()


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")

    assert Settings(workers=2, port=5).workers == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--workers", "0"], "invalid setting --workers", id="workers"),
        pytest.param(["--port", "70000"], "invalid setting --port", id="port"),
    ],
)
@pytest.mark.usefixtures("english")
def test_serve_refuses_bad_flags_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal in English, whatever the machine's locale."""
    for variable in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        pytest.param("TASADOR_PORT", "abc", "TASADOR_PORT", id="port"),
        pytest.param("PORT", "abc", "PORT", id="platform-port"),
        pytest.param("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY", id="platform-workers"),
        pytest.param("TASADOR_API_KEYS", "[]", "TASADOR_API_KEYS", id="no-keys"),
        pytest.param("TASADOR_LOG_LEVEL", "loud", "TASADOR_LOG_LEVEL", id="log-level"),
    ],
)
@pytest.mark.usefixtures("english")
def test_a_bad_variable_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    named: str,
) -> None:
    from app.cli import main

    monkeypatch.setenv(variable, value)

    assert main(["serve"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"tasador: invalid setting {named}: ")


def test_case_is_forgiven(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASADOR_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("TASADOR_ENGINE", "ONNXRuntime")

    assert (Settings().log_level, Settings().engine) == ("debug", "onnxruntime")


def test_refusals_in_spanish_on_a_spanish_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from app.cli import main

    monkeypatch.setenv("LANG", "es_ES.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)

    assert main(["serve", "--workers", "0"]) == 2
    assert main(["serve", "--model-dir", str(tmp_path / "nada")]) == 2
    settings, start = capsys.readouterr().err.strip().splitlines()
    assert settings == "tasador: ajuste no válido --workers: Debe ser mayor o igual que 1"
    assert start.startswith("tasador: no puede arrancar: ")


def test_uvicorn_factory_reports_a_bad_variable_in_one_line() -> None:
    import subprocess
    import sys

    env = {**os.environ, "TASADOR_PORT": "abc", "LANG": "C.UTF-8"}
    run = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "tasador: invalid setting TASADOR_PORT: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "tasador 0.2.0"


def test_no_command_lists_the_commands_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    assert main([]) == 2
    captured = capsys.readouterr()
    assert "{serve,train,claves,predecir}" in captured.out
    assert captured.err.strip() == "tasador: choose a command, e.g. tasador serve"


def test_docs_configuration_table_names_every_setting_and_its_flag() -> None:
    page = Path(__file__).parent.parent / "docs" / "operations" / "configuration.md"
    table = page.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| `")}

    for name in Settings.model_fields:
        variable, flag = f"TASADOR_{name.upper()}", "--" + name.replace("_", "-")
        row = next((line for line in table.splitlines() if f"| `{variable}`" in line), None)
        assert row is not None, f"{variable} is missing from the docs' configuration table"
        assert f"`{flag}`" in row, f"{variable}'s row does not name {flag}"
    assert len(rows) == len(Settings.model_fields) + 1  # and PROMETHEUS_MULTIPROC_DIR


def test_serve_help_shows_what_to_type_not_pydantic_internals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli import main

    assert main(["serve", "--help"]) == 0
    shown = capsys.readouterr().out

    assert "--api-keys A,B,..." in shown
    assert "--port N" in shown
    for internal in ("{str,null}", "tuple[", "default factory", "<lambda>"):
        assert internal not in shown

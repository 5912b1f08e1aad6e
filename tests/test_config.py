"""Settings come from TASADOR_* variables, and from the platform's PORT/WEB_CONCURRENCY."""

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
def test_serve_refuses_bad_flags_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]

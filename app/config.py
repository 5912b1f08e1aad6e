"""Service configuration: one pydantic-settings class, read from ``TASADOR_*`` variables.

The same class is the ``tasador serve`` command line (``app.cli``): every setting is also
a flag (``--max-batch-rows``), and a flag overrides its variable.
"""

import json
import os
import re
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from app import tracing
from app.bundle.signing import public_key
from app.engines import EngineChoice
from app.i18n import from_environment, message, problem_message

# The bundle that ships with the repository, beside the ``app`` package.
EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"
ENV_PREFIX = "TASADOR_"
# What --model-uri takes: a registered model by alias or version, or a run's folder.
MODEL_URI_PATTERN = r"models:/[^/@]+(@[^/]+|/[0-9]+)|runs:/[0-9a-zA-Z]+/.+"


def default_cache_dir() -> Path:
    """tasador's cache folder: $XDG_CACHE_HOME/tasador, else ~/.cache/tasador (in the
    temporary folder for a user with no home, as a container's numeric user may be)."""
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "tasador"
    try:
        return Path.home() / ".cache" / "tasador"
    except (RuntimeError, KeyError):
        return Path(tempfile.gettempdir()) / "tasador-cache"


DIGEST_PREFIX = "sha256:"


class Settings(BaseSettings):
    """Everything an operator can tune; defaults serve the embedded model with no set-up."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    model_dir: Path = Field(
        default=EMBEDDED_MODEL_DIR, description="Folder holding the model bundle."
    )
    model_uri: str | None = Field(
        default=None,
        description="MLflow URI of the bundle (models:/NAME@ALIAS, models:/NAME/VERSION or "
        "runs:/RUN_ID/PATH); when set, it is served instead of model_dir. The tracking "
        "server is MLFLOW_TRACKING_URI's.",
    )
    model_cache: Path = Field(
        default_factory=lambda: default_cache_dir() / "models",
        description="Folder where bundles fetched from MLflow are kept.",
    )
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    # Also read from PORT and WEB_CONCURRENCY (PlatformVariables), below TASADOR_*.
    port: int = Field(default=8000, ge=1, le=65535, description="Port to listen on.")
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes.")
    max_batch_rows: int = Field(
        default=10_000, ge=1, description="Most rows one /predecir/lote or /evaluar call takes."
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    # Two of the largest bodies: heavy work is served one request at a time anyway, and
    # each admitted body waits in memory and delays /health (docs: Reliability).
    max_bodies_in_flight_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Request bodies served at once, in bytes; past it 503 with Retry-After.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=30,
        description="Seconds a client has to send a request's line and headers, in all.",
    )
    max_header_bytes: int = Field(
        default=32 * 1024, ge=1024, le=1024 * 1024, description="Largest header block (431)."
    )
    body_timeout: float = Field(
        default=60.0, gt=0, le=600, description="Seconds a client has to send a whole body."
    )
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validate_default=False,  # none configured is fine; configured and empty is not
        description="When set, the routes that need a key accept one of these in the X-API-Key "
        "header: 'sha256:<hex digest>' entries (python -m app.keys KEY prints one), or plain "
        "keys (accepted with a warning). A JSON list or a comma-separated list.",
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Origins a browser front end may call from (e.g. "
        "'https://tasador.example'; '*' for any). None by default: no CORS headers.",
    )
    open_routes: Annotated[tuple[Literal["/modelo", "/metrics"], ...], NoDecode] = Field(
        default=(),
        description="Routes that stay open when keys are set (by default /modelo and "
        "/metrics need a key too; /health, /ready and the docs are always open).",
    )
    trusted_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validate_default=False,  # none configured is fine; configured and empty is not
        description="When set, a bundle is served (at start-up and on reload) only when one "
        "of these Ed25519 public keys signed its manifest: each the base64 of the raw key "
        "(tasador claves prints it) or the path of a PEM public key file. A JSON list or a "
        "comma-separated list.",
    )
    reload_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds a reload (SIGHUP) may take to read, verify and warm the bundle "
        "(an MLflow one downloaded too) before it is refused and the old model kept.",
    )
    engine: EngineChoice = Field(
        default="auto",
        description="auto: the first registered engine that reproduces scikit-learn's "
        "training-time answers (the compiled ONNX forest first); or one engine by name.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Log level; warning also silences the request log."
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: uvicorn's lines, for a terminal, with no line per request; json: "
        "one JSON object per line, and one line per request (method, path, status, duration, "
        "bytes, request id, model).",
    )
    tracing: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="OpenTelemetry traces over OTLP/HTTP (the tracing extra); auto: on when "
        "OTEL_EXPORTER_OTLP_ENDPOINT is set. true and false mean on and off.",
    )

    @field_validator("log_level", "engine", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        """DEBUG, Debug and debug are the same level (and engine names likewise)."""
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("model_uri")
    @classmethod
    def _mlflow_uri(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(MODEL_URI_PATTERN, value):
            raise ValueError(
                "expected models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/PATH"
            )
        return value

    @field_validator("api_keys", "open_routes", "cors_origins", "trusted_keys", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        """A JSON list, or the comma-separated list an environment variable is easier as."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",")]
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _some_keys(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)
        if isinstance(value, list | tuple) and not value:
            raise ValueError("the list of keys is empty: unset it to serve without keys")
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if any(not key.strip() for key in keys):
            raise ValueError("an API key is empty: remove it, or unset the keys to serve openly")
        for key in keys:
            if key.startswith(DIGEST_PREFIX):
                digest = key.removeprefix(DIGEST_PREFIX)
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                    raise ValueError(f"{key[:20]}… is not sha256: and 64 hexadecimal digits")
        return keys

    @field_validator("trusted_keys")
    @classmethod
    def _trusted_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if not keys:
            raise ValueError("the list of keys is empty: unset it to serve unsigned bundles")
        if any(not key.strip() for key in keys):
            raise ValueError("a trusted key is empty: remove it, or unset the list")
        for key in keys:
            public_key(key)  # a key that cannot be read is refused at start, in one line
        return keys

    @field_validator("tracing", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        """true/false (any case), as a boolean variable is usually written: on/off."""
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str):
            text = value.strip().lower()
            return {"true": "on", "1": "on", "false": "off", "0": "off"}.get(text, text)
        return value

    @field_validator("tracing")
    @classmethod
    def _tracing(cls, value: str) -> str:
        if value == "on" and not tracing.sdk_installed():
            raise ValueError(tracing.EXTRA_MISSING)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no secret files
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags and arguments, then TASADOR_* variables, then the platform's."""
        return (init_settings, env_settings, PlatformVariables(settings_cls))


class PlatformVariables(PydanticBaseSettingsSource):
    """``PORT`` and ``WEB_CONCURRENCY``, which container platforms (fly.io among them) set."""

    NAMES: ClassVar[dict[str, str]] = {"port": "PORT", "workers": "WEB_CONCURRENCY"}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002  # noqa: ARG002
        """The platform variable standing for ``field_name``, if it is set."""
        variable = self.NAMES.get(field_name)
        return (os.environ.get(variable) if variable else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values


class SettingsProblemError(ValueError):
    """A setting cannot be used; the message is one line naming the variable."""


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment; a bad value is one
    ``SettingsProblemError`` line naming its variable (this is what ``uvicorn --factory
    app.main:create_app`` reads; ``tasador serve`` names flags too)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsProblemError(describe(exc)) from None


def describe(exc: ValidationError, flags: Sequence[str] = ()) -> str:
    """The first problem of ``exc`` in one line, named after the flag (among ``flags``,
    the command line) or the variable the value came from."""
    first = exc.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    field = next((part for part in reversed(loc) if part in Settings.model_fields), loc[-1])
    flag = "--" + field.replace("_", "-")
    if any(arg == flag or arg.startswith(flag + "=") for arg in flags):
        name = flag
    else:
        candidates = [ENV_PREFIX + field.upper(), PlatformVariables.NAMES.get(field, "")]
        name = next((v for v in candidates if v and v in os.environ), flag)
    language = from_environment()
    problem = problem_message(dict(first), language)
    return message("invalid_setting", language, name=name, msg=problem)

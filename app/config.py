"""Service configuration: one pydantic-settings class, read from ``TASADOR_*`` variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The bundle that ships with the repository, beside the ``app`` package.
EMBEDDED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    """Everything an operator can tune; defaults serve the embedded model with no set-up."""

    model_config = SettingsConfigDict(env_prefix="TASADOR_", extra="ignore", populate_by_name=True)

    model_dir: Path = Field(
        default=EMBEDDED_MODEL_DIR, description="Folder holding the model bundle."
    )
    host: str = "127.0.0.1"
    # PORT and WEB_CONCURRENCY are what container platforms (fly.io among them) set.
    port: int = Field(
        default=8000, ge=1, le=65535, validation_alias=AliasChoices("TASADOR_PORT", "PORT")
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("TASADOR_WORKERS", "WEB_CONCURRENCY"),
    )
    max_batch_rows: int = Field(
        default=10_000, ge=1, description="Most rows one /predecir/lote or /evaluar call takes."
    )
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    api_keys: frozenset[str] = Field(
        default=frozenset(),
        description="When set, prediction routes need one of these in the X-API-Key header.",
    )
    engine: Literal["auto", "scikit-learn"] = Field(
        default="auto",
        description="auto: the compiled ONNX forest when it matches scikit-learn; "
        "scikit-learn: always scikit-learn.",
    )
    fast_path: bool = Field(
        default=True,
        description="Answer POST /predecir without FastAPI's per-request machinery "
        "(same answers, several times the throughput).",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()

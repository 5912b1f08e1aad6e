"""Route dependencies, exposed as type aliases, and the checks behind them.

Dependencies are ``async def`` although they do not await: FastAPI runs a plain ``def``
dependency in its thread pool, a hand-off that cost more than a whole prediction.
"""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from app.bundle import Bundle
from app.config import Settings
from app.errors import ApiError

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="APIKey")


def bundle_of(state: Any) -> Bundle:
    """The verified bundle an app is serving; a 503 ``ApiError`` while there is none."""
    bundle: Bundle | None = state.bundle
    if bundle is None:
        raise ApiError(
            503, "the model is not loaded yet", type="not_ready", headers={"Retry-After": "1"}
        )
    return bundle


def check_api_key(settings: Settings, key: str | None) -> None:
    """When API keys are configured, ``key`` must be one of them (401 otherwise)."""
    if settings.api_keys and key not in settings.api_keys:
        raise ApiError(
            401,
            f"missing or unknown API key in the {API_KEY_HEADER} header",
            loc=("header", API_KEY_HEADER),
            type="api_key",
        )


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_bundle(request: Request) -> Bundle:
    """The verified bundle being served; 503 while there is none."""
    return bundle_of(request.app.state)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
BundleDep = Annotated[Bundle, Depends(get_bundle)]


async def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Depends(_api_key)] = None
) -> None:
    """When API keys are configured, the request must carry one of them."""
    check_api_key(settings, key)

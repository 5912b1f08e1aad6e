"""Route dependencies, exposed as type aliases."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from app.bundle import Bundle
from app.config import Settings
from app.errors import ApiError

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="APIKey")


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_bundle(request: Request) -> Bundle:
    """The verified bundle being served; 503 while there is none."""
    bundle: Bundle | None = request.app.state.bundle
    if bundle is None:
        raise ApiError(
            503, "the model is not loaded yet", type="not_ready", headers={"Retry-After": "1"}
        )
    return bundle


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
BundleDep = Annotated[Bundle, Depends(get_bundle)]


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Depends(_api_key)] = None
) -> None:
    """When API keys are configured, the request must carry one of them."""
    if settings.api_keys and key not in settings.api_keys:
        raise ApiError(
            401,
            f"missing or unknown API key in the {API_KEY_HEADER} header",
            loc=("header", API_KEY_HEADER),
            type="api_key",
        )

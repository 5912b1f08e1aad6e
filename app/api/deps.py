"""Route dependencies, exposed as type aliases.

They are ``async def`` although they do not await: FastAPI runs a plain ``def``
dependency in its thread pool, a hand-off that cost more than a whole prediction.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from app.api.access import API_KEY_HEADER
from app.api.offload import HeavyWork
from app.api.operations import Context
from app.api.scope import BUNDLE_SCOPE_KEY, LANGUAGE_SCOPE_KEY
from app.bundle.loader import Bundle
from app.config import Settings
from app.errors import not_ready
from app.i18n import negotiate

# Declared on protected routes when keys are configured, so the OpenAPI document and
# Swagger's "Authorize" show it; the check itself is the RequestGate's.
API_KEY_SCHEME = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="APIKey")


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_bundle(request: Request) -> Bundle:
    """The bundle this request is served by (the gate's), or 503 while there is none."""
    bundle: Bundle | None = request.scope.get(BUNDLE_SCOPE_KEY) or request.app.state.bundle
    if bundle is None:
        raise not_ready()
    return bundle


async def get_context(
    request: Request,
    bundle: Annotated[Bundle, Depends(get_bundle)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Context:
    """What a body route is served with (``app.api.operations.Context``)."""
    language = request.scope.get(LANGUAGE_SCOPE_KEY) or negotiate(
        request.headers.get("accept-language")
    )
    return Context(bundle, settings, language, request.app.state.instruments)


async def get_heavy(request: Request) -> HeavyWork:
    """The app's lane for heavy work (``app.api.offload``)."""
    heavy: HeavyWork = request.app.state.heavy
    return heavy


SettingsDep = Annotated[Settings, Depends(get_settings)]
BundleDep = Annotated[Bundle, Depends(get_bundle)]
ContextDep = Annotated[Context, Depends(get_context)]
HeavyDep = Annotated[HeavyWork, Depends(get_heavy)]

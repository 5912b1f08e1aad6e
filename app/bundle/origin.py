"""Where a served bundle came from, when it did not come from a plain folder."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """A bundle fetched from MLflow: the URI as configured and what it resolved to."""

    uri: str
    run_id: str | None = None
    name: str | None = None  # the registered model, for a models:/ URI
    version: str | None = None  # the registered version the URI resolved to

"""Refusals: requests the service understood but will not serve, each with its HTTP status.

The service raises them knowing nothing of HTTP beyond the status a refusal deserves (as
MLServer's runtimes do); the transports turn every one into the same JSON shape,
``{"detail": [{"loc", "msg", "type", ...}]}`` (``app.api.refusal_responses``).
"""

from collections.abc import Sequence
from typing import Any


class RefusalError(Exception):
    """A request that will not be served: its status, its problems and any headers."""

    status_code: int = 400
    headers: dict[str, str] | None = None

    def problems(self) -> list[dict[str, Any]]:
        """One entry per problem: ``loc``, ``msg``, ``type`` and what pydantic adds."""
        raise NotImplementedError


class RefusedError(RefusalError):
    """One problem, with the status it deserves."""

    def __init__(
        self,
        status_code: int,
        msg: str,
        *,
        loc: Sequence[str | int] = (),
        type: str = "invalid",
        headers: dict[str, str] | None = None,
        ctx: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.headers = headers
        self._problem: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type}
        if ctx:
            # The values the message uses: what a translation fills in (app.i18n).
            self._problem["ctx"] = ctx

    def problems(self) -> list[dict[str, Any]]:
        """The one problem."""
        return [self._problem]


class InvalidInputError(RefusalError):
    """A body that failed validation: pydantic's errors, located under ``body``."""

    status_code = 422

    def __init__(self, errors: Sequence[Any]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = list(errors)

    def problems(self) -> list[dict[str, Any]]:
        """pydantic's error entries (``loc``, ``msg``, ``type``, ``input``, ``ctx``)."""
        return self.errors


def too_many_rows(n: int, limit: int, field: str) -> RefusedError:
    """A batch larger than the configured row limit, naming the field."""
    return RefusedError(
        422,
        f"List should have at most {limit} items, got {n}",
        loc=("body", field),
        type="too_long",
        ctx={"max_length": limit, "actual_length": n},
    )


def body_too_large(limit: int) -> RefusedError:
    """A body over ``limit`` bytes."""
    return RefusedError(
        413,
        f"Request body is larger than the limit of {limit} bytes",
        loc=("body",),
        type="body_too_large",
        ctx={"limit": limit},
    )


def not_ready() -> RefusedError:
    """No model is loaded yet."""
    return RefusedError(
        503, "the model is not loaded yet", type="not_ready", headers={"Retry-After": "1"}
    )

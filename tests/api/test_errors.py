"""A 422 sends back the offending value only when it is short: never a client's megabytes."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.refusal_responses import MAX_ECHO_CHARS
from tests.helpers import first_error

HUGE = "9" * 4000  # a whole number JSON carries, and Python parses (under its 4,300 digits)


def _with_rooms(path: str, home: dict[str, Any], rooms: str) -> str:
    """The body of ``path`` for one home whose habitaciones is the JSON number ``rooms``."""
    placeholder = -123456789
    body: dict[str, Any] = {**home, "habitaciones": placeholder}
    if path == "/evaluar":
        body = {"muestras": [{**body, "precio": 300_000}]}
    return json.dumps(body).replace(str(placeholder), rooms)


@pytest.mark.parametrize("path", ["/predecir", "/evaluar"])
def test_a_whole_number_of_4000_digits_is_not_echoed(
    client: TestClient, formulario: dict[str, Any], path: str
) -> None:
    answer = client.post(
        path,
        content=_with_rooms(path, formulario, HUGE),
        headers={"content-type": "application/json"},
    )

    problem = first_error(answer)
    assert answer.status_code == 422
    assert problem["loc"][-1] == "habitaciones"
    assert "input" not in problem
    assert len(answer.content) < 1_000


def test_a_whole_number_of_the_echo_limit_is_still_echoed(
    client: TestClient, formulario: dict[str, Any]
) -> None:
    number = "9" * (MAX_ECHO_CHARS - 1)
    answer = client.post(
        "/predecir",
        content=_with_rooms("/predecir", formulario, number),
        headers={"content-type": "application/json"},
    )

    assert first_error(answer)["input"] == int(number)

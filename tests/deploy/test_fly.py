"""fly.toml parses and agrees with the Dockerfile and the app."""

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fly() -> dict[str, Any]:
    return tomllib.loads((ROOT / "fly.toml").read_text())


def test_fly_serves_the_port_the_image_exposes(fly: dict[str, Any]) -> None:
    (runtime,) = [
        s for s in parse_dockerfile((ROOT / "Dockerfile").read_text()) if s.name == "runtime"
    ]
    exposed = int(runtime.args("EXPOSE")[-1])

    assert fly["http_service"]["internal_port"] == exposed
    assert int(fly["env"]["PORT"]) == exposed
    assert fly["primary_region"] == "mad"
    assert fly["http_service"]["force_https"] is True
    assert fly["http_service"]["min_machines_running"] >= 1


def test_image_healthcheck_calls_a_route_on_the_exposed_port(client: TestClient) -> None:
    (runtime,) = [
        s for s in parse_dockerfile((ROOT / "Dockerfile").read_text()) if s.name == "runtime"
    ]
    (healthcheck,) = runtime.args("HEALTHCHECK")
    found = re.search(r"os\.environ\.get\('PORT', '(\d+)'\) \+ '(/\w+)'", healthcheck)

    assert found is not None, healthcheck
    default_port, path = found.groups()
    assert default_port == runtime.args("EXPOSE")[-1]
    assert client.get(path).status_code == 200


def test_fly_checks_a_route_that_exists(fly: dict[str, Any], client: TestClient) -> None:
    (check,) = fly["http_service"]["checks"]

    assert check["path"] == "/ready"
    assert client.request(check["method"], check["path"]).status_code == 200


def test_concurrency_limits_are_requests_and_ordered(fly: dict[str, Any]) -> None:
    limits = fly["http_service"]["concurrency"]

    assert limits["type"] == "requests"
    assert 0 < limits["soft_limit"] < limits["hard_limit"]


def test_concurrency_limits_name_the_command_that_measured_them() -> None:
    """The figures beside the limits come with a command that still exists."""
    text = (ROOT / "fly.toml").read_text()
    comment = text[: text.index("[http_service.concurrency]")].rsplit("\n\n", 1)[-1]
    found = re.search(r"`uv run python -m ([\w.]+)([^`]*)`", comment)

    assert found is not None, comment
    module, flags = found.groups()
    assert importlib.util.find_spec(module) is not None
    source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
    for flag in re.findall(r"--[\w-]+", flags):
        assert f'"{flag}"' in source, flag


def test_metrics_are_scraped_from_the_served_port(fly: dict[str, Any], client: TestClient) -> None:
    assert fly["metrics"]["port"] == fly["http_service"]["internal_port"]
    assert client.get(fly["metrics"]["path"]).status_code == 200


def test_vm_memory_fits_a_worker(fly: dict[str, Any]) -> None:
    (vm,) = fly["vm"]
    size = re.fullmatch(r"(\d+)mb", vm["memory"])
    assert size is not None
    megabytes = int(size.group(1))

    assert megabytes >= 400  # the benchmark's per-worker budget
    assert int(fly["env"]["WEB_CONCURRENCY"]) * 400 <= megabytes

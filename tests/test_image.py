"""The Dockerfile, .dockerignore and compose.yaml read without a Docker engine.

``tests/test_docker.py`` builds and runs the image for real (marker ``docker``). What is
left here is what it cannot see or what must hold on every machine, engine or not: the
build context, and rules whose breaking a build on a machine that can pull would not
notice (a ``# syntax=`` line, a hard-coded base image).
"""

import re
from pathlib import Path

import pytest

from app.cli import GRACEFUL_SHUTDOWN_S
from tests.helpers import Stage, parse_dockerfile
from tools.image import build_context

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name, in order."""
    return {stage.name: stage for stage in parse_dockerfile((ROOT / "Dockerfile").read_text())}


def test_context_holds_only_what_the_image_needs(tmp_path: Path) -> None:
    context = build_context(tmp_path)
    top = {p.name for p in context.iterdir()}

    assert top == {"pyproject.toml", "uv.lock", "README.md", "app", "models", "Dockerfile",
                   ".dockerignore"}  # fmt: skip
    assert not list(context.rglob("__pycache__"))
    assert (context / "models" / "manifest.json").is_file()


def test_build_needs_no_registry_when_given_local_bases(stages: dict[str, Stage]) -> None:
    text = (ROOT / "Dockerfile").read_text()
    global_args = re.findall(r"(?m)^ARG (\w+)=", text.split("\nFROM ", 1)[0])
    bases = re.findall(r"(?m)^FROM (\S+)", text)

    # A syntax directive makes BuildKit pull its frontend, from Docker Hub.
    assert not re.search(r"(?im)^#\s*syntax\s*=", text)
    assert set(global_args) == {"PYTHON_IMAGE", "UV_IMAGE"}
    assert all(base.startswith("${") or base in stages for base in bases), bases


def test_default_target_is_lean_and_full_adds_scikit_learn(stages: dict[str, Stage]) -> None:
    syncs = {name: " ".join(stage.args("RUN")) for name, stage in stages.items()}

    assert list(stages)[-1] == "lean"
    assert "--extra sklearn" in syncs["deps-full"]
    assert "--extra" not in syncs["deps"] + syncs["project"]
    assert all("--frozen --no-dev" in syncs[name] for name in ("deps", "deps-full", "project"))


def test_runtime_is_non_root_and_signal_friendly(stages: dict[str, Stage]) -> None:
    runtime = stages["runtime"]
    user = runtime.args("USER")[-1]

    assert user.split(":")[0].isdigit()
    assert int(user.split(":")[0]) != 0
    assert runtime.args("CMD")[-1].startswith("[")  # exec form: no shell between
    assert runtime.args("EXPOSE") == ["8000"]
    assert runtime.args("HEALTHCHECK")
    assert not any("apt-get" in r for r in runtime.args("RUN"))
    for target in ("lean", "full"):  # both only add files to it
        assert {kw for kw, _ in stages[target].instructions} == {"COPY"}


def test_compose_serves_the_default_target_locally_and_waits_for_the_drain(
    stages: dict[str, Stage],
) -> None:
    text = (ROOT / "compose.yaml").read_text()  # no YAML parser among the dependencies
    target = re.findall(r"(?m)^ +target: *(\S+)$", text)
    grace = re.findall(r"(?m)^ +stop_grace_period: *(\d+)s$", text)

    assert target == [list(stages)[-1]]
    assert [int(seconds) > GRACEFUL_SHUTDOWN_S for seconds in grace] == [True]
    assert '- "127.0.0.1:${API_PORT:-8000}:8000"' in text
    assert re.search(r"(?m)^ +read_only: *true$", text)

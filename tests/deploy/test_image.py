"""The Dockerfile, .dockerignore and compose.yaml read without a Docker engine.

``tests/deploy/test_docker.py`` builds and runs the image for real (marker ``docker``). What is
left here is what it cannot see or what must hold on every machine, engine or not: the
build context, and rules whose breaking a build on a machine that can pull would not
notice (a ``# syntax=`` line, a hard-coded base image).
"""

import re
from pathlib import Path

import pytest

from app.cli import GRACEFUL_SHUTDOWN_S
from tests.helpers import Stage, compose_services, parse_dockerfile
from tools.image import DASH, KINDS, Figures, Sizes, Start, build_context, layer_kind, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name, in order."""
    return {stage.name: stage for stage in parse_dockerfile((ROOT / "Dockerfile").read_text())}


def test_context_holds_only_what_the_image_needs(tmp_path: Path) -> None:
    context = build_context(tmp_path)
    top = {p.name for p in context.iterdir()}

    assert top == {"pyproject.toml", "uv.lock", "README.md", "app", "models", "ui", "Dockerfile",
                   ".dockerignore"}  # fmt: skip
    assert not list(context.rglob("__pycache__"))
    assert (context / "models" / "manifest.json").is_file()
    # The front end, with the Leaflet it serves itself (the map needs no network).
    assert (context / "ui" / "__main__.py").is_file()
    assert (context / "ui" / "static" / "leaflet" / "leaflet.js").is_file()


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
    assert "--extra ui" in syncs["deps-ui"]
    assert "--extra" not in syncs["deps"] + syncs["project"]
    assert all(
        "--frozen --no-dev" in syncs[name] for name in ("deps", "deps-full", "deps-ui", "project")
    )


def test_runtime_is_non_root_and_signal_friendly(stages: dict[str, Stage]) -> None:
    runtime = stages["runtime"]
    user = runtime.args("USER")[-1]

    assert runtime.base == "nonroot"
    assert user.split(":")[0].isdigit()
    assert int(user.split(":")[0]) != 0
    assert runtime.args("CMD")[-1].startswith("[")  # exec form: no shell between
    assert runtime.args("EXPOSE") == ["8000"]
    assert runtime.args("HEALTHCHECK")
    assert not any("apt-get" in r for r in stages["nonroot"].args("RUN") + runtime.args("RUN"))
    for target in ("lean", "full"):  # both only add files to it
        assert stages[target].base == "runtime"
        assert {kw for kw, _ in stages[target].instructions} == {"COPY"}


def test_ui_runs_streamlit_as_the_api_user_and_checks_its_health_without_curl(
    stages: dict[str, Stage],
) -> None:
    ui = stages["ui"]
    env = " ".join(ui.args("ENV"))
    (healthcheck,) = ui.args("HEALTHCHECK")

    assert ui.base == "nonroot"  # the API's user, not the API's settings
    assert ui.args("USER") == stages["runtime"].args("USER")
    assert not ui.args("RUN")  # files only, on top of the user
    assert ui.args("CMD") == ['["python", "-m", "ui"]']
    assert ui.args("EXPOSE") == ["8501"]
    for setting in ("HOME=/tmp", "STREAMLIT_SERVER_ADDRESS=0.0.0.0", "STREAMLIT_SERVER_PORT=8501",
                    "STREAMLIT_SERVER_HEADLESS=true"):  # fmt: skip
        assert setting in env.split()
    assert "/_stcore/health" in healthcheck
    assert "os.environ.get('STREAMLIT_SERVER_PORT', '8501')" in healthcheck
    assert healthcheck.split("CMD ", 1)[1].startswith('["python", "-c", "import os, urllib')


def test_compose_serves_the_default_target_locally_and_waits_for_the_drain(
    stages: dict[str, Stage],
) -> None:
    services = compose_services((ROOT / "compose.yaml").read_text())
    api = services["api"]
    targets = {
        name: re.findall(r"(?m)^ +target: *(\S+)$", block) for name, block in services.items()
    }
    grace = re.findall(r"(?m)^ +stop_grace_period: *(\d+)s$", api)

    assert targets == {"api": [list(stages)[-1]], "ui": ["ui"]}
    assert [int(seconds) > GRACEFUL_SHUTDOWN_S for seconds in grace] == [True]
    assert '- "127.0.0.1:${API_PORT:-8000}:8000"' in api
    assert re.search(r"(?m)^ +read_only: *true$", api)


def test_compose_starts_the_front_end_once_the_api_is_healthy(stages: dict[str, Stage]) -> None:
    services = compose_services((ROOT / "compose.yaml").read_text())
    ui = services["ui"]
    api_port = stages["runtime"].args("EXPOSE")[-1]
    restart = {
        name: re.findall(r"(?m)^ +restart: *(\S+)$", block) for name, block in services.items()
    }

    assert f'- "127.0.0.1:${{UI_PORT:-8501}}:{stages["ui"].args("EXPOSE")[-1]}"' in ui
    assert re.search(rf"(?m)^ +TASADOR_API_URL: *http://api:{api_port}$", ui)
    assert re.search(r"(?m)^ +depends_on:\n +api:\n +condition: *service_healthy$", ui)
    assert re.search(r"(?m)^ +read_only: *true$", ui)
    assert re.search(r"(?m)^ +tmpfs:\n +- /tmp$", ui)  # the image's HOME
    assert restart["ui"] == restart["api"] == ["unless-stopped"]


def test_every_file_layer_of_an_image_is_named_in_the_size_table(stages: dict[str, Stage]) -> None:
    def created_by(arguments: str) -> str:  # as docker history shows a BuildKit COPY
        return " ".join(["COPY", *(a for a in arguments.split() if not a.startswith("--"))])

    kinds = {
        target: [layer_kind(created_by(copy)) for copy in stages[target].args("COPY")]
        for target in ("lean", "full", "ui")
    }

    assert kinds == {
        "lean": ["environment", "model", "code"],
        "full": ["environment", "model", "code"],
        "ui": ["environment", "code", "front end"],
    }
    assert {kind for found in kinds.values() for kind in found} == set(KINDS)


def test_figures_group_the_distributions_and_count_the_rest() -> None:
    def found(**megabytes: float) -> dict[str, dict[str, int]]:
        return {name.replace("_", "-"): {"bytes": int(mb * 1e6), "pyc": 0}
                for name, mb in megabytes.items()}  # fmt: skip

    figures = Figures(
        builds={"lean": (5.0, 0.1), "ui": (13.0, 0.1)},
        changed_s=0.9,
        weights={"lean": Sizes(total=300_000_000, base=100_000_000, layers=[])},
        packages={
            "lean": found(numpy=70, click=1),
            "ui": found(numpy=70, click=1, pyarrow=160, pydantic=5, pydantic_core=5, toml=1),
        },
        starts=[Start("lean, embedded", [0.9, 1.0, 0.8], [0.6, 0.7, 0.5], 88.0)],
    )

    tables = render(figures)

    assert "| **200.0 MB** |" in tables  # lean, above the base
    assert f"| pyarrow | {DASH} | 160.0 MB |" in tables
    assert f"| pydantic, pydantic-core | {DASH} | 10.0 MB |" in tables  # one row per group
    assert "| 2 others (click, toml, ...) | 1.0 MB | 2.0 MB |  |" in tables
    assert (
        f"| lean, embedded | 0.90 s (0.80{DASH}1.00) | 0.60 s (0.50{DASH}0.70) | 88 MiB |" in tables
    )
    assert tables.index("pyarrow") < tables.index("numpy") < tables.index("pydantic")

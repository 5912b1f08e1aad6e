"""The container image, reproduced without a Docker engine.

The Dockerfile is read instruction by instruction: the build context is exactly what
``.dockerignore`` admits (docker-py's own walker), COPY copies from it, the builder's RUN
lines (``uv sync --frozen --no-dev``) run as written, the runtime stage starts from only
what it copies, and its CMD and HEALTHCHECK run as written, with the image's ENV. ``/app``
is mapped to a temporary folder. Two things differ from a real container, on purpose: the
server listens on 127.0.0.1 (tests never listen elsewhere), and no user is created (the
test asserts the image switches to a numeric non-root one).
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import Stage, parse_dockerfile, post_json
from tools.process import free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent
IMAGE_ROOT = "/app"


def build_context(destination: Path) -> Path:
    """Copy the files ``.dockerignore`` admits into ``destination``."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for relative in exclude_paths(str(ROOT), patterns):
        source = ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _env_assignments(text: str) -> list[tuple[str, str]]:
    return [(k, v.strip('"')) for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', text)]


def _mapped(value: str, app_root: Path, env: dict[str, str]) -> str:
    value = value.replace("${PATH}", env.get("PATH", ""))
    return re.sub(r"(?<![\w/])/app(?=/|$|:)", str(app_root), value)


def _copy(context: Path, sources: list[str], destination: Path) -> None:
    for source in sources:
        origin = context / source
        if origin.is_dir():
            shutil.copytree(origin, destination, dirs_exist_ok=True)
        else:
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, destination / origin.name)


@dataclass
class Image:
    """The reproduced runtime filesystem and what the runtime stage declares."""

    root: Path
    env: dict[str, str]
    cmd: list[str]
    healthcheck: list[str]
    user: str
    exposed: str


def reproduce(stages: list[Stage], context: Path, app_root: Path) -> Image:
    """Run the builder stage for real and lay out what the runtime stage holds."""
    uv = os.environ.get("UV") or shutil.which("uv") or pytest.fail("uv is needed")
    builder, runtime = stages[-2], stages[-1]
    env = {**os.environ, "UV_PYTHON": sys.executable}
    env.pop("VIRTUAL_ENV", None)
    workdir = app_root
    for keyword, rest in builder.instructions:
        if keyword == "ENV":
            env.update((k, _mapped(v, app_root, env)) for k, v in _env_assignments(rest))
        elif keyword == "COPY" and not rest.startswith("--from"):
            *sources, target = rest.split()
            _copy(context, sources, workdir / target if target != "./" else workdir)
        elif keyword == "RUN":
            command = shlex.split(re.sub(r"--mount=\S+", "", rest))
            assert command[0] == "uv", f"the test runs only uv in the builder: {rest}"
            subprocess.run([uv, *command[1:]], cwd=workdir, env=env, check=True, timeout=600)
    kept = [r.split()[-1] for r in runtime.args("COPY") if r.startswith("--from=builder")]
    assert kept == [f"{IMAGE_ROOT}/.venv"], "runtime copies only the environment"
    for entry in app_root.iterdir():  # the runtime stage starts from a clean image
        if entry.name != ".venv":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("UV", "VIRTUAL_ENV"))}
    for keyword, rest in runtime.instructions:
        if keyword == "ENV":
            run_env.update((k, _mapped(v, app_root, run_env)) for k, v in _env_assignments(rest))
        elif keyword == "COPY" and not rest.startswith("--from"):
            *sources, target = rest.split()
            _copy(context, sources, app_root / target)
    (health,) = runtime.args("HEALTHCHECK")
    return Image(
        root=app_root,
        env=run_env,
        cmd=json.loads(runtime.args("CMD")[-1]),
        healthcheck=json.loads(health.split("CMD", 1)[1]),
        user=runtime.args("USER")[-1],
        exposed=runtime.args("EXPOSE")[-1],
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image, built once for this module."""
    base = tmp_path_factory.mktemp("image")
    context = build_context(base / "context")
    return reproduce(parse_dockerfile((ROOT / "Dockerfile").read_text()), context, base / "app")


@pytest.fixture
def container(image: Image) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, str]]]:
    """The image's command running, as `docker run -e PORT=...` would start it."""
    port = free_port()
    env = {**image.env, "PORT": str(port), "TASADOR_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        image.cmd, cwd=image.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield process, f"http://127.0.0.1:{port}", env
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_context_holds_only_what_the_image_needs(tmp_path: Path) -> None:
    context = build_context(tmp_path)
    top = {p.name for p in context.iterdir()}

    assert top == {"pyproject.toml", "uv.lock", "README.md", "app", "models", "Dockerfile",
                   ".dockerignore"}  # fmt: skip
    assert not list(context.rglob("__pycache__"))
    assert (context / "models" / "manifest.json").is_file()


def test_runtime_stage_is_slim_non_root_and_signal_friendly() -> None:
    stages = parse_dockerfile((ROOT / "Dockerfile").read_text())
    runtime = stages[-1]

    user = runtime.args("USER")[-1]
    assert user.split(":")[0].isdigit()
    assert int(user.split(":")[0]) != 0
    assert runtime.args("CMD")[-1].startswith("[")  # exec form: no shell between
    assert runtime.args("EXPOSE") == ["8000"]
    assert not any("apt-get" in r or "gcc" in r for r in runtime.args("RUN"))
    assert any("--frozen --no-dev" in r for r in stages[-2].args("RUN"))


def test_image_serves_predictions_and_stops_on_sigterm(
    image: Image, container: tuple[subprocess.Popen[bytes], str, dict[str, str]]
) -> None:
    process, base, env = container
    wait_ready(f"{base}/ready", process)

    health = subprocess.run(image.healthcheck, env=env, cwd=image.root, timeout=10, check=False)
    answer = post_json(f"{base}/predecir", FORMULARIO_EJEMPLO)
    manifest = json.loads((image.root / "models" / "manifest.json").read_text())
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=30)[0].decode()

    assert health.returncode == 0
    assert answer["modelo"] == manifest["version"]
    assert answer["precio"] > 0
    assert "with onnxruntime" in output
    assert "Application shutdown complete" in output
    assert not (image.root / "app").exists()  # the code lives only in the environment

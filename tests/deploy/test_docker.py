"""The image, built from the real Dockerfile by a real Docker engine, and run as a user of
``docker run`` (and ``docker compose``) runs it.

Marker ``docker``, outside the default run: ``uv run pytest -m docker`` (``.ci/run`` runs
it apart). As root it installs Debian's docker.io if needed, starts a private dockerd in
a temporary folder (``tools.dockerd``), puts the stand-in bases into it (cached between
runs, ``tools.standins``), builds the three targets (lean, full, and ui, the front end), and
at the end removes what it created,
stops the engine and checks the host network is as it was. Where no engine can start,
every test fails with the reason: nothing is skipped. Containers publish on 127.0.0.1
only; every wait is bounded.
"""

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.cli import GRACEFUL_SHUTDOWN_S
from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import make_client, post_json, raw_socket, read_until_closed, train_quietly
from tools import standins
from tools.dockerd import DOCKER, Engine, EngineError
from tools.image import (
    ROOT,
    UI_PORT,
    UI_READY_PATH,
    Container,
    build,
    build_context,
    readable,
    site_packages,
    sizes,
    sklearn_only_bundle,
    volume,
)
from tools.process import free_port

pytestmark = pytest.mark.docker

LABEL = "tasador.test=docker"
# The lean image's goal: layers above the base ≤ 250 MB (issue 12).
ABOVE_BASE_GOAL = 250e6
TRAINING_ONLY = {"onnx", "tqdm"}
FALLBACK = {"scikit-learn", "scipy", "joblib"}
HARDENED = ("--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges")
# The front end's image sets HOME=/tmp: a read-only root needs a tmpfs there.
UI_HARDENED = (*HARDENED, "--tmpfs=/tmp")
HEALTHY_WITHIN_S = 60
Report = Callable[[str], None]


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[Report]:
    """``report(line)``: figures printed after the module's tests (sizes, times)."""
    lines: list[str] = []
    yield lines.append
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capture is not None and lines:
        with capture.global_and_fixture_disabled():
            reporter.write_sep("-", "docker figures")
            for line in lines:
                reporter.write_line(line)


@pytest.fixture(scope="module")
def engine(report: Report) -> Iterator[Engine]:
    """A private engine in a temporary folder, removed afterwards."""
    started = time.perf_counter()
    try:
        with Engine(Path(tempfile.mkdtemp(prefix="tasador-engine-")), purge=True) as engine:
            report(f"engine up in {time.perf_counter() - started:.1f} s")
            yield engine
            for container in engine.docker("ps", "-aq", f"--filter=label={LABEL}").stdout.split():
                engine.docker("rm", "--force", container)
    except EngineError as exc:
        pytest.fail(f"the docker tests need a Docker engine, and: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def bases(engine: Engine, report: Report) -> dict[str, str]:
    """The stand-in base images, as build arguments."""
    started = time.perf_counter()
    try:
        found = standins.ensure(engine.env)
    except EngineError as exc:
        pytest.fail(f"cannot make the stand-in base images: {exc}", pytrace=False)
    report(f"stand-in bases ready in {time.perf_counter() - started:.1f} s")
    return found


@pytest.fixture(scope="module")
def images(engine: Engine, bases: dict[str, str], report: Report) -> Iterator[dict[str, str]]:
    """The targets built from the real Dockerfile: target → tag."""
    tags = {target: f"tasador-test:{target}" for target in ("lean", "full", "ui")}
    for target, tag in tags.items():
        seconds = build(engine, tag, target=target, bases=bases)
        report(f"{target} built in {seconds:.1f} s")
    yield tags
    for tag in tags.values():
        engine.docker("rmi", tag)


@pytest.fixture(scope="module")
def lean(engine: Engine, images: dict[str, str], report: Report) -> Iterator[Container]:
    """The default image running read-only, with no capabilities, ready."""
    with Container(engine, images["lean"], *HARDENED, label=LABEL) as container:
        container.wait_ready()
        report(
            f"lean: docker run → /ready in {container.ready_s:.2f} s "
            f"({container.ready_inside_s:.2f} s from the container's start)"
        )
        yield container


@pytest.fixture(scope="module")
def sklearn_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded bundle without its compiled forest: only scikit-learn can serve it."""
    return sklearn_only_bundle(ROOT / "models", tmp_path_factory.mktemp("sk") / "models")


def in_process(bundle: Path, body: dict[str, Any]) -> Any:
    """What the service answers in this process, with this bundle."""
    with make_client(bundle) as client:
        return client.post("/predecir", json=body).json()


def test_lean_image_answers_as_the_service_in_process(lean: Container) -> None:
    ready = httpx2.get(f"{lean.url}/ready")
    modelo = httpx2.get(f"{lean.url}/modelo").json()
    answer = post_json(f"{lean.url}/predecir", FORMULARIO_EJEMPLO)
    expected = in_process(ROOT / "models", FORMULARIO_EJEMPLO)

    assert ready.status_code == 200
    assert (answer["precio"], answer["modelo"]) == (expected["precio"], expected["modelo"])
    assert modelo["engine"] == "onnxruntime"


def test_lean_image_refuses_bad_input_with_422(lean: Container) -> None:
    bad = {**FORMULARIO_EJEMPLO, "superficie_util": 10_000}

    response = httpx2.post(f"{lean.url}/predecir", json=bad)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "superficie_util"]


def test_lean_image_runs_as_a_numeric_non_root_user_on_a_read_only_root(lean: Container) -> None:
    written = lean.exec("python", "-c", "open('/tmp/x', 'w')")  # /tmp: anyone may write

    assert lean.inspect("{{.Config.User}}") == "10001:10001"
    assert lean.exec("id", "-u").stdout.strip() == "10001"
    assert lean.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    assert "Read-only file system" in written.stderr
    assert "Traceback" not in lean.logs()  # nothing failed to write at start


def test_ui_image_serves_the_front_end_as_a_numeric_non_root_user_on_a_read_only_root(
    engine: Engine, images: dict[str, str], report: Report
) -> None:
    with Container(
        engine, images["ui"], *UI_HARDENED, port=UI_PORT, ready_path=UI_READY_PATH, label=LABEL
    ) as ui:
        ui.wait_ready()
        report(f"ui: docker run → {UI_READY_PATH} in {ui.ready_s:.2f} s")
        page = httpx2.get(f"{ui.url}/")
        health = httpx2.get(ui.url + UI_READY_PATH)
        leaflet = httpx2.get(f"{ui.url}/app/static/leaflet/leaflet.js")  # vendored: no CDN
        user = (ui.inspect("{{.Config.User}}"), ui.exec("id", "-u").stdout.strip())
        read_only = ui.inspect("{{.HostConfig.ReadonlyRootfs}}")
        written = ui.exec("python", "-c", "open('/app/x', 'w')")
        healthcheck = json.loads(ui.inspect("{{json .Config.Healthcheck.Test}}"))
        probe = ui.exec(*healthcheck[1:])  # after "CMD"
        logs = ui.logs()

    assert page.status_code == 200
    assert "<title>Streamlit</title>" in page.text
    assert (health.status_code, health.text) == (200, "ok")
    assert leaflet.status_code == 200
    assert user == ("10001:10001", "10001")
    assert read_only == "true"
    assert "Read-only file system" in written.stderr
    assert probe.returncode == 0, probe.stderr
    assert f"0.0.0.0:{UI_PORT}" in logs
    assert "Traceback" not in logs  # nothing failed to write at start
    assert f"URL: http://localhost:{UI_PORT}" in logs  # the address it is given, so it
    assert "External URL" not in logs  # did not ask checkip.amazonaws.com for another
    assert "external IP" not in logs


def test_lean_image_holds_neither_training_nor_fallback_packages(
    engine: Engine, images: dict[str, str], bases: dict[str, str], report: Report
) -> None:
    lean_packages = site_packages(engine, images["lean"])
    full_packages = site_packages(engine, images["full"])
    weights = {target: sizes(engine, tag, bases["PYTHON_IMAGE"]) for target, tag in images.items()}
    for target, weight in weights.items():
        report(
            f"{target}: {weight.total / 1e6:.1f} MB, of which base {weight.base / 1e6:.1f} MB "
            f"and above it {weight.above_base / 1e6:.1f} MB"
        )

    assert not (TRAINING_ONLY | FALLBACK) & set(lean_packages)
    assert set(full_packages) >= FALLBACK
    assert not TRAINING_ONLY & set(full_packages)
    assert weights["lean"].above_base <= ABOVE_BASE_GOAL


def test_port_and_web_concurrency_are_honoured(engine: Engine, images: dict[str, str]) -> None:
    with Container(
        engine, images["lean"], "--env=PORT=9000", "--env=WEB_CONCURRENCY=2", port=9000, label=LABEL
    ) as container:
        container.wait_ready()
        answer = post_json(f"{container.url}/predecir", FORMULARIO_EJEMPLO)
        healthcheck = json.loads(container.inspect("{{json .Config.Healthcheck.Test}}"))
        probe = container.exec(*healthcheck[1:])  # after "CMD"
        logs = container.logs()

    assert answer["precio"] > 0
    assert probe.returncode == 0, probe.stderr
    assert "Uvicorn running on http://0.0.0.0:9000" in logs
    assert logs.count("Started server process") == 2


def test_a_mounted_bundle_is_served(engine: Engine, images: dict[str, str], tmp_path: Path) -> None:
    bundle = readable(train_quietly(tmp_path / "models"))

    with Container(engine, images["lean"], *HARDENED, volume(bundle), label=LABEL) as container:
        container.wait_ready()
        answer = post_json(f"{container.url}/predecir", FORMULARIO_EJEMPLO)
    expected = in_process(bundle, FORMULARIO_EJEMPLO)

    assert (answer["precio"], answer["modelo"]) == (expected["precio"], expected["modelo"])
    assert answer["modelo"] != in_process(ROOT / "models", FORMULARIO_EJEMPLO)["modelo"]


def test_lean_image_refuses_in_one_line_a_bundle_only_scikit_learn_can_serve(
    engine: Engine, images: dict[str, str], sklearn_only: Path
) -> None:
    with Container(engine, images["lean"], volume(sklearn_only), label=LABEL) as container:
        code = container.wait_exit()
        lines = container.logs().strip().splitlines()

    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("tasador: cannot start: /app/models/model.pkl needs scikit-learn")
    assert "not installed" in lines[0]


def test_full_image_falls_back_to_scikit_learn(
    engine: Engine, images: dict[str, str], sklearn_only: Path, report: Report
) -> None:
    served = {}
    for name, bundle in (("embedded", None), ("without forest.onnx", sklearn_only)):
        mount = [volume(bundle)] if bundle else []
        with Container(engine, images["full"], *HARDENED, *mount, label=LABEL) as container:
            container.wait_ready()
            report(f"full, {name} bundle: docker run → /ready in {container.ready_s:.2f} s")
            served[name] = httpx2.get(f"{container.url}/modelo").json()["engine"]
            answer = post_json(f"{container.url}/predecir", FORMULARIO_EJEMPLO)
    expected = in_process(sklearn_only, FORMULARIO_EJEMPLO)

    assert served == {"embedded": "onnxruntime", "without forest.onnx": "scikit-learn"}
    assert answer["precio"] == expected["precio"]


def test_docker_stop_answers_the_request_in_flight_and_exits_0(
    engine: Engine, images: dict[str, str], report: Report
) -> None:
    body = json.dumps(FORMULARIO_EJEMPLO).encode()
    head = (
        b"POST /predecir HTTP/1.1\r\nHost: tasador\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with Container(engine, images["lean"], label=LABEL) as container:
        container.wait_ready()
        port = int(container.url.rsplit(":", 1)[1])
        with raw_socket(port, timeout=GRACEFUL_SHUTDOWN_S) as client:
            client.sendall(head + body[:20])  # the request has begun: it is in flight
            time.sleep(1)  # time for the server to read the headers
            started = time.perf_counter()
            stopping = subprocess.Popen(
                [DOCKER, "stop", f"--time={GRACEFUL_SHUTDOWN_S + 5}", container.id],
                env={**os.environ, **engine.env},
                stdout=subprocess.DEVNULL,
            )
            try:
                wait_for(lambda: "Shutting down" in container.logs(), GRACEFUL_SHUTDOWN_S)
                client.sendall(body[20:])  # SIGTERM has arrived: now finish the request
                answer = read_until_closed(client)
                stopped = stopping.wait(timeout=GRACEFUL_SHUTDOWN_S + 10)
            finally:
                stopping.kill()
        seconds = time.perf_counter() - started
        state = container.state()
        report(f"docker stop with a request in flight: {seconds:.2f} s")

    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["precio"] > 0
    assert stopped == 0
    assert seconds < GRACEFUL_SHUTDOWN_S
    assert (state["ExitCode"], state["OOMKilled"]) == (0, False)


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    """Poll ``condition`` until it holds; fail when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.1)


def test_healthcheck_turns_healthy(lean: Container) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while (health := lean.state()["Health"])["Status"] == "starting":
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert health["Status"] == "healthy", health
    assert health["Log"][-1]["ExitCode"] == 0


def test_a_code_change_rebuilds_only_the_code_layer(
    engine: Engine, images: dict[str, str], bases: dict[str, str], tmp_path: Path, report: Report
) -> None:
    context = build_context(tmp_path / "context")
    with (context / "app" / "__init__.py").open("a") as code:
        code.write("# a change\n")

    seconds = build(engine, "tasador-test:changed", target="lean", bases=bases, context=context)
    layers = {
        tag: json.loads(
            engine.docker("image", "inspect", "--format={{json .RootFS.Layers}}", tag).stdout
        )
        for tag in (images["lean"], "tasador-test:changed")
    }
    engine.docker("rmi", "tasador-test:changed")
    report(f"lean rebuilt after a change in app/ in {seconds:.1f} s")
    before, after = layers.values()

    assert before[:-1] == after[:-1]  # base, user, environment, model: the same layers
    assert before[-1] != after[-1]


@pytest.mark.usefixtures("images")  # built already: compose's build reuses their layers
def test_compose_builds_and_serves_the_api_and_the_front_end(
    engine: Engine, bases: dict[str, str], report: Report
) -> None:
    try:
        engine.install_compose()
    except EngineError as exc:
        pytest.fail(f"cannot install the docker compose plugin: {exc}", pytrace=False)
    api_port, ui_port = free_port(), free_port()
    variables = {**bases, "API_PORT": str(api_port), "UI_PORT": str(ui_port)}
    project = ["compose", f"--project-name=tasador-test-{os.getpid()}"]
    project += [f"--file={ROOT / 'compose.yaml'}"]
    # What the front end's own client gets from the API it is given (TASADOR_API_URL).
    ask_api = "import json; from ui.api import Tasador; print(json.dumps(Tasador().modelo()))"
    try:
        engine.docker(*project, "build", env=variables, timeout=600)
        started = time.perf_counter()
        engine.docker(*project, "up", "--detach", "--wait", env=variables, timeout=180)
        report(f"docker compose up --wait (api, then ui): {time.perf_counter() - started:.1f} s")
        answer = post_json(f"http://127.0.0.1:{api_port}/predecir", FORMULARIO_EJEMPLO)
        modelo = httpx2.get(f"http://127.0.0.1:{api_port}/modelo").json()
        page = httpx2.get(f"http://127.0.0.1:{ui_port}/")
        health = httpx2.get(f"http://127.0.0.1:{ui_port}{UI_READY_PATH}")
        from_ui = engine.docker(
            *project, "exec", "-T", "ui", "python", "-c", ask_api, env=variables
        )
        listed = engine.docker(*project, "ps", "--format=json", env=variables).stdout
        services = {s["Service"]: s for s in map(json.loads, listed.splitlines())}
    finally:
        engine.docker(*project, "down", "--rmi=local", "--timeout=35", env=variables, timeout=120)

    assert answer["modelo"] == in_process(ROOT / "models", FORMULARIO_EJEMPLO)["modelo"]
    assert set(services) == {"api", "ui"}
    assert {name: s["Health"] for name, s in services.items()} == {
        "api": "healthy",
        "ui": "healthy",
    }
    assert {p["URL"] for s in services.values() for p in s["Publishers"]} == {"127.0.0.1"}
    assert page.status_code == 200
    assert "<title>Streamlit</title>" in page.text
    assert (health.status_code, health.text) == (200, "ok")
    assert json.loads(from_ui.stdout) == modelo  # the ui reaches the api by its service name

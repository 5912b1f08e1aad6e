"""deploy/kubernetes: every kustomization renders, validates strictly against the Kubernetes
API schemas offline, and agrees with the Dockerfile, the app and the measured memory.

No cluster can run here; these are the checks that need none. They need the k8s group
(kubectl, whose kustomize renders, and kubernetes-validate's schemas):
``uv run --group k8s pytest -m kubernetes``.
"""

import json
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.cli import GRACEFUL_SHUTDOWN_S
from app.config import ENV_PREFIX, Settings
from tests.helpers import parse_dockerfile, require
from tools.process import TASADOR_SERVE, ServerProcess

pytestmark = pytest.mark.kubernetes

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
KUSTOMIZATIONS = sorted(path.parent for path in DEPLOY.rglob("kustomization.yaml"))
INSTALL = "uv sync --group k8s (or run: uv run --group k8s pytest -m kubernetes)"
# The oldest release the large managed services still run, and the newest the validator
# ships schemas for.
KUBERNETES_VERSIONS = [pytest.param("1.30.0", id="k8s-1.30"), pytest.param(None, id="newest")]
# What the image copies its bundle to (Dockerfile: COPY models ./models, TASADOR_MODEL_DIR).
IMAGE_MODEL_DIR = "/app/models"
MEBIBYTE = 1024 * 1024
QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
UNITS = {None: 1, "Ki": 1024, "Mi": MEBIBYTE, "Gi": 1024 * MEBIBYTE, "Ti": MEBIBYTE**2,
         "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}  # fmt: skip


def name_of(kustomization: Path) -> str:
    return str(kustomization.relative_to(DEPLOY))


@pytest.fixture(scope="module")
def kubectl() -> str:
    """The locked kubectl (the k8s group's wheel), not whichever one is on PATH."""
    found = Path(sys.executable).parent / "kubectl"
    if not found.exists():
        pytest.fail(f"kubectl is not installed beside {sys.executable}; install it with: {INSTALL}")
    return str(found)


@pytest.fixture(scope="module")
def validator() -> Any:
    """kubernetes-validate: the API's JSON schemas for each release, shipped in the package."""
    return require("kubernetes_validate", INSTALL)


def render(kubectl: str, kustomization: Path) -> list[dict[str, Any]]:
    yaml = require("yaml", INSTALL)
    built = subprocess.run(
        [kubectl, "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    return {name_of(path): render(kubectl, path) for path in KUSTOMIZATIONS}


def the(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind]
    return found


def api_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = the(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity in MiB (``640Mi``, ``1Gi``, ``500M``)."""
    found = QUANTITY.fullmatch(quantity)
    assert found is not None, f"not a quantity: {quantity!r}"
    return float(found.group(1)) * UNITS[found.group(2)] / MEBIBYTE


def runtime_stage() -> Any:
    (runtime,) = [
        s for s in parse_dockerfile((ROOT / "Dockerfile").read_text()) if s.name == "runtime"
    ]
    return runtime


def test_there_is_a_base_and_an_overlay_serving_a_volume() -> None:
    assert BASE in KUSTOMIZATIONS
    assert DEPLOY / "overlays" / "volume-bundle" in KUSTOMIZATIONS


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=name_of)
def test_renders_and_validates_strictly(
    rendered: dict[str, list[dict[str, Any]]],
    validator: Any,
    kustomization: Path,
    version: str | None,
) -> None:
    docs = rendered[name_of(kustomization)]

    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= {
        doc["kind"] for doc in docs
    }
    for doc in docs:
        # Strict: a key the API does not know fails too. A kind or apiVersion it does not
        # know raises SchemaNotFoundError (the command line would only warn).
        validator.validate(doc, version or validator.latest_version(), strict=True)


# Each a JSON patch on the base's Deployment, and what the validator must say about it.
POD = "/spec/template/spec"
BROKEN = [
    pytest.param(
        {"op": "add", "path": "/spec/replicass", "value": 2},
        "'replicass' was unexpected",
        id="typo-key",
    ),
    pytest.param(
        {"op": "add", "path": f"{POD}/containers/0/readinessProbe/httpGet/paht", "value": "/"},
        "'paht' was unexpected",
        id="typo-nested-key",
    ),
    pytest.param(
        {"op": "replace", "path": f"{POD}/terminationGracePeriodSeconds", "value": "forty"},
        "'forty' is not of type 'integer'",
        id="wrong-type",
    ),
    pytest.param(
        {"op": "remove", "path": "/spec/selector"},
        "'selector' is a required property",
        id="missing-required",
    ),
    pytest.param(
        {"op": "replace", "path": "/apiVersion", "value": "apps/v2"},
        "Couldn't find schema for kind Deployment with api version apps/v2",
        id="unknown-api-version",
    ),
]


@pytest.mark.parametrize(("patch", "complaint"), BROKEN)
def test_a_broken_field_fails_the_check(
    kubectl: str, validator: Any, tmp_path: Path, patch: dict[str, Any], complaint: str
) -> None:
    """The same render and validation as above, on an overlay of the base that breaks one
    field: kustomize passes it through, the schema check refuses it."""
    # kustomize takes a base by relative path only: a copy beside the overlay.
    shutil.copytree(BASE, tmp_path / "base")
    overlay = tmp_path / "broken"
    overlay.mkdir()
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../base"],
        "patches": [{"target": {"kind": "Deployment"}, "patch": json.dumps([patch])}],
    }
    (overlay / "kustomization.yaml").write_text(json.dumps(kustomization))
    (deployment,) = [doc for doc in render(kubectl, overlay) if doc["kind"] == "Deployment"]

    with pytest.raises((validator.ValidationError, validator.SchemaNotFoundError)) as refused:
        validator.validate(deployment, validator.latest_version(), strict=True)
    assert complaint in refused.value.message


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=name_of)
def test_probes_ask_the_app_on_the_image_port(
    rendered: dict[str, list[dict[str, Any]]], kustomization: Path, client: TestClient
) -> None:
    container = api_container(rendered[name_of(kustomization)])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    exposed = int(runtime_stage().args("EXPOSE")[-1])
    kinds = ("startupProbe", "readinessProbe", "livenessProbe")
    probes = {kind: container[kind]["httpGet"] for kind in kinds}

    assert probes["readinessProbe"]["path"] == "/ready"
    assert probes["livenessProbe"]["path"] == "/health"
    assert probes["startupProbe"]["path"] == "/health"
    for probe in probes.values():
        assert ports[probe["port"]] == exposed
        assert client.get(probe["path"]).status_code == 200
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert int(env["PORT"]) == exposed


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=name_of)
def test_runs_as_the_image_user_on_a_read_only_root(
    rendered: dict[str, list[dict[str, Any]]], kustomization: Path
) -> None:
    docs = rendered[name_of(kustomization)]
    pod = the(docs, "Deployment")["spec"]["template"]["spec"]
    container = api_container(docs)
    (user,) = runtime_stage().args("USER")
    uid, gid = (int(part) for part in user.split(":"))

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # Nothing writable is mounted either: the server writes nothing.
    assert all(mount.get("readOnly") for mount in container.get("volumeMounts", []))


def test_memory_covers_the_measured_worst_admitted_load(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """Requests and limits against benchmarks/reliability.json (one worker, fly.toml's
    environment), so a change that raises the measured peak fails here."""
    container = api_container(rendered["base"])
    env = {var["name"]: var.get("value") for var in container["env"]}
    fly_env = tomllib.loads((ROOT / "fly.toml").read_text())["env"]
    report = json.loads((ROOT / "benchmarks" / "reliability.json").read_text())
    budget = env["TASADOR_MAX_BODIES_IN_FLIGHT_BYTES"]
    # The rows run with fly.toml's budget, and the one that says it ran with this budget.
    this_budget = f" {int(budget) // MEBIBYTE} MiB in flight"
    measured = [
        row["peak_rss_mb"]
        for row in report["load"]
        if row["server"] == "current"
        and not row.get("killed")
        and ("in flight" not in row["name"] or this_budget in row["name"])
    ]
    idle = min(row["rss_before_mb"] for row in report["load"] if row["server"] == "current")
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]

    # Measured with the same budget and one worker: the figures apply.
    assert budget == fly_env["TASADOR_MAX_BODIES_IN_FLIGHT_BYTES"]
    assert env["WEB_CONCURRENCY"] == "1"
    assert len(measured) >= 3
    worst = max(measured)
    # docs/deployment/fly.md gives 490-560 MB for the worst load over several runs: the
    # request holds the high end, and the limit half as much again before the OOM killer.
    assert mebibytes(requests["memory"]) >= max(worst, 560)
    assert mebibytes(limits["memory"]) >= 1.5 * mebibytes(requests["memory"])
    assert mebibytes(requests["memory"]) > 4 * idle
    assert float(requests["cpu"]) >= 1  # one worker keeps about one core busy
    assert "cpu" not in limits  # throttling a worker only adds latency


def test_drains_within_the_grace_period(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod = the(rendered["base"], "Deployment")["spec"]["template"]["spec"]
    command = api_container(rendered["base"])["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"

    assert pod["terminationGracePeriodSeconds"] >= int(command[1]) + GRACEFUL_SHUTDOWN_S


def test_service_links_are_off_as_the_app_would_read_them(
    rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kubernetes gives a pod ``<SERVICE>_PORT=tcp://...`` for every Service in its
    namespace: for the Service named tasador that is TASADOR_PORT, this app's own setting."""
    pod = the(rendered["base"], "Deployment")["spec"]["template"]["spec"]
    service = the(rendered["base"], "Service")
    prefix = service["metadata"]["name"].upper().replace("-", "_")
    port = service["spec"]["ports"][0]["port"]
    monkeypatch.setenv(f"{prefix}_SERVICE_HOST", "10.96.0.12")
    monkeypatch.setenv(f"{prefix}_SERVICE_PORT", str(port))
    monkeypatch.setenv(f"{prefix}_PORT", f"tcp://10.96.0.12:{port}")

    assert pod["enableServiceLinks"] is False
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_service_autoscaler_and_budget_select_the_deployment(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["base"]
    deployment = the(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service, hpa = the(docs, "Service"), the(docs, "HorizontalPodAutoscaler")
    pdb = the(docs, "PodDisruptionBudget")
    port_names = {port["name"] for port in api_container(docs)["ports"]}

    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    # The autoscaler owns the count; two at least, so the budget lets one go at a time.
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["minReplicas"] >= 2
    assert pdb["spec"]["maxUnavailable"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_api_keys_come_from_an_optional_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    env = {var["name"]: var for var in api_container(rendered["base"])["env"]}
    name = ENV_PREFIX + "API_KEYS"

    assert "api_keys" in Settings.model_fields
    assert env[name]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_volume_bundle_serves_the_mounted_folder(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["overlays/volume-bundle"]
    container = api_container(docs)
    pod = the(docs, "Deployment")["spec"]["template"]["spec"]
    env = {var["name"]: var.get("value") for var in container["env"]}
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = the(docs, "PersistentVolumeClaim")

    assert Path(env[ENV_PREFIX + "MODEL_DIR"]).is_relative_to(mount["mountPath"])
    assert Path(env[ENV_PREFIX + "MODEL_DIR"]) != Path(mount["mountPath"])  # swapped atomically
    assert mount["readOnly"] is True
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    # The rest is the base's.
    base_env = {var["name"] for var in api_container(rendered["base"])["env"]}
    assert base_env | {ENV_PREFIX + "MODEL_DIR"} == set(env)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=name_of)
def test_the_rendered_environment_serves(
    rendered: dict[str, list[dict[str, Any]]], kustomization: Path, tmp_path: Path
) -> None:
    """``tasador serve`` with the container's environment as rendered (on 127.0.0.1 and a
    free port, the image's and the volume's folders mapped to folders here) starts, and its
    probes' routes answer."""
    docs = rendered[name_of(kustomization)]
    container = api_container(docs)
    env = {var["name"]: var["value"] for var in container["env"] if "value" in var}
    folders = {IMAGE_MODEL_DIR: ROOT / "models"}
    for mount in container.get("volumeMounts", []):
        folders[mount["mountPath"]] = tmp_path / mount["name"]
    model_dir = env.get(ENV_PREFIX + "MODEL_DIR", IMAGE_MODEL_DIR)
    mount_path = next(path for path in folders if Path(model_dir).is_relative_to(path))
    local = folders[mount_path] / Path(model_dir).relative_to(mount_path)
    if not local.exists():  # a volume: put the embedded bundle where the pod would find it
        shutil.copytree(ROOT / "models", local)
    env[ENV_PREFIX + "MODEL_DIR"] = str(local)

    with ServerProcess(TASADOR_SERVE, env=env) as server:
        for kind in ("readinessProbe", "livenessProbe"):
            path = container[kind]["httpGet"]["path"]
            with urllib.request.urlopen(server.url + path, timeout=10) as answer:
                assert answer.status == 200

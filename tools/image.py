"""The image: its build context, builds, containers of it, and what it weighs.

Used by ``tests/deploy/test_docker.py`` and to measure the figures in docs/deployment/docker.md,
on a private engine with the stand-in bases:

    sudo uv run python -m tools.image          # prints the tables (Markdown)
    sudo uv run python -m tools.image --docs   # and puts them in docs/deployment/docker.md

Every container publishes its port on 127.0.0.1 only, on a port the engine picks.
"""

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from docker.utils.build import exclude_paths

from tools.dockerd import DOCKER, Engine, EngineError
from tools.process import wait_ready

ROOT = Path(__file__).resolve().parent.parent
IMAGE_PORT = 8000
READY_PATH = "/ready"
# The front end (target ui): Streamlit's port, and its route that answers once it serves.
UI_PORT = 8501
UI_READY_PATH = "/_stcore/health"
BUILD_TIMEOUT_S = 1200
READY_TIMEOUT_S = 120
VENV = "/app/.venv"
# Build arguments Docker predefines: a proxy the host needs reaches the build's RUN
# steps, and is not stored in the image.
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def build_context(destination: Path, root: Path = ROOT) -> Path:
    """Copy the files ``.dockerignore`` admits into ``destination``, as ``docker build``
    sends them (docker-py's walker applies the same rules)."""
    patterns = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for relative in exclude_paths(str(root), patterns):
        source = root / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def build(
    engine: Engine,
    tag: str,
    *,
    target: str,
    bases: Mapping[str, str],
    context: Path = ROOT,
) -> float:
    """Build ``target`` of the Dockerfile as ``tag`` with base images ``bases`` (build
    arguments); the seconds it took."""
    arguments = [f"--build-arg={k}={v}" for k, v in bases.items()]
    arguments += [f"--build-arg={name}" for name in PROXY_ARGS if name in os.environ]
    started = time.perf_counter()
    engine.docker(
        "build",
        "--progress=plain",
        f"--target={target}",
        f"--tag={tag}",
        *arguments,
        context,
        timeout=BUILD_TIMEOUT_S,
    )
    return time.perf_counter() - started


def readable(bundle: Path) -> Path:
    """``bundle``, readable by the image's user (uid 10001), as a mounted bundle must be."""
    bundle.chmod(0o755)
    for path in bundle.iterdir():
        path.chmod(0o644)
    return bundle


def sklearn_only_bundle(source: Path, destination: Path) -> Path:
    """A copy of the bundle ``source`` without its compiled forest (``forest.onnx``): only
    scikit-learn can serve it. Readable by the image's user."""
    bundle = Path(shutil.copytree(source, destination))
    (bundle / "forest.onnx").unlink()
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["artefacts"]["forest.onnx"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return readable(bundle)


def volume(bundle: Path) -> str:
    """The ``docker run`` flag that serves ``bundle`` instead of the image's own."""
    return f"--volume={bundle}:/app/models:ro"


@dataclass(frozen=True)
class Sizes:
    """What an image weighs, in bytes: all of it, its base, each layer above the base."""

    total: int
    base: int
    layers: list[tuple[int, str]]  # (bytes, the instruction), top first

    @property
    def above_base(self) -> int:
        """Bytes of the layers the Dockerfile adds to its base."""
        return self.total - self.base


def sizes(engine: Engine, image: str, base: str) -> Sizes:
    """The sizes of ``image`` built on ``base``, as ``docker image ls`` counts them."""

    def size(name: str) -> int:
        return int(engine.docker("image", "inspect", "--format={{.Size}}", name).stdout)

    history = engine.docker("history", "--human=false", "--no-trunc", "--format={{json .}}", image)
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    total, base_size = size(image), size(base)
    layers, counted = [], 0
    for row in rows:  # top first; stop at the base's own layers
        if counted >= total - base_size:
            break
        layers.append((int(row["Size"]), row["CreatedBy"]))
        counted += int(row["Size"])
    return Sizes(total=total, base=base_size, layers=layers)


def site_packages(engine: Engine, image: str) -> dict[str, dict[str, int]]:
    """Distribution → bytes (and bytes of bytecode) in the image's environment."""
    script = (Path(__file__).parent / "sitesize.py").read_text()
    done = engine.docker(
        "run", "--rm", "--interactive", "--entrypoint=python", image, "-", VENV, stdin=script
    )
    found: dict[str, dict[str, int]] = json.loads(done.stdout)
    return found


class Container:
    """A container of ``image`` started with ``docker run -d [args]``, its port published
    on 127.0.0.1; a context manager that removes it on exit.

    ``port`` is the port the server listens on inside (``PORT``, 8000 by default), and
    ``ready_path`` the route that answers 200 once it serves (``UI_PORT`` and
    ``UI_READY_PATH`` for the front end).
    """

    def __init__(
        self,
        engine: Engine,
        image: str,
        *args: str,
        port: int = IMAGE_PORT,
        ready_path: str = READY_PATH,
        label: str = "",
    ) -> None:
        self.engine = engine
        self.docker = engine.docker
        self.image = image
        self.args = args
        self.port = port
        self.ready_path = ready_path
        self.label = label
        self.id = ""
        self.started = 0.0  # time.time() just before ``docker run``
        self.ready_s = 0.0  # from ``docker run`` to the first 200 on ``ready_path``
        self.ready_inside_s = 0.0  # from the container's start to the first 200

    def start(self) -> "Container":
        """``docker run -d``, without waiting for the server."""
        labels = [f"--label={self.label}"] if self.label else []
        self.started = time.time()
        self.id = self.docker(
            "run", "-d", *labels, f"--publish=127.0.0.1::{self.port}", *self.args, self.image
        ).stdout.strip()
        return self

    @functools.cached_property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` where the server's port is published."""
        published = self.docker("port", self.id, f"{self.port}/tcp").stdout.split()[0]
        return f"http://127.0.0.1:{published.rsplit(':', 1)[1]}"

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> "Container":
        """Wait for 200 on ``ready_path`` (``RuntimeError`` with the logs if the container
        stops first or time runs out); record how long it took."""
        url = self.url
        # ``docker wait`` returns when the container stops: wait_ready watches it.
        waiter = subprocess.Popen(
            [DOCKER, "wait", self.id],
            env={**os.environ, **self.engine.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(url + self.ready_path, waiter, timeout=timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.image}: {exc}; logs:\n{self.logs()}") from None
        finally:
            waiter.kill()
            waiter.wait()
        now = time.time()
        self.ready_s = now - self.started
        self.ready_inside_s = now - self.started_at()
        return self

    def started_at(self) -> float:
        """When the container's process started (the engine's clock is the host's)."""
        stamp = self.inspect("{{.State.StartedAt}}")
        # RFC 3339 with nanoseconds; datetime takes microseconds.
        head, _, fraction = stamp.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{head}.{fraction[:6].ljust(6, '0')}+00:00").timestamp()

    def inspect(self, template: str) -> str:
        """``docker inspect --format TEMPLATE`` of the container."""
        return self.docker("inspect", f"--format={template}", self.id).stdout.strip()

    def state(self) -> dict[str, Any]:
        """The container's ``State`` (``Running``, ``ExitCode``, ``Health``...)."""
        found: dict[str, Any] = json.loads(self.inspect("{{json .State}}"))
        return found

    def logs(self) -> str:
        """What the container printed (stdout, then stderr)."""
        done = self.docker("logs", self.id, check=False)
        return done.stdout + done.stderr

    def memory_mib(self) -> float:
        """The container's memory use now, as ``docker stats`` reports it."""
        usage = self.docker("stats", "--no-stream", "--format={{.MemUsage}}", self.id).stdout
        amount = usage.split("/")[0].strip()  # "195.3MiB / 7.5GiB"
        units = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}
        return float(amount[:-3]) * units[amount[-3:]]

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        """``docker exec`` a command in the container (not checked)."""
        return self.docker("exec", self.id, *command, check=False)

    def wait_exit(self, timeout: float = READY_TIMEOUT_S) -> int:
        """Wait for the container to stop by itself; its exit code."""
        return int(self.docker("wait", self.id, timeout=timeout).stdout)

    def remove(self) -> None:
        """Remove the container, running or not."""
        if self.id:
            self.docker("rm", "--force", self.id, check=False)

    def __enter__(self) -> "Container":
        try:
            return self.start()
        except BaseException:
            self.remove()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()


# ---------------------------------------------------------------------------------------
# python -m tools.image: the figures of docs/deployment/docker.md.

MB = 1e6
DASH = "\N{EN DASH}"
TARGETS = ("lean", "full", "ui")
PAGE = ROOT / "docs" / "deployment" / "docker.md"
MARKS = ("<!-- image:start -->", "<!-- image:end -->")
# The layers above the base, by what they hold (the columns of the size table).
KINDS = ("environment", "model", "code", "front end")
# The distributions (space-separated) that do one thing at run time, and what; the rest
# are counted as "others", and a name missing from every image is left out.
GROUPS = {
    "scipy": "nothing of its own: scikit-learn imports it",
    "pyarrow": "Streamlit sends tables and chart data to the browser as Arrow",
    "onnxruntime": "the serving engine: runs `forest.onnx`",
    "numpy": "feature rows, predictions, the start-up check",
    "pandas python-dateutil tzdata six": "the front end's CSV batches (and Streamlit's tables)",
    "scikit-learn": "the fallback engine: unpickles and runs `model.pkl`",
    "streamlit": "the front end: its server and its browser app",
    "pydeck pillow watchdog": "Streamlit's, unused by this app (deck.gl maps, images, reloads)",
    "uvloop": "uvicorn's event loop",
    "cryptography cffi pycparser": "bundle signatures (Ed25519)",
    "altair jsonschema jsonschema-specifications referencing rpds-py attrs": (
        "the front end's charts (Vega-Lite specs, checked against their schema)"
    ),
    "narwhals": "one API over dataframe libraries, for scikit-learn and altair",
    "pydantic pydantic-core pydantic-settings": "request validation; the settings",
    "fastapi starlette uvicorn httptools h11 anyio websockets python-multipart": (
        "the frameworks and the HTTP server (Streamlit's too)"
    ),
    "folium branca xyzservices jinja2 streamlit-folium": "the map to click on",
    "joblib threadpoolctl cloudpickle": "scikit-learn's (joblib reads `model.pkl`)",
    "fastapi-offline": "the assets of `/docs` and `/redoc`, served offline",
    "protobuf flatbuffers": "ONNX Runtime's (and Streamlit's messages)",
}


@dataclass(frozen=True)
class Start:
    """Start-ups of one image: seconds from ``docker run`` and from the container's start
    to ready, and the most memory ``docker stats`` saw once ready."""

    name: str
    outside: list[float]
    inside: list[float]
    memory_mib: float


@dataclass(frozen=True)
class Figures:
    """What ``python -m tools.image`` measures."""

    builds: dict[str, tuple[float, float]]  # target → (first build, with nothing changed) s
    changed_s: float  # lean, rebuilt after a change in app/
    weights: dict[str, Sizes]
    packages: dict[str, dict[str, dict[str, int]]]
    starts: list[Start]


def measure(engine: Engine, runs: int) -> Figures:
    """Build every target (first, then again), weigh them, time their start."""
    from tools import standins

    bases = standins.ensure(engine.env)
    builds, built = {}, {}
    for target in TARGETS:
        tag = f"tasador-figures:{target}"
        cold = build(engine, tag, target=target, bases=bases)
        warm = build(engine, tag, target=target, bases=bases)
        builds[target], built[target] = (cold, warm), tag
    with tempfile.TemporaryDirectory() as folder:
        context = build_context(Path(folder))
        with (context / "app" / "__init__.py").open("a") as changed:
            changed.write("# changed\n")
        after = build(
            engine, "tasador-figures:changed", target="lean", bases=bases, context=context
        )
    weights = {target: sizes(engine, tag, bases["PYTHON_IMAGE"]) for target, tag in built.items()}
    packages = {target: site_packages(engine, tag) for target, tag in built.items()}
    starts = []
    with tempfile.TemporaryDirectory() as folder:
        fallback = sklearn_only_bundle(ROOT / "models", Path(folder) / "models")
        front_end = {"port": UI_PORT, "ready_path": UI_READY_PATH}
        cases: list[tuple[str, str, list[str], dict[str, Any]]] = [
            ("lean, embedded", "lean", [], {}),
            ("full, embedded", "full", [], {}),
            ("full, without `forest.onnx` (scikit-learn serves)", "full", [volume(fallback)], {}),
            (f"ui (to `{UI_READY_PATH}`)", "ui", ["--tmpfs=/tmp"], front_end),
        ]
        for name, target, extra, where in cases:
            outside, inside, memory = [], [], 0.0
            for _ in range(runs):
                with Container(engine, built[target], "--read-only", *extra, **where) as container:
                    container.wait_ready()
                    outside.append(container.ready_s)
                    inside.append(container.ready_inside_s)
                    memory = max(memory, container.memory_mib())
            starts.append(Start(name, outside, inside, memory))
    for tag in (*built.values(), "tasador-figures:changed"):
        engine.docker("rmi", tag)
    return Figures(builds, after, weights, packages, starts)


def render(figures: Figures) -> str:
    """The figures as docs/deployment/docker.md shows them: Markdown."""
    lines = ["| image | total | base | above the base | " + " | ".join(KINDS) + " |"]
    lines.append("|---|---:|---:|---:|" + "---:|" * len(KINDS))
    for target, weight in figures.weights.items():
        by_kind = dict.fromkeys(KINDS, 0)
        for size, created in weight.layers:
            if (kind := layer_kind(created)) in by_kind:
                by_kind[kind] += size
        above = (
            f"**{_mb(weight.above_base)} MB**"
            if target == "lean"
            else _mb_or_dash(weight.above_base)
        )
        name = f"{target} (default)" if target == "lean" else target
        lines.append(
            f"| {name} | {_mb(weight.total)} MB | {_mb(weight.base)} MB | {above} | "
            + " | ".join(_mb_or_dash(by_kind[kind]) for kind in KINDS)
            + " |"
        )
    lines += ["", _packages_table(figures.packages), ""]
    runs = len(figures.starts[0].outside)
    lines.append("| image, bundle | `docker run` → ready | container start → ready | memory |")
    lines.append("|---|---|---|---:|")
    for start in figures.starts:
        lines.append(
            f"| {start.name} | {_spread(start.outside)} | {_spread(start.inside)} | "
            f"{start.memory_mib:.0f} MiB |"
        )
    cold = ", ".join(f"{t} {s[0]:.1f} s" for t, s in figures.builds.items())
    warm = max(s[1] for s in figures.builds.values())
    note = (
        f"Median and range of {runs} starts each, `--read-only` (the ui with `--tmpfs /tmp`), "
        f"on a {os.cpu_count()}-core machine; memory from `docker stats` once ready. Builds in "
        "a new engine, one target after the other (dependencies downloaded from PyPI): "
        f"{cold}; with nothing changed ≤ {warm:.1f} s; lean after a change in `app/` "
        f"{figures.changed_s:.1f} s."
    )
    lines += ["", textwrap.fill(note, width=88, break_on_hyphens=False)]
    return "\n".join(lines)


def _packages_table(packages: dict[str, dict[str, dict[str, int]]]) -> str:
    """Megabytes per group of distributions, per image, largest first; then the others."""
    targets = list(packages)
    present = {name for found in packages.values() for name in found}
    rows = []  # (label, names, what they do)
    for group, role in GROUPS.items():
        if names := [name for name in group.split() if name in present]:
            rows.append((", ".join(names), names, role))
    rows.sort(key=lambda row: -_largest(packages, row[1]))
    grouped = {name for group in GROUPS for name in group.split()}
    others = sorted(present - grouped, key=lambda name: (-_largest(packages, [name]), name))
    if others:
        rows.append((f"{len(others)} others ({', '.join(others[:3])}, ...)", others, ""))
    lines = [
        "| distributions in the environment | " + " | ".join(targets) + " | what they do |",
        "|---|" + "---:|" * len(targets) + "---|",
    ]
    for label, names, role in rows:
        cells = " | ".join(_mb_or_dash(_bytes(packages[t], names)) for t in targets)
        lines.append(f"| {label} | {cells} | {role} |")
    totals = " | ".join(
        f"**{_mb(_bytes(found, list(found)))} MB** ({_mb(sum(d['pyc'] for d in found.values()))})"
        for found in packages.values()
    )
    lines.append(f"| **all** (of which compiled bytecode) | {totals} | |")
    return "\n".join(lines)


def _largest(packages: dict[str, dict[str, dict[str, int]]], names: Sequence[str]) -> int:
    return max(_bytes(found, names) for found in packages.values())


def _bytes(found: dict[str, dict[str, int]], names: Sequence[str]) -> int:
    return sum(found[name]["bytes"] for name in names if name in found)


def _mb(size: float) -> str:
    return f"{size / MB:,.1f}"


def _mb_or_dash(size: float) -> str:
    return f"{_mb(size)} MB" if size else DASH


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}{DASH}{max(values):.2f})"


def layer_kind(created_by: str) -> str:
    """What the layer made by the instruction ``created_by`` holds: one of ``KINDS``, else
    "user" (the user and working folder)."""
    if "/app/.venv" in created_by:
        return "environment"
    if "models" in created_by:
        return "model"
    if "/project/" in created_by:
        return "code"
    if "./ui" in created_by:
        return "front end"
    return "user"


def main(argv: Sequence[str] | None = None) -> int:
    """Measure on a private engine (started in a temporary folder, then removed)."""
    parser = argparse.ArgumentParser(prog="python -m tools.image", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="start-ups timed per image")
    parser.add_argument(
        "--docs", action="store_true", help="also put the tables in docs/deployment/docker.md"
    )
    args = parser.parse_args(argv)
    try:
        with Engine(Path(tempfile.mkdtemp(prefix="tasador-engine-")), purge=True) as engine:
            tables = render(measure(engine, args.runs))
    except EngineError as exc:
        print(f"tools.image: {exc}", file=sys.stderr)
        return 1
    print(tables)
    if args.docs:
        from benchmarks.run import update_docs

        update_docs(tables, PAGE, MARKS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

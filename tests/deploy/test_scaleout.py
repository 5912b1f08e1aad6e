"""Replicas behind HAProxy: a replica killed, another restarted, no client request lost;
``python -m scaleout`` stopped by a signal leaves nothing behind."""

import asyncio
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pytest

from app.bundle.loader import load_bundle
from app.schemas.formulario import Formulario
from app.schemas.prediccion import Prediccion
from scaleout.__main__ import main
from scaleout.cluster import Cluster
from tests.helpers import sample_homes
from tools.process import ServerProcess, free_port, port_is_free

pytestmark = pytest.mark.scaleout

CONCURRENCY = 8
MAX_REQUESTS = 50_000  # bounds, whatever happens
MAX_SECONDS = 90
AFTER_CHAOS = 300  # requests still sent once the restarted replica is back
STOPS_WITHIN_S = 20
ROOT = Path(__file__).resolve().parents[2]


class Chaos(threading.Thread):
    """Kills replica 0 (SIGKILL), then stops (SIGTERM) and restarts replica 1, each step
    once enough responses have come back; the load runs on throughout."""

    def __init__(self, cluster: Cluster, answered: list[int]) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.answered = answered
        self.steps: list[tuple[str, int]] = []
        self.done = threading.Event()

    def _after(self, count: int) -> None:
        while self.answered[0] < count:
            time.sleep(0.005)

    def run(self) -> None:
        try:
            self._after(200)
            self.cluster.kill(0)
            self.steps.append(("killed replica 0", self.answered[0]))
            self._after(self.answered[0] + 300)
            self.cluster.stop(1)
            self.steps.append(("stopped replica 1", self.answered[0]))
            self.cluster.start(1)
            self.steps.append(("restarted replica 1", self.answered[0]))
        finally:
            self.done.set()


async def _load(url: str, homes: list[dict[str, Any]], chaos: Chaos) -> list[Any]:
    outcomes: list[Any] = []
    deadline = time.monotonic() + MAX_SECONDS
    limits = httpx2.Limits(max_connections=CONCURRENCY)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker(offset: int) -> None:
            i = offset
            while len(outcomes) < MAX_REQUESTS and time.monotonic() < deadline:
                if chaos.done.is_set() and chaos.answered[0] > chaos.steps[-1][1] + AFTER_CHAOS:
                    return
                home = i % len(homes)
                try:
                    response = await client.post("/predecir", json=homes[home])
                    outcomes.append((home, response.status_code, response.text))
                except httpx2.HTTPError as exc:
                    outcomes.append((home, None, repr(exc)))
                chaos.answered[0] += 1
                i += CONCURRENCY

        await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
    return outcomes


def test_no_request_is_lost_while_replicas_die_and_restart(tiny_bundle: Path) -> None:
    homes = sample_homes(16)
    bundle = load_bundle(tiny_bundle)
    expected = bundle.engine.predict(bundle.features.matrix([Formulario(**h) for h in homes]))

    with Cluster(3, tiny_bundle) as cluster:
        chaos = Chaos(cluster, answered := [0])
        chaos.start()
        outcomes = asyncio.run(_load(cluster.url, homes, chaos))
        chaos.join(timeout=60)

    assert [name for name, _ in chaos.steps] == [
        "killed replica 0",
        "stopped replica 1",
        "restarted replica 1",
    ]
    assert answered[0] > chaos.steps[-1][1]  # load went on after the restart
    failures = [o for o in outcomes if o[1] != 200]
    assert failures == [], f"{len(failures)} of {len(outcomes)} failed, e.g. {failures[:3]}"
    for home, _, text in outcomes:
        answer = Prediccion.model_validate_json(text)
        assert answer.modelo == bundle.version
        assert np.isclose(answer.precio, round(float(expected[home]), 2))


def test_cluster_needs_at_least_one_replica() -> None:
    with pytest.raises(ValueError, match="at least one replica"):
        Cluster(0)


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, each with its start time (a pid may be reused)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)"
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            found[int(stat.parent.name)] = fields[19]  # ppid is field 4, starttime 22
    return found


def _running(processes: dict[int, str]) -> list[int]:
    """Those of ``processes`` still running (a zombie is not)."""
    alive = []
    for pid, started in processes.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == started and fields[0] != "Z":
            alive.append(pid)
    return alive


@pytest.mark.parametrize(
    ("sig", "group"),
    [
        pytest.param(signal.SIGTERM, False, id="SIGTERM"),
        # What a Ctrl-C at the terminal does: SIGINT to the whole foreground process group.
        pytest.param(signal.SIGINT, True, id="ctrl-c"),
    ],
)
def test_a_signal_stops_everything_and_removes_the_folder(
    tiny_bundle: Path, tmp_path: Path, sig: signal.Signals, group: bool
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    replica_ports = [free_port(), free_port()]
    command = [
        *(sys.executable, "-m", "scaleout", "--port", "{port}", "--model-dir", str(tiny_bundle)),
        *("--replica-ports", ",".join(map(str, replica_ports))),
    ]
    children: dict[int, str] = {}
    try:
        with ServerProcess(
            command, env={"TMPDIR": str(temp)}, cwd=ROOT, process_group=group
        ) as cli:
            children = _children(cli.pid)
            (folder,) = temp.glob("tasador-scaleout-*")  # replicas put more there
            logs = sorted(path.name for path in folder.iterdir())
            started = time.monotonic()
            code = cli.stop(sig)
            took = time.monotonic() - started
            output = cli.output()

        assert len(children) == 3, children  # two replicas and HAProxy
        assert logs == ["haproxy.cfg", "haproxy.log", "replica-0.log", "replica-1.log"]
        assert (code, took < STOPS_WITHIN_S) == (0, True), output
        assert _running(children) == []
        assert list(temp.glob("tasador-scaleout-*")) == []
        assert all(port_is_free(port) for port in [cli.port, *replica_ports])
        assert "Traceback" not in output
        assert output.endswith(f"{sig.name}: stopped HAProxy and the replicas, removed {folder}.\n")
    finally:
        for pid in _running(children):  # orphans of a failed run
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--replicas", "3", "--replica-ports", "{a},{b}"],
            "3 replica(s) need 3 port(s), got 2: {a}, {b}",
            id="count",
        ),
        pytest.param(
            ["--replica-ports", "{a},{busy}"],
            "port {busy} for replica 1 is already in use on 127.0.0.1",
            id="busy-replica-port",
        ),
        pytest.param(
            ["--port", "{busy}"],
            "port {busy} for HAProxy is already in use on 127.0.0.1",
            id="busy-haproxy-port",
        ),
        pytest.param(
            ["--replica-ports", "{a},{b}", "--port", "{a}"],
            "port {a} is asked for both replica 0 and HAProxy",
            id="twice",
        ),
    ],
)
def test_ports_that_cannot_be_used_are_refused_before_anything_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {"a": free_port(), "b": free_port(), "busy": busy.getsockname()[1]}

        code = main([arg.format(**ports) for arg in args])

    assert code == 2
    assert capsys.readouterr().err == f"python -m scaleout: {message.format(**ports)}\n"
    assert list(tmp_path.iterdir()) == []  # not even the folder of logs

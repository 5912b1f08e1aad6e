"""Starts N tasador replicas on 127.0.0.1 ports and HAProxy in front of them.

Each replica is a separate ``tasador serve`` process (one worker): the service is
stateless, so replicas need nothing from each other. HAProxy (Debian package ``haproxy``)
health-checks ``/ready`` and retries a failed attempt on another replica.

Replicas and HAProxy run in sessions of their own, so a Ctrl-C at the terminal reaches only
the process that owns the cluster, which stops them in order.
"""

import shutil
import signal
import string
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from tools.process import ServerProcess, free_port, port_is_free, wait_ready

TEMPLATE = Path(__file__).with_name("haproxy.cfg.template")
HAPROXY_STOP_TIMEOUT_S = 10


class Cluster:
    """N replicas plus HAProxy; a context manager that stops everything on exit."""

    def __init__(
        self,
        replicas: int,
        model_dir: Path | None = None,
        port: int = 0,
        replica_ports: Sequence[int] | None = None,
    ) -> None:
        if replicas < 1:
            raise ValueError("at least one replica")
        if replica_ports is not None and len(replica_ports) != replicas:
            raise ValueError(
                f"{replicas} replica(s) need {replicas} port(s), "
                f"got {len(replica_ports)}: {', '.join(map(str, replica_ports))}"
            )
        if shutil.which("haproxy") is None:
            raise RuntimeError("haproxy is not installed (Debian: apt-get install haproxy)")
        self.model_dir = model_dir
        self.ports = list(replica_ports) if replica_ports is not None else _free_ports(replicas)
        self.port = port or _free_ports(1, avoid=self.ports)[0]
        _check_ports(
            [*((port, f"replica {i}") for i, port in enumerate(self.ports)), (self.port, "HAProxy")]
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.replicas: list[ServerProcess | None] = [None] * replicas
        self.folder = Path(tempfile.mkdtemp(prefix="tasador-scaleout-"))  # the logs
        self._haproxy: subprocess.Popen[bytes] | None = None
        self._logs: list[BinaryIO] = []

    def __enter__(self) -> "Cluster":
        try:
            for index in range(len(self.ports)):
                self.start(index)
            config = self.folder / "haproxy.cfg"
            servers = "\n".join(
                f"    server r{i} 127.0.0.1:{port}" for i, port in enumerate(self.ports)
            )
            config.write_text(
                string.Template(TEMPLATE.read_text()).substitute(
                    frontend_port=self.port, servers=servers
                )
            )
            subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], check=True)
            self._haproxy = subprocess.Popen(
                ["haproxy", "-db", "-f", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=self._log("haproxy.log"),
                start_new_session=True,
            )
            wait_ready(f"{self.url}/ready", self._haproxy)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self, index: int) -> None:
        """Start replica ``index`` on its port and wait until it is ready."""
        env = {"TASADOR_LOG_LEVEL": "warning"}
        if self.model_dir is not None:
            env["TASADOR_MODEL_DIR"] = str(self.model_dir)
        replica = ServerProcess(
            env=env,
            port=self.ports[index],
            log=self._log(f"replica-{index}.log"),
            process_group=True,
        )
        self.replicas[index] = replica
        replica.start()

    def _log(self, name: str) -> BinaryIO:
        handle = (self.folder / name).open("ab")
        self._logs.append(handle)
        return handle

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index``: it dies with requests in flight."""
        self._signal(index, signal.SIGKILL)

    def stop(self, index: int) -> None:
        """SIGTERM replica ``index`` and wait while it drains and exits."""
        self._signal(index, signal.SIGTERM)

    def _signal(self, index: int, sig: signal.Signals) -> None:
        replica = self.replicas[index]
        if replica is not None:
            replica.stop(sig)
        self.replicas[index] = None

    def close(self) -> None:
        """Stop HAProxy and every replica, and remove the folder of logs.

        Everything is sent SIGTERM before anything is waited for: a close cut short (by a
        signal) still leaves nothing running, and the replicas stop side by side."""
        try:
            if self._haproxy is not None and self._haproxy.poll() is None:
                self._haproxy.terminate()
            for replica in self.replicas:
                if replica is not None:
                    replica.send_signal(signal.SIGTERM)
            if self._haproxy is not None:
                try:
                    self._haproxy.wait(timeout=HAPROXY_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self._haproxy.kill()
                    self._haproxy.wait()
            for index, replica in enumerate(self.replicas):
                if replica is not None:
                    replica.wait()
                self.replicas[index] = None
        finally:
            for handle in self._logs:
                handle.close()
            shutil.rmtree(self.folder, ignore_errors=True)


def _free_ports(count: int, avoid: Sequence[int] = ()) -> list[int]:
    """``count`` different free ports, none of them in ``avoid``."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port not in avoid:
            ports.append(port)
    return ports


def _check_ports(users: list[tuple[int, str]]) -> None:
    """Refuse, naming it, a port out of range, asked for twice, or one something already
    listens on."""
    taken: dict[int, str] = {}
    for port, user in users:
        if port in taken:
            raise ValueError(f"port {port} is asked for both {taken[port]} and {user}")
        taken[port] = user
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} for {user} is not a TCP port (1 to 65535)")
        if not port_is_free(port):
            raise ValueError(f"port {port} for {user} is already in use on 127.0.0.1")

"""Starts N tasador replicas on 127.0.0.1 ports and HAProxy in front of them.

Each replica is a separate ``tasador serve`` process (one worker): the service is
stateless, so replicas need nothing from each other. HAProxy (Debian package ``haproxy``)
health-checks ``/ready`` and retries a failed attempt on another replica.
"""

import shutil
import signal
import string
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from tools.process import ServerProcess, free_port, wait_ready

TEMPLATE = Path(__file__).with_name("haproxy.cfg.template")


class Cluster:
    """N replicas plus HAProxy; a context manager that stops everything on exit."""

    def __init__(self, replicas: int, model_dir: Path | None = None, port: int = 0) -> None:
        if replicas < 1:
            raise ValueError("at least one replica")
        if shutil.which("haproxy") is None:
            raise RuntimeError("haproxy is not installed (Debian: apt-get install haproxy)")
        self.model_dir = model_dir
        self.ports = [free_port() for _ in range(replicas)]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.replicas: list[ServerProcess | None] = [None] * replicas
        self._dir = Path(tempfile.mkdtemp(prefix="tasador-scaleout-"))
        self._haproxy: subprocess.Popen[bytes] | None = None
        self._logs: list[BinaryIO] = []

    def __enter__(self) -> "Cluster":
        try:
            for index in range(len(self.ports)):
                self.start(index)
            config = self._dir / "haproxy.cfg"
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
            env=env, port=self.ports[index], log=self._log(f"replica-{index}.log")
        )
        self.replicas[index] = replica
        replica.start()

    def _log(self, name: str) -> BinaryIO:
        handle = (self._dir / name).open("ab")
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
        """Stop HAProxy and every replica."""
        if self._haproxy is not None and self._haproxy.poll() is None:
            self._haproxy.terminate()
            self._haproxy.wait(timeout=10)
        for index in range(len(self.replicas)):
            self.stop(index)
        for handle in self._logs:
            handle.close()
        shutil.rmtree(self._dir, ignore_errors=True)

"""Starts N tasador replicas on 127.0.0.1 ports and HAProxy in front of them.

Each replica is a separate ``tasador serve`` process (one worker): the service is
stateless, so replicas need nothing from each other. HAProxy (Debian package ``haproxy``)
health-checks ``/ready`` and retries a failed attempt on another replica.
"""

import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

TEMPLATE = Path(__file__).with_name("haproxy.cfg.template")
READY_TIMEOUT_S = 120


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200; raise if ``process`` exits or time runs out."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within {READY_TIMEOUT_S} s")


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
        self.replicas: list[subprocess.Popen[bytes] | None] = [None] * replicas
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
        env = {**os.environ, "TASADOR_LOG_LEVEL": "warning"}
        if self.model_dir is not None:
            env["TASADOR_MODEL_DIR"] = str(self.model_dir)
        log = self._log(f"replica-{index}.log")
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.ports[index])],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.replicas[index] = process
        wait_ready(f"http://127.0.0.1:{self.ports[index]}/ready", process)

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
        process = self.replicas[index]
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            process.wait(timeout=60)
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

"""Start a server process on 127.0.0.1, wait until it is ready, and stop it.

The one way tests, benchmarks and ``scaleout`` run ``tasador serve`` (or any server with a
``/ready`` route) in a process of its own.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60
TASADOR_SERVE = (sys.executable, "-m", "app.cli", "serve")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now: nothing listens on it (a
    connection of the past, in TIME_WAIT, does not count, as servers set SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_ready(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = READY_TIMEOUT_S
) -> None:
    """Poll ``url`` until it answers 200; raise if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{url} not ready within {timeout} s")


class ServerProcess:
    """A server on ``127.0.0.1:<port>``; a context manager that waits for ``/ready`` on entry
    and stops it (SIGTERM, then SIGKILL) on exit.

    ``command`` gets ``--port N`` appended unless it holds ``{port}``; its output goes to
    ``log`` (a file) or to a temporary file that ``output()`` reads back.
    """

    def __init__(
        self,
        command: Sequence[str] = TASADOR_SERVE,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log: IO[bytes] | None = None,
        ready_path: str = "/ready",
        cwd: Path | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
        process_group: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if any("{port}" in part for part in command):
            self.args = [part.format(port=self.port) for part in command]
        else:
            self.args = [*command, "--port", str(self.port)]
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.ready_path = ready_path
        self.ready_timeout = ready_timeout
        # A server that starts workers of its own (mlflow server, streamlit) runs in a
        # process group of its own, and stop() signals the whole group.
        self.process_group = process_group
        self._own_log = log is None
        # Closed in __exit__ when it is ours.
        self.log: IO[bytes] = log if log is not None else tempfile.TemporaryFile()  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_s = 0.0

    def start(self) -> "ServerProcess":
        """Start the process and wait until it is ready (``ready_s`` says how long)."""
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=self.process_group,
        )
        try:
            wait_ready(self.url + self.ready_path, self.process, self.ready_timeout)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}; output:\n{self.output()}") from None
        self.ready_s = time.perf_counter() - started
        return self

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._own_log:
            self.log.close()

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None, "not started"
        return self.process.pid

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the server."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Stop the server with ``sig`` (SIGKILL if it outlives the timeout); its exit code."""
        if self.process is not None and self.process.poll() is None:
            self._signal(sig)
        return self.wait()

    def wait(self) -> int | None:
        """Wait until the server exits (SIGKILL if it outlives the timeout); its exit code.

        With ``send_signal`` first, this stops several servers at once."""
        if self.process is None:
            return None
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()
        if self.process_group:
            with contextlib.suppress(ProcessLookupError):  # children outliving the leader
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        if self.process_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)

    def output(self) -> str:
        """What the server has printed so far (when it writes to its own log)."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def memory_mb(self) -> dict[str, float]:
        """Resident memory now and at its peak, from /proc."""
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
        return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}

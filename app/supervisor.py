"""The supervisor of ``tasador serve --workers N``: uvicorn's, but SIGHUP reloads the model
in each worker instead of replacing every worker.

uvicorn's supervisor answers SIGHUP by starting a new worker for each old one and stopping
the old: every signal cost a full round of worker restarts, and each new worker left its
files in the Prometheus multiprocess folder. Each worker already reloads on its own
SIGHUP (``app.reload``: verified, then switched, no request dropped, signals during a
reload coalesced), so this supervisor passes the signal on: once per worker for all the
signals that arrived since its last look (it looks every half second), and to a worker
only once it is ready (before, the worker would die of it; it is loading the bundle from
disk anyway).

``ReloadingSupervisor`` extends uvicorn's ``Multiprocess``, an internal class:
``pyproject.toml`` bounds uvicorn, and ``tests/test_supervisor.py`` fails loudly if the
members it relies on (``SUPERVISOR_HOOKS``) change.
"""

import contextlib
import logging
import os
import signal
from socket import socket

from uvicorn.config import Config
from uvicorn.supervisors.multiprocess import Multiprocess

log = logging.getLogger("uvicorn.error")

# The Multiprocess methods and attributes overridden or used below; the tests check them.
SUPERVISOR_HOOKS = ("handle_hup", "handle_signals", "processes", "run")


class ReloadingSupervisor(Multiprocess):
    """uvicorn's supervisor of several workers, passing SIGHUP on to each worker."""

    def __init__(self, config: Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets)
        self._owed: set[int] = set()  # workers a SIGHUP is still to be passed on to

    def handle_hup(self) -> None:
        """SIGHUP: each worker is to reload its model (as it does on its own SIGHUP)."""
        if not self._owed:
            log.info("Received SIGHUP, reloading the model in each worker.")
        self._owed = {process.pid for process in self.processes if process.pid is not None}

    def handle_signals(self) -> None:
        """The queued signals, then SIGHUP passed on to each worker that is owed one."""
        super().handle_signals()
        if self._owed:
            self._pass_on()

    def _pass_on(self) -> None:
        live = {process.pid for process in self.processes}
        self._owed &= live  # a worker started since loads the bundle of now anyway
        for process in self.processes:
            pid = process.pid
            if pid in self._owed and pid is not None and process.is_ready(timeout=1):
                # It may have died meanwhile: its successor loads the bundle afresh.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)
                self._owed.discard(pid)

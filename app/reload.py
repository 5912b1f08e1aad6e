"""Model swap without a dropped request: on SIGHUP, load the bundle again and switch.

The new bundle is read and verified in a worker thread while the current one keeps
serving; only a bundle that passes every start-up check replaces it, by one reference
assignment. A request takes the bundle once when it starts, so requests in flight finish
on the bundle they began with.

Every reload ends, applied or refused, with one log line and one count in
``tasador_model_reloads_total``: a bundle that fails its checks, a load that fails in a
way nobody foresaw (logged with its traceback: a bug), and a load still running after
``reload_timeout`` seconds (its thread is left to finish on its own, and whatever it
loads is dropped). The service goes on with the bundle it has. One reload runs at a
time; the signals that arrive during it make one more reload after it, however many
they are (the bundle may have changed after the running one read it).
"""

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from typing import cast

from fastapi import FastAPI

from app.allocator import return_freed_memory
from app.bundle.loader import Bundle, BundleError
from app.bundle.source import load_served_bundle
from app.config import Settings
from app.monitoring import Instruments

log = logging.getLogger("tasador")


class ReloadTimeoutError(BundleError):
    """The bundle was not loaded within ``reload_timeout`` seconds."""


async def reload_bundle(app: FastAPI) -> Bundle:
    """Load, verify and switch to the configured bundle (the folder, or the MLflow URI
    resolved again); the old one serves until then and stays when the new one is refused
    (``BundleError`` is raised) or its load fails (the exception is raised)."""
    settings: Settings = app.state.settings
    lock: asyncio.Lock = app.state.reload_lock
    instruments: Instruments = app.state.instruments
    async with lock:
        current: Bundle | None = app.state.bundle
        kept = current.version if current else "nothing"
        try:
            bundle = await _load_within(settings)
        except BundleError as exc:
            log.error("model reload refused, still serving %s: %s", kept, exc)
            instruments.reloaded(success=False)
            raise
        except Exception as exc:
            log.exception(
                "model reload failed, still serving %s: %s: %s", kept, type(exc).__name__, exc
            )
            instruments.reloaded(success=False)
            raise
        app.state.bundle = bundle
        instruments.reloaded(success=True)
        instruments.serving(bundle.version, bundle.engine.name)
        log.info(
            "model reloaded: now serving %s (was %s) with %s",
            bundle.version,
            kept,
            bundle.engine.name,
        )
        # The old bundle is freed here (unless a request in flight still holds it), and
        # glibc keeps what is freed: without handing it back, resident memory grows by
        # about a bundle's worth over the first reloads (docs/operations/reliability.md).
        del current
        await asyncio.to_thread(return_freed_memory)
        return bundle


async def _load_within(settings: Settings) -> Bundle:
    """The served bundle, loaded in a thread; ``ReloadTimeoutError`` after
    ``settings.reload_timeout`` seconds. A thread cannot be stopped: one that has not
    ended is abandoned, and being a daemon it holds up neither the next reload nor the
    process's exit (the event loop's own executor would wait for it at shutdown)."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Bundle] = loop.create_future()

    def settle(result: Bundle | None, error: BaseException | None) -> None:
        if outcome.done():  # abandoned meanwhile
            return
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(cast(Bundle, result))

    def load() -> None:
        result, error = None, None
        try:
            result = load_served_bundle(settings)
        except BaseException as exc:  # handed to the event loop, which raises it there
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=load, name="reload", daemon=True).start()
    try:
        return await asyncio.wait_for(outcome, settings.reload_timeout)
    except TimeoutError:
        raise ReloadTimeoutError(
            f"the bundle was not loaded within {settings.reload_timeout:g} s "
            "(TASADOR_RELOAD_TIMEOUT); the load was abandoned"
        ) from None


class _SignalledReloads:
    """One reload at a time on SIGHUP; signals during it make a single one more."""

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self._app = app
        self._loop = loop
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def signalled(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        again = True
        while again:
            self._again = False
            with contextlib.suppress(Exception):  # logged and counted by reload_bundle
                await reload_bundle(self._app)
            again = self._again

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def reload_on_sighup(app: FastAPI) -> Callable[[], object]:
    """Reload the bundle whenever the process gets SIGHUP; returns the uninstaller.

    Only possible when the event loop runs in the main thread (as under uvicorn); where it
    is not (a test client), this does nothing.
    """
    loop = asyncio.get_running_loop()
    app.state.reload_lock = asyncio.Lock()
    reloads = _SignalledReloads(app, loop)
    try:
        loop.add_signal_handler(signal.SIGHUP, reloads.signalled)
    except (RuntimeError, ValueError, NotImplementedError):  # not the main thread / no SIGHUP
        return lambda: None

    def uninstall() -> None:
        loop.remove_signal_handler(signal.SIGHUP)
        reloads.stop()

    return uninstall

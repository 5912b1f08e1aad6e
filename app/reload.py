"""Model swap without a dropped request: on SIGHUP, load the bundle again and switch.

The new bundle is read and verified in a worker thread while the current one keeps
serving; only a bundle that passes every start-up check replaces it, by one reference
assignment. A request takes the bundle once when it starts, so requests in flight finish
on the bundle they began with. A bundle that fails its checks is refused with one log
line, and the service goes on with the one it has.
"""

import asyncio
import logging
import signal
from collections.abc import Callable

from fastapi import FastAPI

from app.allocator import return_freed_memory
from app.bundle.loader import Bundle, BundleError
from app.bundle.source import load_served_bundle
from app.config import Settings
from app.monitoring import Instruments

log = logging.getLogger("tasador")


async def reload_bundle(app: FastAPI) -> Bundle:
    """Load, verify and switch to the configured bundle (the folder, or the MLflow URI
    resolved again); the old one serves until then and stays when the new one is refused
    (``BundleError`` is raised)."""
    settings: Settings = app.state.settings
    lock: asyncio.Lock = app.state.reload_lock
    instruments: Instruments = app.state.instruments
    async with lock:
        current: Bundle | None = app.state.bundle
        try:
            bundle = await asyncio.to_thread(load_served_bundle, settings)
        except BundleError as exc:
            kept = current.version if current else "nothing"
            log.error("model reload refused, still serving %s: %s", kept, exc)
            instruments.reloaded(success=False)
            raise
        app.state.bundle = bundle
        instruments.reloaded(success=True)
        instruments.serving(bundle.version, bundle.engine.name)
        log.info(
            "model reloaded: now serving %s (was %s) with %s",
            bundle.version,
            current.version if current else "nothing",
            bundle.engine.name,
        )
        # The old bundle is freed here (unless a request in flight still holds it), and
        # glibc keeps what is freed: without handing it back, resident memory rose by
        # about a bundle's worth over the first reloads (the reload table of
        # ``uv run python -m benchmarks.reliability``).
        del current
        await asyncio.to_thread(return_freed_memory)
        return bundle


def reload_on_sighup(app: FastAPI) -> Callable[[], object]:
    """Reload the bundle whenever the process gets SIGHUP; returns the uninstaller.

    Only possible when the event loop runs in the main thread (as under uvicorn); where it
    is not (a test client), this does nothing.
    """
    loop = asyncio.get_running_loop()
    app.state.reload_lock = asyncio.Lock()
    tasks: set[asyncio.Task[Bundle]] = set()

    def on_sighup() -> None:
        task = loop.create_task(reload_bundle(app))
        tasks.add(task)
        task.add_done_callback(_forget(tasks))

    try:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    except (RuntimeError, ValueError, NotImplementedError):  # not the main thread / no SIGHUP
        return lambda: None
    return lambda: loop.remove_signal_handler(signal.SIGHUP)


def _forget(tasks: set[asyncio.Task[Bundle]]) -> Callable[[asyncio.Task[Bundle]], None]:
    def done(task: asyncio.Task[Bundle]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # already logged; retrieving it keeps asyncio quiet

    return done

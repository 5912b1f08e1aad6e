"""tasador serve --workers N: SIGHUP reloads the model in each worker, without restarts."""

import inspect
import json
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from app.supervisor import SUPERVISOR_HOOKS
from tests.helpers import TINY, train_quietly
from tools.process import TASADOR_SERVE, ServerProcess


def test_the_uvicorn_members_it_extends_are_still_there() -> None:
    # A new uvicorn release that renames or drops one of these must fail here, loudly.
    assert uvicorn.__version__.startswith("0.55."), uvicorn.__version__
    source = inspect.getsource(Multiprocess)
    for name in SUPERVISOR_HOOKS:
        attribute = re.search(rf"self\.{name}\b[^=\n]*=", source)
        assert callable(getattr(Multiprocess, name, None)) or attribute, name
    assert callable(Process.is_ready)
    assert isinstance(Process.pid, property)
    assert "sig_handler()" in inspect.getsource(Multiprocess.handle_signals)


def test_a_burst_of_sighups_reloads_each_worker_in_place(tiny_bundle: Path, tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(tiny_bundle, tmp_path / "models"))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {"TASADOR_MODEL_DIR": str(model_dir), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    command = [*TASADOR_SERVE, "--port", "{port}", "--workers", "2"]
    with ServerProcess(command, env=env) as server:
        _wait_for(lambda: len(_worker_pids(metrics)) == 2, what="two workers")
        workers = _worker_pids(metrics)
        train_quietly(model_dir, replace(TINY, seed=321))
        new = json.loads((model_dir / "manifest.json").read_text())["version"]
        for _ in range(30):
            server.send_signal(signal.SIGHUP)
        reloaded = f"model reloaded: now serving {new}"
        _wait_for(lambda: server.output().count(reloaded) >= 2, what="both reloads")
        time.sleep(1)  # the supervisor looks every 0.5 s: a late extra reload shows by now
        after = _worker_pids(metrics)
        server.stop()
        output = server.output()

    assert "restarting processes" not in output
    assert output.count("Started server process") == 2  # no worker replaced
    assert 2 <= output.count(reloaded) <= 4  # per worker: one, and one for signals during it
    assert "model reload refused" not in output
    # No file of any other process in the metrics folder (a worker may still add a kind of
    # file it had not written yet, such as a gauge first set by its reload).
    assert after == workers


def _worker_pids(folder: Path) -> set[int]:
    return {int(m[1]) for p in folder.iterdir() if (m := re.search(r"_(\d+)\.db$", p.name))}


def _wait_for(check: Callable[[], object], what: str, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {within_s} s")

"""Swapping the model while serving: SIGHUP reloads the bundle; no request is dropped."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.bundle import BundleError
from app.reload import reload_bundle
from app.schemas import FORMULARIO_EJEMPLO
from scaleout.cluster import free_port, wait_ready
from tests.conftest import TINY, make_client, train_quietly
from tests.helpers import post_json


def _version(bundle_dir: Path) -> str:
    version: str = json.loads((bundle_dir / "manifest.json").read_text())["version"]
    return version


def test_reload_switches_to_a_new_bundle(bundle_copy: Path, formulario: dict[str, Any]) -> None:
    old = _version(bundle_copy)
    with make_client(bundle_copy) as client:
        train_quietly(bundle_copy, replace(TINY, seed=123))  # retrained in place, atomically
        before = client.get("/modelo").json()["version"]
        assert client.portal is not None
        client.portal.call(reload_bundle, client.app)
        after = client.post("/predecir", json=formulario).json()["modelo"]

    assert before == old
    assert after == _version(bundle_copy) != old


def test_a_bad_bundle_is_refused_and_the_old_one_keeps_serving(
    bundle_copy: Path, formulario: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    old = _version(bundle_copy)
    with make_client(bundle_copy) as client:
        with (bundle_copy / "model.pkl").open("ab") as handle:
            handle.write(b"tampered")
        assert client.portal is not None
        with pytest.raises(BundleError, match="does not match its SHA-256"):
            client.portal.call(reload_bundle, client.app)
        answer = client.post("/predecir", json=formulario)

    assert answer.status_code == 200
    assert answer.json()["modelo"] == old
    assert any("model reload refused, still serving " + old in r.message for r in caplog.records)


def _post(url: str) -> tuple[int, str]:
    """One prediction's model version, or a failure the test counts."""
    try:
        return 200, post_json(url, FORMULARIO_EJEMPLO)["modelo"]
    except (urllib.error.URLError, OSError) as exc:
        return 0, repr(exc)


def test_sighup_swaps_the_model_under_load_without_dropping_a_request(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(tiny_bundle, tmp_path / "models"))
    old = _version(model_dir)
    port = free_port()
    env = {**os.environ, "TASADOR_MODEL_DIR": str(model_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:  # bounded: stops when told, or after 60 s / 20,000 requests
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and len(answers) < 20_000:
            answers.append(_post(f"{base}/predecir"))

    try:
        wait_ready(f"{base}/ready", server)
        clients = [threading.Thread(target=load) for _ in range(4)]
        for thread in clients:
            thread.start()
        train_quietly(model_dir, replace(TINY, seed=321))
        new = _version(model_dir)
        server.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(v == new for _, v in answers[-20:]):
            time.sleep(0.05)
        seen_new = len(answers)
        while len(answers) < seen_new + 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()

    assert [a for a in answers if a[0] != 200] == []
    versions = [v for _, v in answers]
    assert versions[0] == old
    assert versions[-1] == new
    switch = versions.index(new)
    assert set(versions[:switch]) == {old}
    assert f"model reloaded: now serving {new} (was {old})" in output

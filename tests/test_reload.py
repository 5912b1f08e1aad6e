"""Swapping the model while serving: SIGHUP reloads the bundle; no request is dropped."""

import gc
import json
import os
import re
import shutil
import signal
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import reload
from app.bundle.loader import Bundle, BundleError
from app.config import Settings
from app.reload import reload_bundle
from tests.helpers import (
    TINY,
    answers_across_a_swap,
    list_artefact,
    make_client,
    make_key,
    rehash,
    sign,
    train_quietly,
)
from tools.process import ServerProcess


def _version(bundle_dir: Path) -> str:
    version: str = json.loads((bundle_dir / "manifest.json").read_text())["version"]
    return version


def test_reload_switches_to_a_new_bundle(bundle_copy: Path, formulario: dict[str, Any]) -> None:
    old = _version(bundle_copy)
    with make_client(bundle_copy) as client:
        train_quietly(bundle_copy, replace(TINY, seed=123))  # retrained in place, atomically
        before = client.get("/modelo").json()["version"]
        assert client.portal is not None
        client.portal.call(reload_bundle, cast(FastAPI, client.app))
        after = client.post("/predecir", json=formulario).json()["modelo"]

    assert before == old
    assert after == _version(bundle_copy) != old


def test_a_reload_lets_the_old_bundle_go(bundle_copy: Path) -> None:
    # Nothing but the app may hold the bundle it serves, or every reload keeps one more
    # model in memory.
    with make_client(bundle_copy) as client:
        app = cast(FastAPI, client.app)
        old = weakref.ref(app.state.bundle)
        assert client.portal is not None
        client.portal.call(reload_bundle, app)
        gc.collect()

        assert old() is None
        assert app.state.bundle is not None


def test_a_bad_bundle_is_refused_and_the_old_one_keeps_serving(
    bundle_copy: Path, formulario: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    old = _version(bundle_copy)
    with make_client(bundle_copy) as client:
        with (bundle_copy / "model.pkl").open("ab") as handle:
            handle.write(b"tampered")
        assert client.portal is not None
        with pytest.raises(BundleError, match="does not match its SHA-256"):
            client.portal.call(reload_bundle, cast(FastAPI, client.app))
        answer = client.post("/predecir", json=formulario)

    assert answer.status_code == 200
    assert answer.json()["modelo"] == old
    assert any("model reload refused, still serving " + old in r.message for r in caplog.records)


def test_with_trusted_keys_an_unsigned_bundle_is_refused_and_the_old_one_keeps_serving(
    bundle_copy: Path, tmp_path: Path, formulario: dict[str, Any]
) -> None:
    private, public = make_key(tmp_path)
    old = _version(sign(bundle_copy, private))
    with make_client(bundle_copy, trusted_keys=(public,)) as client:
        train_quietly(bundle_copy, replace(TINY, seed=123))  # retrained, not signed
        assert client.portal is not None
        with pytest.raises(BundleError, match=r"manifest\.json is not signed by a trusted key"):
            client.portal.call(reload_bundle, cast(FastAPI, client.app))
        answer = client.post("/predecir", json=formulario)

    assert answer.status_code == 200
    assert answer.json()["modelo"] == old != _version(bundle_copy)


def test_sighup_swaps_the_model_under_load_without_dropping_a_request(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    model_dir = Path(shutil.copytree(tiny_bundle, tmp_path / "models"))
    old = _version(model_dir)
    with ServerProcess(env={"TASADOR_MODEL_DIR": str(model_dir)}) as server:

        def swap() -> str:
            train_quietly(model_dir, replace(TINY, seed=321))
            server.send_signal(signal.SIGHUP)
            return _version(model_dir)

        answers = answers_across_a_swap(f"{server.url}/predecir", swap, within_s=30)
        new = _version(model_dir)
        server.stop()
        output = server.output()

    assert [a for a in answers if a[0] != 200] == []
    versions = [v for _, v in answers]
    assert versions[0] == old
    assert versions[-1] == new
    switch = versions.index(new)
    assert set(versions[:switch]) == {old}
    assert f"model reloaded: now serving {new} (was {old})" in output


def _reloads(client: TestClient, outcome: str) -> float:
    """``tasador_model_reloads_total`` for ``outcome``, as /metrics shows it."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'tasador_model_reloads_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no tasador_model_reloads_total for {outcome}")


def _fifo_in_manifest(bundle: Path) -> None:
    os.mkfifo(bundle / "pipe")  # nobody writes to it: a blocking open would never return
    list_artefact(bundle, "pipe", "0" * 64)


def _dev_zero_in_manifest(bundle: Path) -> None:
    list_artefact(bundle, "/dev/zero", "0" * 64)


def _corrupt_check_set(bundle: Path) -> None:
    path = bundle / "check.npz"
    path.write_bytes(path.read_bytes()[:-40])  # cut short: zipfile raises BadZipFile
    rehash(bundle, "check.npz")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param(_fifo_in_manifest, r"pipe is not a regular file", id="fifo"),
        pytest.param(_dev_zero_in_manifest, r"names '/dev/zero', which is not", id="dev-zero"),
        pytest.param(_corrupt_check_set, r"check\.npz cannot be read: BadZipFile", id="bad-npz"),
    ],
)
def test_a_refused_reload_says_so_counts_it_and_the_next_one_works(
    bundle_copy: Path,
    damage: Callable[[Path], None],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = {p.name: p.read_bytes() for p in bundle_copy.iterdir()}
    old = _version(bundle_copy)
    with make_client(bundle_copy, reload_timeout=30) as client:
        app = cast(FastAPI, client.app)
        assert client.portal is not None
        damage(bundle_copy)
        with pytest.raises(BundleError, match=reason):
            client.portal.call(reload_bundle, app)
        failures = _reloads(client, "failure")
        serving = client.get("/modelo").json()["version"]
        for name, data in good.items():  # the operator puts the good bundle back
            (bundle_copy / name).unlink()
            (bundle_copy / name).write_bytes(data)
        client.portal.call(reload_bundle, app)
        successes = _reloads(client, "success")

    refusals = [r.getMessage() for r in caplog.records if "model reload refused" in r.getMessage()]
    assert len(refusals) == 1
    assert re.search(f"model reload refused, still serving {old}: .*{reason}", refusals[0])
    assert "\n" not in refusals[0]
    assert failures == 1
    assert serving == old
    assert successes == 1


def test_a_reload_that_fails_unforeseen_is_logged_and_counted(
    bundle_copy: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: Settings) -> Bundle:
        raise RuntimeError("a bug in the loader")

    with make_client(bundle_copy) as client:
        app = cast(FastAPI, client.app)
        assert client.portal is not None
        monkeypatch.setattr(reload, "load_served_bundle", broken)
        with pytest.raises(RuntimeError):
            client.portal.call(reload_bundle, app)
        failures = _reloads(client, "failure")
        monkeypatch.undo()
        client.portal.call(reload_bundle, app)
        successes = _reloads(client, "success")

    assert any(
        r.getMessage().startswith("model reload failed, still serving ")
        and r.getMessage().endswith("RuntimeError: a bug in the loader")
        for r in caplog.records
    )
    assert (failures, successes) == (1, 1)


def test_a_reload_that_does_not_end_is_refused_after_the_timeout(
    bundle_copy: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    released = threading.Event()

    def hung(_: Settings) -> Bundle:
        released.wait(60)  # bounded, so a failing test cannot leave the thread behind
        raise BundleError("released")

    try:
        with make_client(bundle_copy, reload_timeout=0.2) as client:
            app = cast(FastAPI, client.app)
            assert client.portal is not None
            monkeypatch.setattr(reload, "load_served_bundle", hung)
            with pytest.raises(BundleError, match=r"not loaded within 0\.2 s"):
                client.portal.call(reload_bundle, app)
            failures = _reloads(client, "failure")
            monkeypatch.undo()
            client.portal.call(reload_bundle, app)  # the lock was let go
            successes = _reloads(client, "success")
    finally:  # the app stopped without waiting for the abandoned thread
        released.set()

    assert any(
        "model reload refused, still serving" in r.getMessage()
        and "not loaded within 0.2 s (TASADOR_RELOAD_TIMEOUT)" in r.getMessage()
        for r in caplog.records
    )
    assert (failures, successes) == (1, 1)


def test_sighups_during_a_reload_make_one_more_reload(tiny_bundle: Path, tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(tiny_bundle, tmp_path / "models"))
    with ServerProcess(env={"TASADOR_MODEL_DIR": str(model_dir)}) as server:
        for _ in range(50):
            server.send_signal(signal.SIGHUP)
        counted = _settled_reloads(server.url)
        server.stop()
        output = server.output()

    assert 1 <= counted <= 2  # the first, and one for every signal that came during it
    assert output.count("model reloaded: now serving") == counted
    assert "model reload refused" not in output


def _settled_reloads(url: str) -> int:
    """Successful reloads, once the count has not moved for a second (within 60 s)."""
    deadline, last, since = time.monotonic() + 60, -1, time.monotonic()
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        count = int(float(re.findall(r'reloads_total\{outcome="success"\} (\S+)', text)[0]))
        if count != last:
            last, since = count, time.monotonic()
        elif count and time.monotonic() - since > 1:
            return count
        time.sleep(0.05)
    return last

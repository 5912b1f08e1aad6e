"""Swapping the model while serving: SIGHUP reloads the bundle; no request is dropped."""

import gc
import json
import shutil
import signal
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI

from app.bundle.loader import BundleError
from app.reload import reload_bundle
from tests.helpers import TINY, answers_across_a_swap, make_client, make_key, sign, train_quietly
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

"""The bundle is verified before it is trusted; each refusal is one clear line."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from app.bundle import versions
from app.bundle.loader import BundleError, load_bundle
from app.cli import main
from app.engines import sklearn as sklearn_engine
from app.features import FEATURES
from tests.helpers import make_client, rehash

Tamper = Callable[[Path], None]


def _edit_manifest(edit: Callable[[dict], None]) -> Tamper:  # type: ignore[type-arg]
    def tamper(bundle: Path) -> None:
        path = bundle / "manifest.json"
        manifest = json.loads(path.read_text())
        edit(manifest)
        path.write_text(json.dumps(manifest))

    return tamper


def _append(name: str) -> Tamper:
    def tamper(bundle: Path) -> None:
        with (bundle / name).open("ab") as handle:
            handle.write(b"\0")

    return tamper


def _set_reference_price(manifest: dict) -> None:  # type: ignore[type-arg]
    manifest["reference"][0]["precio"] *= 1.01


REFUSALS = [
    pytest.param(
        lambda b: (b / "manifest.json").unlink(), "manifest.json is missing", id="no-manifest"
    ),
    pytest.param(lambda b: (b / "model.pkl").unlink(), "model.pkl is missing", id="no-model"),
    pytest.param(
        lambda b: (b / "encodings.pkl").unlink(), "encodings.pkl is missing", id="no-encodings"
    ),
    pytest.param(_append("model.pkl"), "model.pkl does not match its SHA-256", id="tampered-model"),
    pytest.param(
        _append("encodings.pkl"),
        "encodings.pkl does not match its SHA-256",
        id="tampered-encodings",
    ),
    pytest.param(
        lambda b: (b / "manifest.json").write_text("{"), "not valid JSON", id="manifest-not-json"
    ),
    pytest.param(
        _edit_manifest(lambda m: m["versions"].update(numpy="1.26.4")),
        "numpy 1.26.4",
        id="old-numpy",
    ),
    pytest.param(
        _edit_manifest(_set_reference_price),
        "reference predictions do not reproduce",
        id="reference-mismatch",
    ),
    pytest.param(
        _edit_manifest(lambda m: m["features"].remove("garaje")),
        f"the manifest lists {len(FEATURES) - 1} features",
        id="feature-count",
    ),
    pytest.param(
        _edit_manifest(lambda m: m["features"].__setitem__(0, "piscina")),
        "features not in Formulario: piscina",
        id="unknown-feature",
    ),
    pytest.param(
        _edit_manifest(lambda m: m.pop("artefacts")),
        "malformed at artefacts",
        id="manifest-without-hashes",
    ),
    pytest.param(
        _edit_manifest(lambda m: m.update(format_version=99)),
        "format_version 99",
        id="future-format",
    ),
]


@pytest.mark.parametrize(("tamper", "message"), REFUSALS)
def test_bad_bundle_is_refused_with_a_clear_reason(
    bundle_copy: Path, tamper: Tamper, message: str
) -> None:
    tamper(bundle_copy)

    with pytest.raises(BundleError, match=message) as caught:
        load_bundle(bundle_copy)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("tamper", "message"), REFUSALS[:4])
def test_serve_refuses_to_start_with_one_line(
    bundle_copy: Path, tamper: Tamper, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(bundle_copy)

    code = main(["serve", "--model-dir", str(bundle_copy), "--port", "1"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith("tasador: cannot start:")
    assert message in err[0]


def test_missing_model_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")


def test_model_is_not_unpickled_when_its_hash_is_wrong(bundle_copy: Path) -> None:
    # A pickle that would run code: the hash check must stop it before it is loaded.
    marker = bundle_copy / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    (bundle_copy / "model.pkl").write_bytes(payload)

    with pytest.raises(BundleError, match="does not match its SHA-256"):
        load_bundle(bundle_copy)
    assert not marker.exists()


def test_lifespan_refuses_a_bad_bundle(bundle_copy: Path) -> None:
    _append("model.pkl")(bundle_copy)

    with pytest.raises(BundleError, match="does not match"), make_client(bundle_copy):
        pass


def test_another_scikit_learn_refuses_only_the_engine_that_needs_it(bundle_copy: Path) -> None:
    _edit_manifest(lambda m: m["versions"].update(scikit_learn="1.0.2"))(bundle_copy)

    # The compiled engine reproduces the recorded answers: the pickle is not needed.
    assert load_bundle(bundle_copy).engine.name == "onnxruntime"
    with pytest.raises(BundleError, match=r"trained with scikit-learn 1\.0\.2 but") as caught:
        load_bundle(bundle_copy, "scikit-learn")
    assert "\n" not in str(caught.value)


def test_without_scikit_learn_the_compiled_engine_serves(
    bundle_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in the serving image, which leaves scikit-learn out.
    real = versions.installed
    monkeypatch.setattr(versions, "installed", lambda p: None if p == "scikit-learn" else real(p))
    monkeypatch.setattr(sklearn_engine, "installed", versions.installed)

    assert load_bundle(bundle_copy).engine.name == "onnxruntime"
    (bundle_copy / "forest.onnx").write_bytes(b"")  # now the fallback would be needed
    rehash(bundle_copy, "forest.onnx")
    with pytest.raises(BundleError, match=r"needs scikit-learn 1\.\d+\.\*, which is not installed"):
        load_bundle(bundle_copy)

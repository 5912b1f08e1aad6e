"""Signed bundles: with trusted keys, only a bundle one of them signed is served."""

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.bundle.loader import BundleError, load_bundle
from app.bundle.signing import Seal, public_key
from app.cli import main
from app.config import Settings
from tests.helpers import make_client, make_key, rehash, sign

ROOT = Path(__file__).resolve().parents[2]
NOT_TRUSTED = "manifest.json is not signed by a trusted key"


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, str]:
    """A signing key: its private key file and its public key (base64)."""
    return make_key(tmp_path)


@pytest.fixture
def signed(bundle_copy: Path, key: tuple[Path, str]) -> Path:
    """A private copy of the tiny bundle, signed with ``key``."""
    return sign(bundle_copy, key[0])


def _refusal(bundle: Path, trusted: str) -> str:
    with pytest.raises(BundleError) as caught:
        load_bundle(bundle, trusted_keys=(trusted,))
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("form", ["base64", "pem-file"])
def test_a_bundle_signed_by_a_trusted_key_loads(
    signed: Path, key: tuple[Path, str], form: str, caplog: pytest.LogCaptureFixture
) -> None:
    trusted = key[1] if form == "base64" else str(key[0]) + ".pub"
    key_id = public_key(key[1]).key_id

    with caplog.at_level(logging.INFO, logger="tasador"):
        bundle = load_bundle(signed, trusted_keys=(trusted,))

    assert bundle.engine.name == "onnxruntime"
    assert f"model {bundle.version} is signed by trusted key {key_id}" in caplog.messages


def test_one_of_several_trusted_keys_is_enough(signed: Path, key: tuple[Path, str]) -> None:
    _, other = make_key(signed.parent, "otra")

    bundle = load_bundle(signed, trusted_keys=(other, key[1]))

    assert bundle.seal == Seal(key_id=public_key(key[1]).key_id, checked=True)


def test_an_unsigned_bundle_is_refused(bundle_copy: Path, key: tuple[Path, str]) -> None:
    assert _refusal(bundle_copy, key[1]) == (
        f"{bundle_copy}/manifest.json is not signed by a trusted key "
        f"(no {bundle_copy}/manifest.sig)"
    )


def test_a_bundle_signed_by_another_key_is_refused(signed: Path, key: tuple[Path, str]) -> None:
    _, other = make_key(signed.parent, "otra")

    assert _refusal(signed, other) == (
        f"{signed}/manifest.json is not signed by a trusted key (signed by key "
        f"{public_key(key[1]).key_id}, which is not among the trusted keys)"
    )


def _edit_manifest(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["metrics"]["rmse"] /= 2  # a better model than it is
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _swap_artefact(bundle: Path) -> None:
    # An attacker who cannot sign plants another forest and gives the manifest its hash.
    shutil.copy(bundle / "leaves.onnx", bundle / "forest.onnx")
    rehash(bundle, "forest.onnx")


def _reformat_manifest(bundle: Path) -> None:
    # The same data in other bytes: what is signed is the file, not its meaning.
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps(manifest) + "\n")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_edit_manifest, id="manifest-edited"),
        pytest.param(_swap_artefact, id="artefact-swapped-hash-recomputed"),
        pytest.param(_reformat_manifest, id="manifest-reformatted"),
    ],
)
def test_a_bundle_changed_after_signing_is_refused(
    signed: Path, key: tuple[Path, str], tamper: Callable[[Path], None]
) -> None:
    tamper(signed)

    assert _refusal(signed, key[1]) == (
        f"{signed}/manifest.json is not signed by a trusted key (the signature by key "
        f"{public_key(key[1]).key_id} does not match it: it changed after signing)"
    )


def _rewrite_signature(**changes: object) -> Callable[[Path], None]:
    def rewrite(bundle: Path) -> None:
        document = json.loads((bundle / "manifest.sig").read_text())
        document.update(changes)
        (bundle / "manifest.sig").write_text(json.dumps(document))

    return rewrite


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(
            lambda b: (b / "manifest.sig").write_text("{"), "manifest.sig is not JSON", id="json"
        ),
        pytest.param(
            _rewrite_signature(algorithm="RSA"), "is not an Ed25519 signature", id="algorithm"
        ),
        pytest.param(
            _rewrite_signature(signature="c2hvcnQ="), "signature of 5 bytes, not 64", id="short"
        ),
        pytest.param(
            _rewrite_signature(key_id="abc\nforged log line"),
            "has no key id of 16 hexadecimal digits",
            id="key-id",
        ),
        pytest.param(
            _rewrite_signature(signature=None), "lacks a key_id and a base64 signature", id="none"
        ),
    ],
)
def test_a_malformed_signature_file_is_refused(
    signed: Path, key: tuple[Path, str], tamper: Callable[[Path], None], reason: str
) -> None:
    tamper(signed)

    message = _refusal(signed, key[1])

    assert message.startswith(f"{signed}/{NOT_TRUSTED} (")
    assert reason in message


def test_without_trusted_keys_signed_and_unsigned_bundles_load(
    signed: Path, tiny_bundle: Path, key: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tasador"):
        signed_version = load_bundle(signed).version
        unsigned_version = load_bundle(tiny_bundle).version

    assert caplog.messages == [
        f"model {signed_version} is signed by key {public_key(key[1]).key_id} "
        "(not checked: no trusted keys are configured)",
        f"model {unsigned_version} is not signed",
    ]


def test_without_trusted_keys_a_malformed_signature_counts_as_none(
    signed: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (signed / "manifest.sig").write_text("{")

    with caplog.at_level(logging.INFO, logger="tasador"):
        version = load_bundle(signed).version

    assert caplog.messages == [
        f"{signed}/manifest.sig is not JSON; the bundle counts as unsigned",
        f"model {version} is not signed",
    ]


def test_without_trusted_keys_cryptography_is_not_imported(tiny_bundle: Path) -> None:
    # Start-up pays for cryptography only when a signature is checked.
    script = (
        "import sys; from pathlib import Path; from app.main import create_app; "
        "from app.config import Settings; from app.bundle.loader import load_bundle; "
        f"create_app(Settings()); load_bundle(Path({str(tiny_bundle)!r})); "
        "print(sorted(m for m in sys.modules if m.startswith('cryptography')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.stdout.strip() == "[]", result.stderr


def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal in English, whatever the machine's locale (refusals follow it)."""
    for variable in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def test_serve_refuses_an_unsigned_bundle_in_one_line(
    bundle_copy: Path,
    key: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _english(monkeypatch)

    code = main(["serve", "--model-dir", str(bundle_copy), "--trusted-keys", key[1]])

    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"tasador: cannot start: {bundle_copy}/manifest.json is not signed by a trusted key "
        f"(no {bundle_copy}/manifest.sig)"
    ]


def test_the_app_refuses_an_unsigned_bundle_at_start_up(
    bundle_copy: Path, key: tuple[Path, str]
) -> None:
    with (
        pytest.raises(BundleError, match=NOT_TRUSTED),
        make_client(bundle_copy, trusted_keys=(key[1],)),
    ):
        pass


def test_the_app_serves_a_signed_bundle(signed: Path, key: tuple[Path, str]) -> None:
    with make_client(signed, trusted_keys=(key[1],)) as client:
        answer = client.get("/ready")

    assert answer.status_code == 200


def test_the_model_route_says_who_signed_and_whether_it_was_checked(
    signed: Path, tiny_bundle: Path, key: tuple[Path, str]
) -> None:
    key_id = public_key(key[1]).key_id
    with make_client(signed, trusted_keys=(key[1],)) as client:
        checked = client.get("/modelo").json()["firma"]
    with make_client(signed) as client:
        unchecked = client.get("/modelo").json()["firma"]
    with make_client(tiny_bundle) as client:
        unsigned = client.get("/modelo").json()

    assert checked == {"clave": key_id, "comprobada": True}
    assert unchecked == {"clave": key_id, "comprobada": False}
    assert unsigned["firma"] is None


def test_trusted_keys_are_read_from_a_comma_or_json_list(
    key: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = str(key[0]) + ".pub"
    monkeypatch.setenv("TASADOR_TRUSTED_KEYS", f" {key[1]} , {pem}")
    assert Settings().trusted_keys == (key[1], pem)

    monkeypatch.setenv("TASADOR_TRUSTED_KEYS", json.dumps([pem]))
    assert Settings().trusted_keys == (pem,)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("[]", "the list of keys is empty", id="empty-list"),
        pytest.param("abc,", "a trusted key is empty", id="empty-entry"),
        pytest.param("c2hvcnQ=", "neither the base64 of a 32-byte Ed25519 public key", id="short"),
        pytest.param("{private}", "holds no Ed25519 public key", id="private-key-file"),
    ],
)
def test_an_unusable_trusted_key_stops_serve_in_one_line(
    key: tuple[Path, str],
    value: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _english(monkeypatch)
    monkeypatch.setenv("TASADOR_TRUSTED_KEYS", value.format(private=key[0]))

    code = main(["serve", "--port", "1"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith("tasador: invalid setting TASADOR_TRUSTED_KEYS: ")
    assert message in err[0]

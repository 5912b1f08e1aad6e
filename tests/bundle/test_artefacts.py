"""A bundle reads only its own regular files, and refuses a damaged one at load, in one line,
even when whoever damaged it rewrote its hash in the manifest."""

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.bundle import artefacts
from app.bundle.artefacts import sha256_file
from app.bundle.loader import Bundle, BundleError, load_bundle
from app.cli import main
from tests.helpers import list_artefact, rehash

# How long a load may take before the test calls it hung (a tiny bundle loads in well
# under a second; a FIFO opened for reading without O_NONBLOCK would wait forever).
HUNG_S = 60


def _load_within_bound(bundle: Path) -> Bundle:
    """``load_bundle(bundle)``, failing the test instead of hanging when it does not end."""
    outcome: list[Bundle | BaseException] = []

    def run() -> None:
        try:
            outcome.append(load_bundle(bundle))
        except BaseException as exc:  # handed to the test below
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HUNG_S)
    assert outcome, f"load_bundle did not end within {HUNG_S} s"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def test_a_name_that_climbs_out_of_the_folder_is_refused_without_its_hash(
    bundle_copy: Path,
) -> None:
    secret = bundle_copy.parent / "secret.txt"
    secret.write_text("password=hunter2\n")
    digest = sha256_file(secret)
    list_artefact(bundle_copy, "../secret.txt", digest)  # the right hash: it would have loaded

    with pytest.raises(BundleError, match=r"names '\.\./secret\.txt', which is not a file of"):
        _load_within_bound(bundle_copy)


@pytest.mark.parametrize("outside", ["/etc/hostname", "/dev/zero"])
def test_an_absolute_name_is_refused_before_it_is_read(bundle_copy: Path, outside: str) -> None:
    list_artefact(bundle_copy, outside, "0" * 64)

    with pytest.raises(BundleError, match="which is not a file of the bundle folder") as caught:
        _load_within_bound(bundle_copy)
    assert "found" not in str(caught.value)  # no hash of anything outside the bundle


def test_a_symbolic_link_out_of_the_folder_is_refused_without_its_hash(
    bundle_copy: Path,
) -> None:
    secret = bundle_copy.parent / "secret.txt"
    secret.write_text("password=hunter2\n")
    (bundle_copy / "check.npz").unlink()
    (bundle_copy / "check.npz").symlink_to(secret)
    list_artefact(bundle_copy, "check.npz", "0" * 64)

    with pytest.raises(BundleError, match="a symbolic link that leads out of the bundle") as caught:
        _load_within_bound(bundle_copy)
    assert hashlib.sha256(secret.read_bytes()).hexdigest()[:12] not in str(caught.value)


def test_a_symbolic_link_to_dev_zero_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "check.npz").unlink()
    (bundle_copy / "check.npz").symlink_to("/dev/zero")

    with pytest.raises(BundleError, match="leads out of the bundle folder"):
        _load_within_bound(bundle_copy)


def test_a_symbolic_link_that_stays_in_the_folder_is_followed(bundle_copy: Path) -> None:
    (bundle_copy / "model.pkl").rename(bundle_copy / "forest-2024.pkl")
    (bundle_copy / "model.pkl").symlink_to("forest-2024.pkl")

    assert _load_within_bound(bundle_copy).version


def test_a_fifo_named_in_the_manifest_is_refused_without_waiting(bundle_copy: Path) -> None:
    os.mkfifo(bundle_copy / "pipe")  # nobody ever writes to it
    list_artefact(bundle_copy, "pipe", "0" * 64)

    with pytest.raises(BundleError, match=r"pipe is not a regular file \(it is a FIFO\)"):
        _load_within_bound(bundle_copy)


def test_a_fifo_in_place_of_the_manifest_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "manifest.json").unlink()
    os.mkfifo(bundle_copy / "manifest.json")

    with pytest.raises(BundleError, match=r"manifest\.json is not a regular file"):
        _load_within_bound(bundle_copy)


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(
    bundle_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    largest = max(bundle_copy.iterdir(), key=lambda p: p.stat().st_size)
    size = largest.stat().st_size
    monkeypatch.setattr(artefacts, "MAX_FILE_BYTES", size - 1)

    with pytest.raises(BundleError, match=rf"{largest.name} is {size} bytes, more than the"):
        _load_within_bound(bundle_copy)


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _bit_flipped(data: bytes) -> bytes:
    # In the second half: past the headers, in what the file holds (trees, arrays).
    at = len(data) * 3 // 4
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


def _flip_that_matters(data: bytes, bundle: Path) -> bytes:
    """A bit flipped in a compiled graph where it changes an answer on the bundle's check
    inputs (a flip in a threshold no input can fall near, 61.5 → 61.625 for a whole-number
    field, changes nothing a client could ever see, and is rightly not refused)."""
    import onnxruntime as ort

    with np.load(bundle / "check.npz") as check:
        x = check["x"].astype(np.float32).astype(np.float64)

    def answers(model: bytes) -> np.ndarray | None:
        try:
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            out: np.ndarray = session.run(None, {"X": x})[0]
        except Exception:  # a graph that no longer loads or runs is damage too
            return None
        return out

    before = answers(data)
    for at in range(len(data) * 3 // 4, len(data), 7):
        flipped = data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]
        after = answers(flipped)
        if after is None or before is None or not np.array_equal(after, before):
            return flipped
    raise AssertionError("no flip in the second half changes an answer")


def _empty(_: bytes) -> bytes:
    return b""


def _random(data: bytes) -> bytes:
    return os.urandom(max(len(data), 64))


DAMAGE: list[Callable[[bytes], bytes]] = [_truncated, _bit_flipped, _empty, _random]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__.strip("_"))
@pytest.mark.parametrize(
    "name", ["model.pkl", "leaves.onnx", "contributions.npz", "check.npz", "testigos.npz"]
)
def test_a_damaged_file_with_a_rewritten_hash_is_refused_at_load(
    bundle_copy: Path, name: str, damage: Callable[[bytes], bytes]
) -> None:
    path = bundle_copy / name
    if damage is _bit_flipped and name.endswith(".onnx"):
        path.write_bytes(_flip_that_matters(path.read_bytes(), bundle_copy))
    else:
        path.write_bytes(damage(path.read_bytes()))
    rehash(bundle_copy, name)

    with pytest.raises(BundleError) as caught:
        _load_within_bound(bundle_copy)
    assert name in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__.strip("_"))
def test_a_damaged_compiled_forest_is_passed_over_for_scikit_learn(
    bundle_copy: Path, damage: Callable[[bytes], bytes], caplog: pytest.LogCaptureFixture
) -> None:
    # As designed: auto serves with the next engine that reproduces the recorded answers.
    path = bundle_copy / "forest.onnx"
    if damage is _bit_flipped:
        path.write_bytes(_flip_that_matters(path.read_bytes(), bundle_copy))
    else:
        path.write_bytes(damage(path.read_bytes()))
    rehash(bundle_copy, "forest.onnx")

    assert _load_within_bound(bundle_copy).engine.name == "scikit-learn"
    assert any(
        r.message.startswith("engine onnxruntime: forest.onnx") and "serving with scikit-learn"
        for r in caplog.records
    )


@pytest.mark.parametrize("name", ["check.npz", "leaves.onnx", "model.pkl"])
def test_serve_refuses_a_damaged_file_with_one_line(
    bundle_copy: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = bundle_copy / name
    path.write_bytes(_truncated(path.read_bytes()))
    rehash(bundle_copy, name)

    code = main(["serve", "--model-dir", str(bundle_copy), "--port", "1"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith("tasador: cannot start:")
    assert name in err[0]


def test_a_check_set_that_decompresses_past_the_cap_is_refused(
    bundle_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artefacts, "MAX_FILE_BYTES", (bundle_copy / "check.npz").stat().st_size)

    with pytest.raises(BundleError, match=r"check\.npz would take \d+ bytes decompressed"):
        _load_within_bound(bundle_copy)

"""A training killed at any instant leaves a bundle the service loads: the old or the new,
never none and never half of one; the next training clears what it left."""

import random
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from app.bundle.loader import load_bundle
from app.training import swap
from tests.helpers import TINY, train_quietly
from tests.training.swap_child import STEPS

ROOT = Path(__file__).resolve().parents[2]
LINE_TIMEOUT_S = 60
RANDOM_KILLS = 8
KILL_WITHIN_S = 0.5  # long enough for several swaps of a tiny bundle


@pytest.fixture(scope="module")
def new_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny bundle, from another seed: the one training swaps in."""
    return train_quietly(tmp_path_factory.mktemp("new") / "bundle", replace(TINY, seed=99))


@pytest.fixture
def models(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A ``models`` folder holding the tiny bundle, alone in its parent."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "models"))


def _child(step: str, out: Path, *sources: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.training.swap_child", step, str(out)]
    return subprocess.Popen(
        [*command, *map(str, sources)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def _kill_when(process: subprocess.Popen[str], line: str, after: float = 0.0) -> None:
    """SIGKILL ``process`` ``after`` seconds after it prints ``line``."""
    assert process.stdout is not None
    try:
        readable, _, _ = select.select([process.stdout], [], [], LINE_TIMEOUT_S)
        assert readable, f"the swap did not reach {line!r} within {LINE_TIMEOUT_S} s"
        assert process.stdout.readline().strip() == line
        time.sleep(after)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=LINE_TIMEOUT_S)
        process.stdout.close()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("step", [pytest.param(step, id=step) for step in STEPS])
def test_a_kill_at_each_step_leaves_a_loadable_bundle(
    models: Path, new_bundle: Path, step: str
) -> None:
    old, new = load_bundle(models).version, load_bundle(new_bundle).version
    swapped = STEPS.index(step) >= STEPS.index("exchanged")

    _kill_when(_child(step, models, new_bundle), step)

    assert load_bundle(models).version == (new if swapped else old)
    leftovers = [name for name in _names(models.parent) if name != "models"]
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".models.tmp-")
    # The next training clears it.
    train_quietly(models, replace(TINY, seed=5))
    assert _names(models.parent) == ["models"]
    assert load_bundle(models).manifest.params["seed"] == 5


def test_kills_at_random_instants_leave_a_loadable_bundle(
    models: Path, new_bundle: Path, tmp_path: Path
) -> None:
    old = Path(shutil.copytree(models, tmp_path / "old"))
    versions = {load_bundle(old).version, load_bundle(new_bundle).version}
    chance = random.Random(8)
    seen = []

    for _ in range(RANDOM_KILLS):  # each run swaps the two bundles in turn until killed
        _kill_when(
            _child("loop", models, new_bundle, old), "ready", chance.uniform(0, KILL_WITHIN_S)
        )
        seen.append(load_bundle(models).version)

    assert set(seen) <= versions


def test_training_removes_what_killed_ones_left_and_nothing_else(models: Path) -> None:
    for name in (".models.tmp-dead1", ".models.old-dead2", ".models-notes", "models.bak"):
        (models.parent / name).mkdir()
        (models.parent / name / "model.pkl").write_bytes(b"half")

    train_quietly(models, replace(TINY, seed=5))

    assert _names(models.parent) == [".models-notes", "models", "models.bak"]


def test_without_the_exchange_training_still_replaces_the_bundle_whole(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    monkeypatch.setattr(swap, "exchange", lambda *_: False)

    swap.write_verified(
        {p.name: p.read_bytes() for p in models.iterdir()}, models, load_bundle, said.append
    )

    assert load_bundle(models).manifest is not None
    assert _names(models.parent) == ["models"]
    assert said == [
        "Note: this system cannot exchange two folders in one step (renameat2 "
        f"RENAME_EXCHANGE); {models} was replaced with two renames"
    ]


def test_exchange_swaps_two_folders_in_one_step(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "in-a").touch()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "in-b").touch()

    assert swap.exchange(tmp_path / "a", tmp_path / "b")  # Linux 3.15+, glibc 2.28+

    assert _names(tmp_path / "a") == ["in-b"]
    assert _names(tmp_path / "b") == ["in-a"]

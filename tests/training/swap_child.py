"""A training's last steps in a process of its own, for ``test_swap`` to kill.

``python -m tests.training.swap_child STEP OUT SOURCE...`` writes the bundle of each SOURCE
folder in turn to OUT with ``app.training.swap.write_verified``. With a named STEP it
prints the step's name and waits when it gets there, until it is killed; with ``loop`` it
prints ``ready`` and goes on swapping the sources in turn (at most ``LOOPS`` times) for the
test to kill it at a random instant. Only the swap module and the loader are imported
here: the training pipeline takes seconds to import.
"""

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.bundle.loader import load_bundle
from app.training import swap

STEPS = ("writing", "checking", "exchanging", "exchanged", "removing")
LOOPS = 200
WAIT_S = 60  # killed long before; bounded in case the test is not there any more


def _stop_at(step: str) -> None:
    print(step, flush=True)
    time.sleep(WAIT_S)
    raise SystemExit(f"{step}: not killed within {WAIT_S} s")


def _instrument(step: str) -> None:
    """Make the swap stop at ``step``: after the first file is written into the staging
    folder, before the staged bundle is checked, just before and after the exchange, and
    after the first file of the old bundle is removed."""
    write_file, exchange, unlink = swap.write_file, swap.exchange, os.unlink
    exchanged = False

    def writing(path: Path, data: bytes) -> None:
        write_file(path, data)
        if step == "writing":
            _stop_at(step)

    def exchanging(first: Path, second: Path) -> bool:
        nonlocal exchanged
        if step == "exchanging":
            _stop_at(step)
        exchanged = exchange(first, second)
        if step == "exchanged":
            _stop_at(step)
        return exchanged

    def removing(path: Any, *args: Any, **kwargs: Any) -> None:
        unlink(path, *args, **kwargs)
        if step == "removing" and exchanged:
            _stop_at(step)

    swap.write_file = writing
    swap.exchange = exchanging
    os.unlink = removing


def _check(step: str) -> Callable[[Path], None]:
    def check(staging: Path) -> None:
        if step == "checking":
            _stop_at(step)
        load_bundle(staging)

    return check


def main(step: str, out: Path, sources: list[Path]) -> None:
    """Swap each source's bundle into ``out``, stopping at ``step``."""
    bundles = [{p.name: p.read_bytes() for p in source.iterdir()} for source in sources]
    if step == "loop":
        print("ready", flush=True)
        for turn in range(LOOPS):
            swap.write_verified(bundles[turn % len(bundles)], out, load_bundle, print)
        return
    _instrument(step)
    for files in bundles:
        swap.write_verified(files, out, _check(step), print)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])

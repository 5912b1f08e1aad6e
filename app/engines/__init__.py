"""Inference engines, chosen by name from one registry.

An engine maps a float64 feature matrix (columns in the manifest's order) to prices; it
knows nothing of HTTP or of the schema. Each registered engine names the bundle file it is
built from and how far its answers may stray from the predictions scikit-learn gave at
training time. A new engine is one module with a ``SPEC`` plus one line in ``ENGINES``;
``auto`` tries them in the order listed there.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from app.schemas.manifest import TargetScale, Versions

# The names TASADOR_ENGINE accepts besides "auto"; ENGINES below must list exactly these.
EngineName = Literal["onnxruntime", "scikit-learn"]
EngineChoice = Literal["auto", EngineName]


class Engine(Protocol):
    """Predicts one price per row of a feature matrix."""

    @property
    def name(self) -> str:
        """The engine's registered name."""
        ...

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``x``."""
        ...


class EngineUnusableError(Exception):
    """An engine cannot be built from its artefact; the message says why, in one line."""


@dataclass(frozen=True)
class EngineSpec:
    """How to build a registered engine from a bundle."""

    name: EngineName
    artefact: str  # the bundle file it is built from
    # Largest relative difference from scikit-learn's training-time answers accepted.
    tolerance: float
    # Builds the engine from the artefact's verified bytes, for ``n_features`` columns;
    # raises EngineUnusableError. Imports its runtime only when called.
    build: Callable[[bytes, int], Engine]
    # Why the libraries installed now cannot run what was trained (library versions the
    # bundle recorded), or None when they can.
    unsupported: Callable[[Versions], str | None] = lambda _: None
    # Why the artefact is damaged, found without building the engine (for a bundle that
    # another engine serves), or None when nothing is found.
    damaged: Callable[[bytes], str | None] = lambda _: None


def _registry() -> dict[EngineName, EngineSpec]:
    from app.engines import onnx, sklearn

    specs = (onnx.SPEC, sklearn.SPEC)  # "auto" prefers them in this order
    return {spec.name: spec for spec in specs}


ENGINES: dict[EngineName, EngineSpec] = _registry()


class LogPriceEngine:
    """An engine whose forest predicts log prices, answering prices."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine

    @property
    def name(self) -> str:
        """The wrapped engine's name."""
        return self.raw.name

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Prices for the rows of ``x``: exp of the forest's average log price."""
        return np.exp(self.raw.predict(x))


def priced(engine: Engine, scale: TargetScale) -> Engine:
    """``engine`` answering prices, whatever scale its forest was fitted on."""
    return LogPriceEngine(engine) if scale == "log" else engine

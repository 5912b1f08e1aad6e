"""Whether the libraries installed now can use what a bundle was trained with."""

import platform
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from app.bundle.artefacts import BundleError
from app.schemas.manifest import Versions


def installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def current_versions() -> Versions:
    """The versions of the libraries a bundle depends on, as installed now (no imports)."""
    return Versions(
        python=platform.python_version(),
        scikit_learn=installed("scikit-learn") or "missing",
        numpy=np.__version__,
        joblib=installed("joblib") or "missing",
        onnxruntime=installed("onnxruntime"),
    )


def minor(version: str) -> str:
    """``1.9.1`` → ``1.9``: releases that read each other's pickles."""
    return ".".join(version.split(".")[:2])


def check_versions(trained: Versions) -> None:
    """Refuse (``BundleError``) a bundle whose arrays this numpy may read wrongly (another
    major release). Each engine checks the libraries it needs itself (``EngineSpec``)."""
    now = current_versions()
    if trained.numpy.split(".")[0] != now.numpy.split(".")[0]:
        raise BundleError(
            f"model was written with numpy {trained.numpy} but {now.numpy} is installed; "
            "retrain the bundle"
        )

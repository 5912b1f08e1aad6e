"""Whether the libraries installed now can use what a bundle was trained with."""

import platform
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from app.bundle.artefacts import BundleError
from app.schemas.manifest import Versions


def _installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def current_versions() -> Versions:
    """The versions of the libraries a bundle depends on, as installed now (no imports)."""
    return Versions(
        python=platform.python_version(),
        scikit_learn=_installed("scikit-learn") or "missing",
        numpy=np.__version__,
        joblib=_installed("joblib") or "missing",
        onnxruntime=_installed("onnxruntime"),
    )


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_versions(trained: Versions) -> None:
    """Refuse (``BundleError``) a bundle whose pickles this scikit-learn or numpy may read
    wrongly: another scikit-learn minor release, or another numpy major one."""
    now = current_versions()
    if _minor(trained.scikit_learn) != _minor(now.scikit_learn):
        raise BundleError(
            f"model was trained with scikit-learn {trained.scikit_learn} but "
            f"{now.scikit_learn} is installed; retrain the bundle or install "
            f"scikit-learn {'.'.join(_minor(trained.scikit_learn))}.*"
        )
    if trained.numpy.split(".")[0] != now.numpy.split(".")[0]:
        raise BundleError(
            f"model was written with numpy {trained.numpy} but {now.numpy} is installed; "
            "retrain the bundle"
        )

"""Where the served bundle comes from: a folder, or MLflow (``TASADOR_MODEL_URI``).

A bundle in MLflow is downloaded into the cache folder and then verified exactly like a
folder (hashes, versions, reference predictions): nothing from MLflow is trusted
unverified. A ``models:/NAME@ALIAS`` URI is resolved to a version first and the bundle is
downloaded by that version, so an alias moved meanwhile cannot mix two versions; each
load (start-up, SIGHUP) resolves the URI again.

MLflow is optional and slow to import (seconds): it is imported only here, and only when
a URI is configured.
"""

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.bundle import MANIFEST_FILE
from app.bundle.artefacts import BundleError
from app.bundle.loader import Bundle, load_bundle
from app.bundle.origin import Origin
from app.config import Settings

log = logging.getLogger("tasador")

BUNDLE_PATH = "bundle"  # where `tasador train --mlflow` puts the bundle, in runs and models
MISSING_MLFLOW = (
    "needs MLflow, which is not installed: uv sync --extra {extra} "
    "(or pip install 'tasador[{extra}]')"
)
_BY_ALIAS = re.compile(r"models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)")
_BY_VERSION = re.compile(r"models:/(?P<name>[^/@]+)/(?P<version>[0-9]+)")
_RUN = re.compile(r"runs:/(?P<run_id>[0-9a-zA-Z]+)/(?P<path>.+)")


def load_served_bundle(settings: Settings) -> Bundle:
    """The bundle the settings name, verified: ``model_uri`` when set, else ``model_dir``."""
    if settings.model_uri is None:
        return load_bundle(settings.model_dir, settings.engine, settings.trusted_keys)
    directory, origin = fetch_bundle(settings.model_uri, settings.model_cache)
    bundle = load_bundle(directory, settings.engine, settings.trusted_keys)
    return replace(bundle, origin=origin)


def fetch_bundle(uri: str, cache: Path) -> tuple[Path, Origin]:
    """Resolve ``uri`` in MLflow and download its bundle under ``cache``; ``BundleError``
    (one line) when MLflow is missing or refuses."""
    mlflow = import_mlflow(f"--model-uri {uri}")
    # A progress bar per download would clutter the server's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.exceptions import MlflowException

    try:
        origin, artefact_uri = _resolve(uri)
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
        try:
            mlflow.artifacts.download_artifacts(artifact_uri=artefact_uri, dst_path=str(staging))
            directory = _keep(_bundle_folder(staging, uri), cache)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except MlflowException as exc:
        raise BundleError(f"{uri}: {_one_line(exc.message)}") from None
    except OSError as exc:
        raise BundleError(f"{uri}: cannot download into {cache}: {exc}") from None
    log.info(
        "fetched %s (registered version %s, run %s) into %s",
        uri,
        origin.version or "none",
        origin.run_id,
        directory,
    )
    return directory, origin


def import_mlflow(what: str, extra: str = "mlflow") -> Any:
    """The mlflow module, or ``BundleError`` naming what needed it and the extra to install."""
    try:
        import mlflow
        import mlflow.artifacts
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] != "mlflow":
            raise
        raise BundleError(f"{what} {MISSING_MLFLOW.format(extra=extra)}") from None
    return mlflow


def _resolve(uri: str) -> tuple[Origin, str]:
    """What ``uri`` stands for now, and the artefact URI of its bundle folder."""
    from mlflow import MlflowClient

    if match := _RUN.fullmatch(uri):
        return Origin(uri=uri, run_id=match["run_id"]), uri
    client = MlflowClient()
    if match := _BY_ALIAS.fullmatch(uri):
        found = client.get_model_version_by_alias(match["name"], match["alias"])
    elif match := _BY_VERSION.fullmatch(uri):
        found = client.get_model_version(match["name"], match["version"])
    else:  # Settings refuses anything else
        raise BundleError(f"{uri}: not a models:/ or runs:/ URI")
    origin = Origin(uri=uri, run_id=found.run_id, name=found.name, version=str(found.version))
    return origin, f"models:/{found.name}/{found.version}/{BUNDLE_PATH}"


def _bundle_folder(staging: Path, uri: str) -> Path:
    """The downloaded folder holding the manifest (the download keeps the last path part)."""
    for candidate in (staging, staging / BUNDLE_PATH, *staging.iterdir()):
        if (candidate / MANIFEST_FILE).is_file():
            return candidate
    raise BundleError(f"{uri}: holds no {MANIFEST_FILE}; is it a tasador bundle?")


def _keep(downloaded: Path, cache: Path) -> Path:
    """Move the download to ``cache/<bundle version>``; a folder already there with the
    same files stays (another worker put it there), one that differs is replaced. Either
    way it is verified next, like any folder."""
    name = _folder_name(downloaded)
    target = cache / name
    if target.exists():
        if _same_files(downloaded, target):
            return target
        retired = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=cache))
        retired.rmdir()
        target.rename(retired)
        shutil.rmtree(retired, ignore_errors=True)
    try:
        downloaded.rename(target)
    except OSError:  # another process put it there just now
        if not _same_files(downloaded, target):
            raise
    return target


def _folder_name(bundle: Path) -> str:
    try:
        version = json.loads((bundle / MANIFEST_FILE).read_text(encoding="utf-8"))["version"]
    except (ValueError, KeyError, TypeError):
        version = None  # verification will say what is wrong with it
    if isinstance(version, str) and re.fullmatch(r"[A-Za-z0-9._-]{1,100}", version):
        return version
    return "unnamed"


def _same_files(one: Path, other: Path) -> bool:
    names = sorted(p.name for p in one.iterdir())
    if names != sorted(p.name for p in other.iterdir()):
        return False
    return all((one / n).read_bytes() == (other / n).read_bytes() for n in names)


def _one_line(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "MLflow refused"
    return first if len(first) <= 300 else first[:297] + "..."

"""``tasador train --mlflow``: log a trained, verified bundle to MLflow, and register it.

One run holds the parameters, a description of the data, the hold-out metrics, the
manifest, the whole bundle as artefacts (``runs:/<id>/bundle``), and two logged models:

- ``tasador``, the whole appraisal as an MLflow ``pyfunc`` model (``app.mlflow_model``):
  homes in, the answers of ``/predecir/lote?detalle=true`` out. It carries the bundle, the
  ``app`` package and pinned requirements, so ``mlflow.pyfunc.spark_udf`` and
  ``mlflow models serve`` run it with nothing else of ours. This is the one registered.
  The bundle also sits at its root (``models:/NAME/<version>/bundle``), which is what
  ``tasador serve --model-uri`` downloads and verifies.
- ``forest``, the bare forest as an MLflow scikit-learn model (encoded feature columns in,
  price out), with its signature and an input example, for who wants the estimator.

The tracking server is ``MLFLOW_TRACKING_URI``'s; with none set, MLflow's own local store
(``sqlite:///mlflow.db`` and ``./mlruns`` in the working folder), no server needed.
"""

import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib

from app.bundle import ENCODINGS_FILE, MODEL_FILE
from app.bundle.plain_pickle import loads as load_plain
from app.bundle.source import BUNDLE_PATH, import_mlflow
from app.features import FeatureBuilder
from app.schemas.formulario import Formulario
from app.schemas.manifest import Manifest

APPRAISAL_NAME = "tasador"  # the logged pyfunc model's name within the run (registered)
FOREST_NAME = "forest"  # the logged scikit-learn model's name within the run
# What loading a bundle and appraising a table import, pinned in the pyfunc model's
# requirements (tests/deploy/test_mlflow.py checks them against a fresh interpreter's imports);
# MLflow adds itself.
APPRAISAL_REQUIREMENTS = ("numpy", "onnxruntime", "pandas", "pydantic", "starlette")
# skops (the format MLflow loads without running pickled code) must be told the one type
# a forest holds that is not on its own safe list.
SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


@dataclass(frozen=True)
class Tracked:
    """What MLflow recorded."""

    run_id: str
    experiment_id: str
    model_uri: str  # the logged pyfunc model, the one registered (models:/m-...)
    forest_uri: str  # the logged scikit-learn model (models:/m-...)
    registered: str | None = None  # NAME, when registered
    version: str | None = None  # its new version
    alias: str | None = None  # set to that version


def log_training(
    bundle_dir: Path,
    manifest: Manifest,
    *,
    experiment: str,
    register: str | None = None,
    alias: str | None = None,
) -> Tracked:
    """Log the bundle in ``bundle_dir`` (written and verified by ``train``) as one run;
    with ``register``, register it as a new version of that model (and point ``alias``
    at it)."""
    import_mlflow("--mlflow", extra="mlflow-train")
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    forest = joblib.load(bundle_dir / MODEL_FILE)  # written by this process, just verified
    example = _input_example(bundle_dir, manifest)
    signature = infer_signature(example, forest.predict(example.to_numpy()))
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=manifest.version) as run:
        mlflow.log_params(_params(manifest))
        mlflow.log_metrics(_metrics(manifest))
        mlflow.set_tags(
            {
                "tasador.version": manifest.version,
                "tasador.data.description": manifest.data.description,
                "tasador.synthetic": str(manifest.data.synthetic).lower(),
            }
        )
        mlflow.log_dict(manifest.model_dump(mode="json"), "manifest.json")
        mlflow.log_artifacts(str(bundle_dir), BUNDLE_PATH)
        with warnings.catch_warnings():
            # MLflow 3.17 converts the example with a pandas call pandas 3 deprecates.
            warnings.filterwarnings("ignore", "Operation with range", module="mlflow")
            # It checks the example on the forest, fitted on a matrix without column names.
            warnings.filterwarnings("ignore", "X has feature names", category=UserWarning)
            forest_info = mlflow.sklearn.log_model(
                forest,
                name=FOREST_NAME,
                signature=signature,
                input_example=example,
                serialization_format="skops",
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                # Listed, not inferred: inferring loads the model in a subprocess (~6 s).
                pip_requirements=_forest_requirements(manifest),
            )
        info = _log_appraisal(bundle_dir, manifest)
        client = MlflowClient()
        client.log_model_artifacts(info.model_id, str(bundle_dir), BUNDLE_PATH)
    tracked = Tracked(
        run.info.run_id, run.info.experiment_id, info.model_uri, forest_info.model_uri
    )
    if register is None:
        return tracked
    version = mlflow.register_model(info.model_uri, register, tags=_version_tags(manifest))
    if alias is not None:
        client.set_registered_model_alias(register, alias, version.version)
    return Tracked(
        tracked.run_id,
        tracked.experiment_id,
        tracked.model_uri,
        tracked.forest_uri,
        register,
        str(version.version),
        alias,
    )


def _log_appraisal(bundle_dir: Path, manifest: Manifest) -> Any:
    """Log the whole appraisal as a pyfunc model carrying the bundle and the app package."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature

    import app
    from app.mlflow_model import BUNDLE_ARTIFACT, Tasador, output_schema

    homes = [r.formulario for r in manifest.reference]
    return mlflow.pyfunc.log_model(
        name=APPRAISAL_NAME,
        python_model=Tasador(),
        artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
        code_paths=[str(Path(app.__file__).parent)],
        # No input schema: MLflow would refuse a whole batch for one row of a wrong type,
        # where each row is to be validated, and refused, on its own (app.service.tables).
        signature=ModelSignature(inputs=None, outputs=output_schema()),
        input_example=_homes_example(homes),
        # Listed, not inferred: inferring loads the model in a subprocess (~6 s).
        pip_requirements=_appraisal_requirements(manifest),
    )


def _homes_example(homes: list[dict[str, Any]]) -> Any:
    """The reference homes as the pyfunc model takes them: a column per API field."""
    import pandas as pd

    return pd.DataFrame(homes)


def _input_example(bundle_dir: Path, manifest: Manifest) -> Any:
    """The reference homes as the model sees them: encoded columns, by name."""
    import pandas as pd

    encodings = load_plain((bundle_dir / ENCODINGS_FILE).read_bytes())
    builder = FeatureBuilder(manifest.features, encodings)
    homes = [Formulario.model_validate(r.formulario) for r in manifest.reference]
    return pd.DataFrame(builder.matrix(homes), columns=manifest.features)


def _params(manifest: Manifest) -> dict[str, Any]:
    data = manifest.data
    return {
        **manifest.params,
        "target_scale": manifest.target_scale,
        "features": ",".join(manifest.features),
        "data.source": data.source,
        "data.synthetic": data.synthetic,
        "data.rows": data.rows,
        "data.rows_rejected": data.rows_rejected,
        "data.sha256": data.sha256,
    }


def _metrics(manifest: Manifest) -> dict[str, float]:
    """The hold-out metrics, each confidence grade's as ``confianza.<grade>.*``, and the
    grouped cross-validation's as ``cv.*``."""
    metrics = {k: v for k, v in manifest.metrics.model_dump().items() if v is not None}
    if manifest.confianza is not None:
        for grade, summary in manifest.confianza.grades.items():
            for name, value in summary.model_dump(exclude={"rows"}).items():
                if value is not None:
                    metrics[f"confianza.{grade}.{name}"] = float(value)
    if manifest.validation is not None:
        figures = manifest.validation.model_dump(exclude={"chosen", "candidates", "method"})
        for name, value in figures.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[f"cv.{name}"] = float(value)
    return metrics


def _version_tags(manifest: Manifest) -> dict[str, Any]:
    return {"tasador.version": manifest.version, "tasador.synthetic": manifest.data.synthetic}


def _appraisal_requirements(manifest: Manifest) -> list[str]:
    """``APPRAISAL_REQUIREMENTS`` at the versions training ran with; scikit-learn too for
    a bundle without a compiled engine, which it would then serve."""
    pinned = list(APPRAISAL_REQUIREMENTS)
    if manifest.versions.onnxruntime is None:
        pinned += ["scikit-learn", "joblib"]
    return [f"{name}=={version(name)}" for name in pinned]


def _forest_requirements(manifest: Manifest) -> list[str]:
    import skops

    versions = manifest.versions
    return [
        f"scikit-learn=={versions.scikit_learn}",
        f"numpy=={versions.numpy}",
        f"skops=={skops.__version__}",
        "pandas",
    ]

"""The appraisal as an MLflow ``pyfunc`` model, which ``tasador train --mlflow`` logs and
registers: what ``mlflow.pyfunc.load_model``, ``mlflow.pyfunc.spark_udf`` and
``mlflow models serve`` run, with nothing of ours installed but what the model carries.

The model holds the whole bundle as an artefact and loads it as the service does
(``load_bundle``: hashes, library versions, reference predictions), so a bundle changed in
the store is refused here too. ``predict`` takes a DataFrame of homes by the API's field
names and answers as ``/predecir/lote?detalle=true`` does (``app.service.tables``): the
same validation and the same service functions, not a copy.

MLflow imports this module from the model's own ``code/`` folder on whatever machine loads
it (a Spark executor, a scoring server): it imports only what serving a bundle imports.
"""

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from app.bundle.loader import Bundle, load_bundle
from app.service.tables import LISTS, PRICES, appraise_frame

BUNDLE_ARTIFACT = "bundle"  # the artefact's key in the logged model


class Tasador(PythonModel):  # type: ignore[misc,unused-ignore]  # Any without MLflow
    """The verified bundle behind MLflow's ``pyfunc`` interface."""

    def __init__(self) -> None:
        # Set in load_context: the pickled instance MLflow stores must not hold the bundle.
        self._bundle: Bundle | None = None

    def load_context(self, context: PythonModelContext) -> None:
        """Load and verify the bundle the model carries."""
        self._bundle = load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,  # noqa: ARG002 - MLflow's signature; none taken
    ) -> pd.DataFrame:
        """One row of answers per home (``app.service.tables.appraise_frame``); ``motivo``
        is empty ("") where the home was appraised."""
        if self._bundle is None:  # MLflow always calls load_context first
            self.load_context(context)
        assert self._bundle is not None
        answers = appraise_frame(self._bundle, model_input)
        # spark_udf casts a text column holding any text with numpy's str, None included
        # ("None"): an empty text is what survives, the same in pandas, JSON and Spark.
        answers["motivo"] = answers["motivo"].fillna("")
        return answers


def output_schema() -> Any:
    """The answer's columns as MLflow types; ``spark_udf`` returns them as one struct."""
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import Array

    return Schema(
        [
            *(ColSpec("double", name) for name in PRICES),
            *(ColSpec(Array("string"), name, required=False) for name in LISTS),
            ColSpec("string", "motivo", required=False),
        ]
    )

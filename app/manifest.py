"""The bundle's manifest: the contract between training and serving, as a typed model."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import Metricas

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.pkl"
ENCODINGS_FILE = "encodings.pkl"
ONNX_FILE = "forest.onnx"  # the compiled engine; optional, scikit-learn serves without it
CHECK_FILE = "check.npz"  # inputs and scikit-learn's predictions, to check the engine
FORMAT_VERSION = 1
TARGET = "precio"


class Versions(BaseModel):
    """Library versions the bundle was written with."""

    python: str
    scikit_learn: str
    numpy: str
    joblib: str
    onnxruntime: str | None = None


class FeatureRange(BaseModel):
    """Smallest and largest value of a feature in the training data."""

    min: float
    max: float


class TrainingData(BaseModel):
    """Where the training rows came from, and a fingerprint of them."""

    source: str = Field(description="'synthetic' or the CSV file's name.")
    synthetic: bool
    description: str
    rows: int = Field(description="Rows used (training plus hold-out).")
    rows_rejected: int
    sha256: str = Field(description="Fingerprint of the rows used, in feature order.")


class Reference(BaseModel):
    """An input with the prediction the model gave for it at training time."""

    formulario: dict[str, Any]
    precio: float


class Manifest(BaseModel):
    """What a bundle is; written by ``tasador train``, checked by the service at start-up."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    version: str = Field(description="Bundle id, derived from the model file's hash.")
    created_at: datetime
    estimator: str
    params: dict[str, Any]
    features: list[str] = Field(min_length=1, description="Feature names in the model's order.")
    target: str = TARGET
    versions: Versions
    metrics: Metricas = Field(description="Hold-out metrics.")
    data: TrainingData
    feature_ranges: dict[str, FeatureRange]
    artefacts: dict[str, str] = Field(description="File name → SHA-256 of its bytes.")
    reference: list[Reference] = Field(min_length=1)

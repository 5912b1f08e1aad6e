"""The bundle's manifest: the contract between training and serving, as a typed model.

It is a wire format too: ``GET /modelo`` answers it. The bundle's file names are in
``app.bundle``.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.evaluacion import METRICAS_EJEMPLO, Metricas
from app.schemas.formulario import FORMULARIO_EJEMPLO

FORMAT_VERSION = 1
TARGET = "precio"
# What the forest predicts: the price itself, or its natural logarithm (the service answers
# exp of the forest's average then).
TargetScale = Literal["precio", "log"]


VERSIONS_EXAMPLE: dict[str, Any] = {
    "python": "3.11.7",
    "scikit_learn": "1.9.1",
    "numpy": "2.4.6",
    "joblib": "1.6.0",
    "onnxruntime": "1.32.0",
}
DATA_EXAMPLE: dict[str, Any] = {
    "source": "synthetic",
    "synthetic": True,
    "description": "synthetic Madrid listings (generator v1, seed 42, 20000 rows)",
    "rows": 20_000,
    "rows_rejected": 0,
    "sha256": "992669a65151ed375f27be6c8e2f5ad718734dd5e3ae43d3e355bb6fcb7c8b74",
}
REFERENCE_EXAMPLE: dict[str, Any] = {"formulario": FORMULARIO_EJEMPLO, "precio": 470_526.32}
INTERVAL_EXAMPLE: dict[str, Any] = {
    "method": "split conformal in log price, normalised by the zone's error spread",
    "level": 0.8,
    "coverage": 0.808,
    "coverage_by_price_tercile": [0.798, 0.812, 0.814],
    "median_relative_width": 0.613,
    "mean_relative_width": 0.669,
    "rows": 4000,
}
ZONES_EXAMPLE: dict[str, Any] = {
    "cell_m": [556, 507],
    "cells": 1198,
    "min_homes": 5,
    "rings": 2,
    "coverage": 0.997,
}
TESTIGOS_EXAMPLE: dict[str, Any] = {
    "rows": 15_033,
    "cell_m": [250, 254],
    "min_homes": 5,
    "price_jitter": 0.025,
    "price_rounding": 1000,
    "shift_m": [30, 60],
}
GRADE_EXAMPLE: dict[str, Any] = {"share": 0.5, "median_ape": 0.138, "coverage": 0.806, "rows": 2000}
CONFIANZA_EXAMPLE: dict[str, Any] = {
    "method": "the interval's width relative to the price, split at hold-out quantiles",
    "alta": 0.52,
    "media": 0.71,
    "grades": {
        "alta": GRADE_EXAMPLE,
        "media": {"share": 0.35, "median_ape": 0.163, "coverage": 0.816, "rows": 1400},
        "baja": {"share": 0.15, "median_ape": 0.214, "coverage": 0.808, "rows": 600},
    },
}

MANIFEST_EXAMPLE: dict[str, Any] = {
    "format_version": 1,
    "version": "rf-2b5fe44d0743",
    "created_at": "2026-11-23T04:26:00Z",
    "estimator": "RandomForestRegressor",
    "params": {"seed": 42, "n_estimators": 100, "min_samples_leaf": 5},
    "features": list(FORMULARIO_EJEMPLO),
    "target": "precio",
    "versions": VERSIONS_EXAMPLE,
    "metrics": METRICAS_EJEMPLO,
    "data": DATA_EXAMPLE,
    "feature_ranges": {"superficie_construida": {"min": 25.0, "max": 600.0}},
    "artefacts": {"model.pkl": "6a1f…", "encodings.pkl": "03bc…"},
    "reference": [REFERENCE_EXAMPLE],
    "interval": INTERVAL_EXAMPLE,
    "zones": ZONES_EXAMPLE,
    "testigos": TESTIGOS_EXAMPLE,
    "confianza": CONFIANZA_EXAMPLE,
}


class Versions(BaseModel):
    """Library versions the bundle was written with."""

    model_config = ConfigDict(json_schema_extra={"examples": [VERSIONS_EXAMPLE]})

    python: str
    scikit_learn: str
    numpy: str
    joblib: str
    onnxruntime: str | None = None


class FeatureRange(BaseModel):
    """Smallest and largest value of a feature in the training data."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"min": 25.0, "max": 600.0}]})

    min: float
    max: float


class TrainingData(BaseModel):
    """Where the training rows came from, and a fingerprint of them."""

    model_config = ConfigDict(json_schema_extra={"examples": [DATA_EXAMPLE]})

    source: str = Field(description="'synthetic' or the CSV file's name.")
    synthetic: bool
    description: str
    rows: int = Field(description="Rows used (training plus hold-out).")
    rows_rejected: int
    unknown: dict[str, int] = Field(
        default_factory=dict, description="Rows used with each optional field unknown."
    )
    sha256: str = Field(description="Fingerprint of the rows used, in feature order.")


class Reference(BaseModel):
    """An input with the prediction the model gave for it at training time, and (bundles
    with a valuation) its interval and the contribution of each feature, in model order."""

    model_config = ConfigDict(json_schema_extra={"examples": [REFERENCE_EXAMPLE]})

    formulario: dict[str, Any]
    precio: float
    interval: tuple[float, float] | None = None
    contributions: list[float] | None = None


class IntervalSummary(BaseModel):
    """How the prediction interval was calibrated, and how it did on hold-out rows."""

    model_config = ConfigDict(json_schema_extra={"examples": [INTERVAL_EXAMPLE]})

    method: str
    level: float = Field(description="The share of true prices it should hold (nivel).")
    coverage: float = Field(description="The share of hold-out prices inside their interval.")
    coverage_by_price_tercile: list[float] = Field(
        description="The same for the cheapest, middle and dearest third of hold-out homes."
    )
    coverage_unknown: float | None = Field(
        default=None,
        description="The same for hold-out homes with some field unknown (null if none).",
    )
    rows_unknown: int = Field(default=0, description="Hold-out homes with some field unknown.")
    median_relative_width: float = Field(description="Median of (upper - lower) / true price.")
    mean_relative_width: float
    rows: int = Field(description="Hold-out rows these were measured on.")


class ZonesSummary(BaseModel):
    """How the zone aggregate was built: a grid of cells, each a median of training homes."""

    model_config = ConfigDict(json_schema_extra={"examples": [ZONES_EXAMPLE]})

    cell_m: tuple[int, int] = Field(description="Cell height and width, in metres.")
    cells: int = Field(description="Cells kept (with at least min_homes homes).")
    min_homes: int
    rings: int = Field(description="A home borrows the nearest kept cell this many cells away.")
    coverage: float = Field(description="The share of hold-out homes with a zone.")


class TestigosSummary(BaseModel):
    """How the testigos (comparable homes) were coarsened from the training homes."""

    model_config = ConfigDict(json_schema_extra={"examples": [TESTIGOS_EXAMPLE]})

    rows: int = Field(description="Testigos kept.")
    cell_m: tuple[int, int] = Field(description="The neighbourhood cell, height and width, m.")
    min_homes: int = Field(description="Only homes whose cell held at least this many.")
    price_jitter: float = Field(description="Each price moved at random by up to this share.")
    price_rounding: int = Field(description="Then rounded to this many euros.")
    shift_m: tuple[float, float] = Field(description="Each home moved this far, in metres.")


class GradeSummary(BaseModel):
    """One confidence grade, measured on the hold-out homes."""

    model_config = ConfigDict(json_schema_extra={"examples": [GRADE_EXAMPLE]})

    share: float = Field(description="Share of hold-out homes given this grade.")
    median_ape: float | None = Field(description="Median of |error| / price (null: none).")
    coverage: float | None = Field(description="Share of true prices inside the interval.")
    rows: int


class ConfianzaSummary(BaseModel):
    """The confidence grades: their thresholds, and how each did on the hold-out homes."""

    model_config = ConfigDict(json_schema_extra={"examples": [CONFIANZA_EXAMPLE]})

    method: str
    alta: float = Field(description="alta up to this interval width relative to the price.")
    media: float = Field(description="media up to this one; baja beyond, or when unlike.")
    grades: dict[str, GradeSummary] = Field(description="alta, media and baja.")


CANDIDATE_EXAMPLE: dict[str, Any] = {
    "target_scale": "log",
    "min_samples_leaf": 3,
    "max_features": 0.5,
    "n_estimators": 100,
    "mape": 0.171,
    "r2": 0.861,
    "nodes": 512_000,
}
VALIDATION_EXAMPLE: dict[str, Any] = {
    "method": "GroupKFold over ~250 m grid cells",
    "folds": 5,
    "cell_km": [1.0, 1.02],
    "rows": 20_000,
    "r2": 0.861,
    "mape": 0.171,
    "median_ape": 0.128,
    "within_10": 0.41,
    "within_20": 0.72,
    "coverage": 0.801,
    "coverage_by_price_tercile": [0.79, 0.81, 0.80],
    "rows_unknown": 12_000,
    "mape_unknown": 0.175,
    "coverage_unknown": 0.80,
    "median_relative_width": 0.47,
    "chosen": CANDIDATE_EXAMPLE,
    "candidates": [CANDIDATE_EXAMPLE],
}


class Candidate(BaseModel):
    """A forest tried in the search, with its grouped-CV scores (absent for the chosen one
    as configured without a search)."""

    model_config = ConfigDict(json_schema_extra={"examples": [CANDIDATE_EXAMPLE]})

    target_scale: TargetScale
    min_samples_leaf: int
    max_features: float
    n_estimators: int
    mape: float | None = None
    r2: float | None = None
    nodes: int | None = Field(default=None, description="Nodes in the whole forest, about.")


class CrossValidation(BaseModel):
    """The chosen forest measured by cross-validation grouped by location: every home
    predicted by a forest that saw no home of its ~250 m cell, its interval calibrated as
    training calibrates it."""

    model_config = ConfigDict(json_schema_extra={"examples": [VALIDATION_EXAMPLE]})

    method: str
    folds: int
    cell_km: tuple[float, float]
    rows: int
    r2: float
    mape: float = Field(description="Mean of |error| / price.")
    median_ape: float = Field(description="Median of |error| / price.")
    within_10: float = Field(description="Share of homes priced within 10 %.")
    within_20: float = Field(description="Share of homes priced within 20 %.")
    coverage: float = Field(description="Share of true prices inside their interval.")
    coverage_by_price_tercile: list[float]
    rows_unknown: int = Field(description="Homes with some field unknown.")
    mape_unknown: float | None = Field(description="MAPE on homes with some field unknown.")
    coverage_unknown: float | None = Field(description="Coverage on those homes.")
    median_relative_width: float = Field(description="Median of (upper - lower) / price.")
    chosen: Candidate
    candidates: list[Candidate] = Field(description="Every forest tried (empty: no search).")


class Manifest(BaseModel):
    """What a bundle is; written by ``tasador train``, checked by the service at start-up."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [MANIFEST_EXAMPLE]})

    format_version: int = FORMAT_VERSION
    version: str = Field(description="Bundle id, derived from the model file's hash.")
    created_at: datetime
    estimator: str
    params: dict[str, Any]
    features: list[str] = Field(min_length=1, description="Feature names in the model's order.")
    target: str = TARGET
    target_scale: TargetScale = Field(
        default="precio", description="What the forest predicts: the price, or its log."
    )
    versions: Versions
    metrics: Metricas = Field(
        description="Hold-out metrics: of the forest fitted without the hold-out rows (the "
        "served one is then fitted on every row, params.refit)."
    )
    data: TrainingData
    feature_ranges: dict[str, FeatureRange]
    artefacts: dict[str, str] = Field(description="File name → SHA-256 of its bytes.")
    reference: list[Reference] = Field(min_length=1)
    interval: IntervalSummary | None = Field(
        default=None, description="The prediction interval (absent in older bundles)."
    )
    zones: ZonesSummary | None = Field(
        default=None, description="The zone aggregate (absent in older bundles)."
    )
    testigos: TestigosSummary | None = Field(
        default=None,
        description="The comparable homes' table (absent when trained with --sin-testigos, "
        "and in older bundles).",
    )
    confianza: ConfianzaSummary | None = Field(
        default=None, description="The confidence grades (absent in older bundles)."
    )
    validation: CrossValidation | None = Field(
        default=None,
        description="Grouped cross-validation of the chosen forest (absent when training "
        "skipped it, and in older bundles).",
    )

"""Fits the forest and writes the model bundle, atomically.

The bundle is written into a temporary folder beside the target, loaded back through the
same checks the service runs at start-up, and only then renamed into place: a crash or a
failed check never leaves a half-written bundle where the service looks for one.
"""

import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from app.bundle import CHECK_FILE, ENCODINGS_FILE, MANIFEST_FILE, MODEL_FILE, ONNX_FILE
from app.bundle.artefacts import sha256_file
from app.bundle.loader import load_bundle
from app.bundle.versions import current_versions
from app.engines.onnx import NAME as ONNX
from app.engines.sklearn import SklearnEngine
from app.features import FEATURES as COLUMNS
from app.features import FeatureBuilder, default_encodings
from app.schemas.formulario import Formulario
from app.schemas.manifest import FeatureRange, Manifest, Reference, TrainingData
from app.service.scoring import score
from app.training.compile import forest_to_onnx
from app.training.dataset import Dataset, DatasetError

# The model's column order. The service reads it from the manifest, so changing it here
# needs no change anywhere else.
FEATURES = tuple(feature.name for feature in COLUMNS)
ENCODINGS = default_encodings()
MIN_ROWS = 20
TREES_PER_STEP = 5  # progress granularity; warm-starting gives the same forest as one fit


@dataclass(frozen=True)
class TrainingConfig:
    """How the forest is fitted. The defaults make the committed bundle."""

    seed: int = 42
    n_estimators: int = 100
    # Leaves of 5 rows keep hold-out accuracy while making the forest ~6x smaller than
    # full depth, which keeps model.pkl well under 20 MB and prediction fast.
    min_samples_leaf: int = 5
    test_size: float = 0.2
    n_references: int = 8
    n_jobs: int = -1
    check_rows: int = 2_000
    features: tuple[str, ...] = FEATURES


class OutputError(RuntimeError):
    """The output folder cannot take the bundle; the message is one line."""


Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train(
    dataset: Dataset,
    out_dir: Path,
    config: TrainingConfig = TrainingConfig(),
    *,
    say: Say = _stderr,
    progress: bool = True,
) -> Manifest:
    """Fit a forest on ``dataset``, write and verify the bundle, move it to ``out_dir``."""
    if len(dataset) < MIN_ROWS:
        raise DatasetError(f"{len(dataset)} usable rows; training needs at least {MIN_ROWS}")
    _check_replaceable(out_dir)
    features = list(config.features)
    builder = FeatureBuilder(features, ENCODINGS)
    x = builder.matrix(dataset.formularios)
    y = dataset.precios
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=config.test_size, random_state=config.seed
    )
    say(f"Training on {len(train_idx)} rows, holding out {len(test_idx)} ({dataset.source}).")
    forest = _fit(x[train_idx], y[train_idx], config, progress)

    engine = SklearnEngine(forest)
    metrics = score(y[test_idx], engine.predict(x[test_idx]))
    say(
        f"Hold-out: RMSE {metrics.rmse:,.0f} €  MAE {metrics.mae:,.0f} €  "
        f"R² {metrics.r2 if metrics.r2 is None else round(metrics.r2, 3)}  "
        f"MAPE {metrics.mape:.1%}"
    )
    ref_idx = test_idx[: config.n_references]
    ref_pred = engine.predict(x[ref_idx])
    fields = set(Formulario.model_fields)
    reference = [
        Reference(
            formulario=dataset.formularios[i].model_dump(mode="json", include=fields),
            precio=float(p),
        )
        for i, p in zip(ref_idx, ref_pred, strict=True)
    ]
    fingerprint = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
    try:
        say("Writing the bundle…")
        joblib.dump(forest, staging / MODEL_FILE, compress=3)
        joblib.dump(ENCODINGS, staging / ENCODINGS_FILE)
        say("Compiling the forest to ONNX…")
        (staging / ONNX_FILE).write_bytes(forest_to_onnx(forest, len(features)))
        check_x = _check_inputs(x, test_idx, config)
        np.savez_compressed(staging / CHECK_FILE, x=check_x, y=engine.predict(check_x))
        artefacts = {
            name: sha256_file(staging / name)
            for name in (MODEL_FILE, ENCODINGS_FILE, ONNX_FILE, CHECK_FILE)
        }
        manifest = Manifest(
            version=f"rf-{artefacts[MODEL_FILE][:12]}",
            created_at=datetime.now(UTC),
            estimator=type(forest).__name__,
            params={**_config_params(config), **_params(forest)},
            features=features,
            versions=current_versions(),
            metrics=metrics,
            data=TrainingData(
                source=dataset.source,
                synthetic=dataset.synthetic,
                description=dataset.description,
                rows=len(dataset),
                rows_rejected=dataset.rejected.total,
                sha256=fingerprint,
            ),
            feature_ranges={
                name: FeatureRange(min=float(x[:, j].min()), max=float(x[:, j].max()))
                for j, name in enumerate(features)
            },
            artefacts=artefacts,
            reference=reference,
        )
        (staging / MANIFEST_FILE).write_text(
            json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        # The service's own checks, before the bundle goes live.
        if load_bundle(staging).engine.name != ONNX:
            raise OutputError("the compiled ONNX forest does not reproduce scikit-learn")
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size_mb = (out_dir / MODEL_FILE).stat().st_size / 1e6
    say(f"Bundle {manifest.version} written to {out_dir} (model.pkl {size_mb:.1f} MB).")
    return manifest


def _fit(
    x: np.ndarray, y: np.ndarray, config: TrainingConfig, progress: bool
) -> RandomForestRegressor:
    forest = RandomForestRegressor(
        n_estimators=0,
        min_samples_leaf=config.min_samples_leaf,
        random_state=config.seed,
        n_jobs=config.n_jobs,
        warm_start=True,
    )
    with tqdm(
        total=config.n_estimators,
        desc="Fitting trees",
        unit="tree",
        file=sys.stderr,
        disable=not progress,
    ) as bar:
        while forest.n_estimators < config.n_estimators:
            step = min(TREES_PER_STEP, config.n_estimators - forest.n_estimators)
            forest.n_estimators += step
            forest.fit(x, y)
            bar.update(step)
    forest.warm_start = False
    forest.n_jobs = None
    return forest


def _check_inputs(x: np.ndarray, test_idx: np.ndarray, config: TrainingConfig) -> np.ndarray:
    """Rows to check an engine on: hold-out rows, and as many again whose columns are
    shuffled independently, so they combine training values (where splits sit) in ways
    the data never did."""
    rng = np.random.default_rng(config.seed)
    half = config.check_rows // 2
    held_out = x[test_idx[:half]]
    mixed = np.column_stack([rng.choice(x[:, j], size=half) for j in range(x.shape[1])])
    return np.vstack([held_out, mixed])


def _config_params(config: TrainingConfig) -> dict[str, object]:
    params = asdict(config)
    del params["features"]  # recorded as the manifest's own ``features``
    return params


def _params(forest: RandomForestRegressor) -> dict[str, object]:
    keep = ("n_estimators", "min_samples_leaf", "max_depth", "max_features", "bootstrap")
    params = forest.get_params()
    return {k: params[k] for k in keep}


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a folder that holds anything but a bundle."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MANIFEST_FILE).exists():
        raise OutputError(
            f"{out_dir} is not empty and holds no {MANIFEST_FILE}; refusing to replace it"
        )


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Put the verified bundle at ``out_dir``; the old one is removed only afterwards."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    retired.rmdir()
    out_dir.rename(retired)
    try:
        staging.rename(out_dir)
    except BaseException:
        retired.rename(out_dir)  # put the previous bundle back
        raise
    shutil.rmtree(retired, ignore_errors=True)

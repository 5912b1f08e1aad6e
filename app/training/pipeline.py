"""Fits the forest and writes the model bundle, atomically.

The bundle is written into a temporary folder beside the target, loaded back through the
same checks the service runs at start-up, and only then swapped into place in one step
(``app.training.swap``): a kill at any instant or a failed check never leaves a missing or
half-written bundle where the service looks for one.
"""

import hashlib
import io
import json
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from app.bundle import (
    CHECK_FILE,
    ENCODINGS_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    ONNX_FILE,
    SIGNATURE_FILE,
)
from app.bundle.loader import load_bundle
from app.bundle.signing import Signer
from app.bundle.versions import current_versions
from app.engines import Engine, LogPriceEngine, priced
from app.engines.onnx import NAME as ONNX
from app.engines.sklearn import SklearnEngine
from app.features import FEATURES as COLUMNS
from app.features import OPTIONAL, FeatureBuilder, default_encodings
from app.i18n import DEFAULT
from app.schemas.formulario import Formulario
from app.schemas.manifest import (
    Candidate,
    ConfianzaSummary,
    FeatureRange,
    Manifest,
    Reference,
    TargetScale,
    TrainingData,
)
from app.service.scoring import score
from app.training import swap
from app.training.calibration import Homes, calibrate, confidence
from app.training.compile import forest_to_leaf_onnx, forest_to_onnx, leaf_contributions
from app.training.dataset import Dataset, DatasetError
from app.training.search import (
    Grid,
    as_price,
    choose,
    cross_validate,
    fitted_target,
    location_groups,
)
from app.training.testigos import coarsen
from app.valuation.artefact import VALUATION_FILE, Valuation
from app.valuation.confidence import GRADES, is_unlike
from app.valuation.explanation import CONTRIBUTIONS_FILE, LEAVES_FILE, LeafTable
from app.valuation.interval import Interval
from app.valuation.novelty import Novelty, unknown_fields
from app.valuation.testigos import TESTIGOS_FILE
from app.valuation.zones import ZoneGrid

# The model's column order. The service reads it from the manifest, so changing it here
# needs no change anywhere else.
FEATURES = tuple(feature.name for feature in COLUMNS)
ENCODINGS = default_encodings()
MIN_ROWS = 20
DEFAULT_GRID = Grid()
TREES_PER_STEP = 5  # progress granularity; warm-starting gives the same forest as one fit


@dataclass(frozen=True)
class TrainingConfig:
    """How the forest is fitted. The defaults make the committed bundle: the forest's
    shape is chosen by grouped cross-validation among ``search``'s candidates; without a
    search (``search=None``), it is the one given here."""

    seed: int = 42
    n_estimators: int = 100
    min_samples_leaf: int = 5
    max_features: float = 1.0
    target_scale: TargetScale = "log"
    search: Grid | None = DEFAULT_GRID
    folds: int = 5  # grouped cross-validation folds; 0 skips it (and the search)
    test_size: float = 0.2
    n_references: int = 8
    n_jobs: int = -1
    check_rows: int = 2_000
    features: tuple[str, ...] = FEATURES
    # The prediction interval's level: the share of true prices it should hold.
    nivel: float = 0.8
    # Once measured on the hold-out, fit the served forest on every row.
    refit: bool = True
    # Write the coarsened comparable homes (testigos) into the bundle.
    testigos: bool = True

    def candidate(self) -> Candidate:
        """The forest as configured, without a search."""
        return Candidate(
            target_scale=self.target_scale,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            n_estimators=self.n_estimators,
        )


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
    signer: Signer | None = None,
) -> Manifest:
    """Fit a forest on ``dataset``, calibrate its valuation, write and verify the bundle
    (signed by ``signer``, when given), and move it to ``out_dir``."""
    if len(dataset) < MIN_ROWS:
        raise DatasetError(f"{len(dataset)} usable rows; training needs at least {MIN_ROWS}")
    _check_replaceable(out_dir)
    features = list(config.features)
    forms = dataset.formularios
    x = FeatureBuilder(features, ENCODINGS).matrix(forms)
    y = dataset.precios
    unknown = _unknown_counts(forms)
    if any(unknown.values()):
        say("Unknown values: " + ", ".join(f"{n} in {c} rows" for n, c in unknown.items()) + ".")
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=config.test_size, random_state=config.seed
    )
    groups = location_groups(forms)
    chosen, tried = config.candidate(), list[Candidate]()
    if config.search is not None and config.folds > 1:
        say(f"Choosing the forest by {config.folds}-fold cross-validation grouped by location…")
        chosen, tried = choose(
            x[train_idx],
            y[train_idx],
            groups[train_idx],
            config.search,
            folds=config.folds,
            seed=config.seed,
            n_jobs=config.n_jobs,
            progress=progress,
        )
    say(f"Forest: {_shape(chosen)}.")
    say(f"Training on {len(train_idx)} rows, holding out {len(test_idx)} ({dataset.source}).")
    forest, out_of_bag = _fit(x[train_idx], y[train_idx], chosen, config, progress)
    engine = priced(SklearnEngine(forest), chosen.target_scale)
    predicted = engine.predict(x[test_idx])
    metrics = score(y[test_idx], predicted)
    say(
        f"Hold-out: RMSE {metrics.rmse:,.0f} €  MAE {metrics.mae:,.0f} €  "
        f"R² {metrics.r2 if metrics.r2 is None else round(metrics.r2, 3)}  "
        f"MAPE {metrics.mape:.1%}"
    )
    held_out = [forms[i] for i in test_idx]
    holdout = Homes.of(held_out, y[test_idx], predicted)
    valuation, interval, zones = calibrate(
        Homes.of([forms[i] for i in train_idx], y[train_idx], out_of_bag),
        [forms[i] for i in train_idx],
        holdout,
        config.nivel,
    )
    say(
        f"Interval ({config.nivel:.0%}): hold-out coverage {interval.coverage:.1%} "
        f"(by price tercile {' / '.join(f'{c:.1%}' for c in interval.coverage_by_price_tercile)}"
        f"{_unknown_coverage(interval.coverage_unknown)}), "
        f"median width {interval.median_relative_width:.1%} of the price."
    )
    ranges = _feature_ranges(features, x)
    thresholds, confianza = confidence(valuation, holdout, _unlike(held_out, ranges, valuation))
    say(_confianza_line(confianza))
    validation = None
    if config.folds > 1:
        validation = cross_validate(
            x,
            y,
            forms,
            groups,
            chosen,
            folds=config.folds,
            nivel=config.nivel,
            fit=lambda xs, ys, c: _fit(xs, ys, c, config, progress=False),
            tried=tried,
            say=say,
        )
        say(
            f"Grouped CV: R² {validation.r2:.3f}  MAPE {validation.mape:.1%}  "
            f"median APE {validation.median_ape:.1%}  within 10 % {validation.within_10:.0%}, "
            f"20 % {validation.within_20:.0%}; interval coverage {validation.coverage:.1%}"
            f"{_unknown_coverage(validation.coverage_unknown)}, "
            f"median width {validation.median_relative_width:.1%}."
        )
    if config.refit:
        # Measured, now fitted on every row: the hold-out figures are those of the same
        # forest fitted without the hold-out rows; the interval is calibrated again on the
        # out-of-bag answers of every row.
        say(f"Refitting the forest on all {len(y)} rows…")
        forest, out_of_bag = _fit(x, y, chosen, config, progress)
        engine = priced(SklearnEngine(forest), chosen.target_scale)
        valuation, _, zones = calibrate(
            Homes.of(forms, y, out_of_bag),
            forms,
            Homes.of(held_out, y[test_idx], engine.predict(x[test_idx])),
            config.nivel,
        )
    valuation = valuation.model_copy(update={"confianza": thresholds})
    contributions, roots = leaf_contributions(forest, len(features))
    files = {
        MODEL_FILE: _joblib_bytes(forest, compress=3),
        ENCODINGS_FILE: _joblib_bytes(ENCODINGS),
        ONNX_FILE: forest_to_onnx(forest, len(features)),
        CHECK_FILE: _npz(x=(check := _check_inputs(x, test_idx, config)), y=engine.predict(check)),
        VALUATION_FILE: (valuation.model_dump_json() + "\n").encode(),
        LEAVES_FILE: forest_to_leaf_onnx(forest, len(features)),
        CONTRIBUTIONS_FILE: _npz(contributions=contributions, roots=roots),
    }
    testigos = None
    if config.testigos:
        files[TESTIGOS_FILE], testigos = coarsen(forms, y, config.seed)
        say(f"Testigos: {testigos.rows} of {len(y)} homes, coarsened.")
    artefacts = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    reference = _references(
        dataset,
        _reference_rows(forms, test_idx, config.n_references),
        x,
        engine,
        valuation,
        contributions,
        roots,
        chosen.target_scale,
    )
    manifest = Manifest(
        version=f"rf-{_digest(artefacts)[:12]}",
        created_at=_created_at(dataset),
        estimator=type(forest).__name__,
        params={
            **_config_params(config),
            **_params(forest),
            "target_scale": chosen.target_scale,  # what the search chose, not the default
        },
        features=features,
        target_scale=chosen.target_scale,
        versions=current_versions(),
        metrics=metrics,
        data=TrainingData(
            source=dataset.source,
            synthetic=dataset.synthetic,
            description=dataset.description,
            rows=len(dataset),
            rows_rejected=dataset.rejected.total,
            unknown=unknown,
            sha256=hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest(),
        ),
        feature_ranges=ranges,
        artefacts=artefacts,
        reference=reference,
        interval=interval,
        zones=zones,
        testigos=testigos,
        confianza=confianza,
        validation=validation,
    )
    files[MANIFEST_FILE] = (
        json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    ).encode()
    trusted: tuple[str, ...] = ()
    if signer is not None:
        files[SIGNATURE_FILE] = signer.sign(files[MANIFEST_FILE])
        trusted = (signer.public.text,)  # the staged bundle must pass with this key alone
    say("Writing the bundle…")
    swap.write_verified(files, out_dir, lambda staging: _check_staged(staging, trusted), say)
    size_mb = len(files[MODEL_FILE]) / 1e6
    signed = f", signed by key {signer.public.key_id}" if signer else ""
    say(f"Bundle {manifest.version} written to {out_dir} (model.pkl {size_mb:.1f} MB{signed}).")
    return manifest


def _feature_ranges(features: list[str], x: np.ndarray) -> dict[str, FeatureRange]:
    return {
        name: FeatureRange(min=float(np.nanmin(column)), max=float(np.nanmax(column)))
        for name, column in zip(features, x.T, strict=True)
        if not np.isnan(column).all()
    }


def _unlike(
    forms: list[Formulario], ranges: dict[str, FeatureRange], valuation: Valuation
) -> np.ndarray:
    """Which homes the service would warn of as unlike the training data."""
    novelty = Novelty(ranges, valuation.ratios)
    grid = ZoneGrid(valuation.zones)
    return np.array(
        [
            is_unlike(novelty.check(f, grid.zone(f.latitud, f.longitud) is not None, 0.0, DEFAULT))
            for f in forms
        ],
        dtype=bool,
    )


def _confianza_line(summary: ConfianzaSummary) -> str:
    parts = []
    for name in GRADES:
        g = summary.grades[name]
        measured = (
            f", median error {g.median_ape:.1%}, coverage {g.coverage:.1%}"
            if g.median_ape is not None and g.coverage is not None
            else ""
        )
        parts.append(f"{name} {g.share:.0%} of homes{measured}")
    return "Confianza on the hold-out: " + "; ".join(parts) + "."


def _check_staged(staging: Path, trusted: tuple[str, ...]) -> None:
    """The service's own checks, before the bundle goes live."""
    if load_bundle(staging, "auto", trusted).engine.name != ONNX:
        raise OutputError("the compiled ONNX forest does not reproduce scikit-learn")


def _reference_rows(forms: list[Formulario], test_idx: np.ndarray, n: int) -> np.ndarray:
    """Hold-out rows to record answers for: half with every field known, half with some
    unknown (as many as there are), so that both paths are checked at every start."""
    unknown = [i for i in test_idx if unknown_fields(forms[i])]
    known = [i for i in test_idx if not unknown_fields(forms[i])]
    some = unknown[: n // 2]
    return np.array(sorted([*known[: n - len(some)], *some]) or list(test_idx[:n]))


def _references(
    dataset: Dataset,
    rows: np.ndarray,
    x: np.ndarray,
    engine: Engine,
    valuation: Valuation,
    contributions: np.ndarray,
    roots: np.ndarray,
    scale: TargetScale,
) -> list[Reference]:
    """Inputs with what the bundle answered for them at training time: the price, its
    interval and its contributions (in euros, as served), which the service must give
    back."""
    prices = engine.predict(x[rows])
    interval = Interval(valuation.interval)
    grid = ZoneGrid(valuation.zones)
    table = LeafTable(contributions, roots, scale == "log")
    explained = table.explain(_leaf_ids(forest_of(engine), x[rows]))
    fields = set(Formulario.model_fields)
    reference = []
    for k, (i, price) in enumerate(zip(rows, prices, strict=True)):
        formulario = dataset.formularios[i]
        zone = grid.zone(formulario.latitud, formulario.longitud)
        sigma = zone.sigma if zone else valuation.interval.sigma
        sigma *= interval.scale(unknown_fields(formulario))
        reference.append(
            Reference(
                formulario=formulario.model_dump(mode="json", include=fields),
                precio=float(price),
                interval=interval.bounds(float(price), sigma),
                contributions=[float(c) for c in explained.contributions[k]],
            )
        )
    return reference


def forest_of(engine: Engine) -> RandomForestRegressor:
    """The scikit-learn forest behind ``engine``."""
    raw = engine.raw if isinstance(engine, LogPriceEngine) else engine
    assert isinstance(raw, SklearnEngine)
    return raw.estimator


def _leaf_ids(forest: RandomForestRegressor, x: np.ndarray) -> np.ndarray:
    """Per row, the index (in ``leaf_contributions`` order) of the leaf reached in each
    tree: what ``leaves.onnx`` answers."""
    return np.stack([_leaves_reached(forest, x[i : i + 1]) for i in range(len(x))])


def _leaves_reached(forest: RandomForestRegressor, row: np.ndarray) -> np.ndarray:
    """The index (in ``leaf_contributions`` order) of the leaf ``row`` reaches in each tree."""
    offset, reached = 0, []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        leaves = np.flatnonzero(tree.children_left == -1)
        node = int(estimator.apply(row.astype(np.float32))[0])
        reached.append(offset + int(np.searchsorted(leaves, node)))
        offset += len(leaves)
    return np.array(reached)


def _digest(artefacts: dict[str, str]) -> str:
    """One hash of every file's hash: the bundle's identity."""
    return hashlib.sha256(json.dumps(artefacts, sort_keys=True).encode()).hexdigest()


def _created_at(dataset: Dataset) -> datetime:
    """When the data was made (``SOURCE_DATE_EPOCH`` when set, the reproducible-builds
    convention): the same data and seed then give the same bundle, byte for byte."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return dataset.dated


def _joblib_bytes(value: object, compress: int = 0) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(value, buffer, compress=compress)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _fit(
    x: np.ndarray, y: np.ndarray, candidate: Candidate, config: TrainingConfig, progress: bool
) -> tuple[RandomForestRegressor, np.ndarray]:
    """The fitted forest, and each training row's price predicted by the trees that did
    not see it (out of bag; NaN for a row every tree saw)."""
    forest = RandomForestRegressor(
        n_estimators=0,
        min_samples_leaf=candidate.min_samples_leaf,
        max_features=candidate.max_features,
        random_state=config.seed,
        n_jobs=config.n_jobs,
        warm_start=True,
    )
    target = fitted_target(y, candidate.target_scale)
    with tqdm(
        total=candidate.n_estimators,
        desc="Fitting trees",
        unit="tree",
        file=sys.stderr,
        disable=not progress,
    ) as bar:
        while forest.n_estimators < candidate.n_estimators:
            step = min(TREES_PER_STEP, candidate.n_estimators - forest.n_estimators)
            forest.n_estimators += step
            # Out-of-bag predictions once, with the last trees: they take every tree.
            forest.oob_score = forest.n_estimators == candidate.n_estimators
            with warnings.catch_warnings():
                # A row that every tree saw has no out-of-bag prediction: NaN, said here.
                warnings.filterwarnings("ignore", "Some inputs do not have OOB scores")
                forest.fit(x, target)
            bar.update(step)
    raw = np.asarray(forest.oob_prediction_, dtype=np.float64).reshape(-1)
    # What is pickled is the forest alone, as it would be fitted without this.
    del forest.oob_prediction_, forest.oob_score_
    forest.oob_score = False
    forest.warm_start = False
    forest.n_jobs = None
    return forest, as_price(raw, candidate.target_scale)


def _shape(candidate: Candidate) -> str:
    return (
        f"{candidate.n_estimators} trees, leaves of {candidate.min_samples_leaf}+ rows, "
        f"{candidate.max_features:g} of the features per split, fitted on "
        f"{'log price' if candidate.target_scale == 'log' else 'price'}"
    )


def _unknown_coverage(coverage: float | None) -> str:
    return "" if coverage is None else f"; homes with unknown fields {coverage:.1%}"


def _unknown_counts(forms: list[Formulario]) -> dict[str, int]:
    """How many homes have each optional field unknown (every optional field named)."""
    counts = Counter(name for f in forms for name in unknown_fields(f))
    return {name: counts[name] for name in OPTIONAL}


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
    params["search"] = config.search is not None  # the grid tried is in ``validation``
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

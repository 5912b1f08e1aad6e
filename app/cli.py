"""The ``tasador`` command: ``tasador serve`` and ``tasador train``."""

import argparse
import copy
import gc
import logging.config
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.config import EMBEDDED_MODEL_DIR, Settings

EXIT_USAGE = 2
GRACEFUL_SHUTDOWN_S = 30  # in-flight requests get this long to finish after SIGTERM


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasador", description="Madrid house-price model: train it, serve it."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve the model bundle over HTTP",
        description="Serve the bundle over HTTP. Flags override TASADOR_* variables.",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--model-dir", type=Path, help="bundle folder (default: models/)")
    serve.set_defaults(run=_serve)

    train = commands.add_parser(
        "train",
        help="train a model and write its bundle",
        description="Fit a RandomForest and write the bundle (model, encodings, manifest).",
    )
    train.add_argument(
        "--data",
        type=Path,
        help="CSV with the 11 Formulario columns plus precio "
        "(default: built-in synthetic Madrid listings)",
    )
    train.add_argument(
        "--out", type=Path, default=EMBEDDED_MODEL_DIR, help="bundle folder (default: models/)"
    )
    train.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    train.add_argument(
        "--rows", type=int, default=20_000, help="synthetic rows to generate (default 20000)"
    )
    train.add_argument("--trees", type=int, default=100, help="trees in the forest (default 100)")
    train.set_defaults(run=_train)
    return parser


def _serve(args: argparse.Namespace) -> int:
    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "model_dir": args.model_dir,
        }.items()
        if value is not None
    }
    try:
        settings = Settings(**{**Settings().model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = str(first["loc"][0])
        flag = next((k for k in overrides if where in (k, f"TASADOR_{k.upper()}")), None)
        name = f"--{flag.replace('_', '-')}" if flag else where
        print(f"tasador: invalid setting {name}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    # Imported only now: app.main builds its module-level app from the settings.
    import uvicorn

    from app.bundle import BundleError, load_bundle
    from app.main import create_app
    from app.server import OneWriteHttpToolsProtocol

    log_config = _log_config(settings.log_level)
    logging.config.dictConfig(log_config)
    try:
        bundle = load_bundle(settings.model_dir, settings.engine)
    except BundleError as exc:
        print(f"tasador: cannot start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    server: dict[str, Any] = {
        "http": OneWriteHttpToolsProtocol,
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": log_config,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings, bundle), **server)
        return 0
    # Several workers: the bundle was loaded here only to refuse a bad one before any
    # worker starts; each worker loads its own, so this process lets go of it.
    del bundle
    gc.collect()
    for key, value in overrides.items():  # workers build their app from the environment
        os.environ[f"TASADOR_{key.upper()}"] = str(value)
    uvicorn.run("app.main:app", workers=settings.workers, **server)
    return 0


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up plus tasador's own logger, applied in every worker."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["tasador"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def _train(args: argparse.Namespace) -> int:
    from app.training.dataset import DatasetError, read_csv
    from app.training.pipeline import OutputError, TrainingConfig, train
    from app.training.synthetic import generate

    if args.rows < 1 or args.trees < 1:
        print("tasador train: --rows and --trees must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.data is None:
            _say(f"Generating {args.rows} synthetic Madrid listings (seed {args.seed})…")
            dataset = generate(args.rows, args.seed)
        else:
            _say(f"Reading {args.data}…")
            dataset = read_csv(args.data)
            _say(f"{len(dataset)} usable rows, {dataset.rejected.total} rejected.")
            for line in dataset.rejected.summary():
                _say(f"  rejected {line}")
        manifest = train(dataset, args.out, TrainingConfig(seed=args.seed, n_estimators=args.trees))
    except (DatasetError, OutputError) as exc:
        print(f"tasador train: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Model {manifest.version} ready in {args.out}.")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

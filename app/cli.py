"""The ``tasador`` command: ``tasador serve``, ``train``, ``claves`` and ``predecir``.

Parsed by pydantic-settings: ``serve`` takes every ``Settings`` field as a flag, over its
``TASADOR_*`` variable; ``train`` takes ``TrainCommand``'s, ``claves`` ``KeysCommand``'s,
``predecir`` ``PredictCommand``'s (its model flags over the same variables).
A bad value is one line naming the flag or variable it came from, and exit code 2.
"""

import contextlib
import gc
import logging.config
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    CliApp,
    CliPositionalArg,
    CliSettingsSource,
    CliSubCommand,
    SettingsConfigDict,
    SettingsError,
)

from app.config import EMBEDDED_MODEL_DIR, ENV_PREFIX, Settings, describe, get_settings
from app.engines import EngineChoice
from app.i18n import from_environment, message

EXIT_USAGE = 2
MLFLOW_TRAIN = "mlflow-train"  # the extra `tasador train --mlflow` needs
GRACEFUL_SHUTDOWN_S = 30  # in-flight requests get this long to finish after SIGTERM


class ServeCommand(Settings):
    """Serve the model bundle over HTTP. Flags override TASADOR_* variables."""

    def cli_cmd(self) -> None:
        """Run the server until it is stopped."""
        raise SystemExit(serve(self))


class TrainCommand(BaseModel):
    """Fit a RandomForest and write the bundle (model, encodings, manifest)."""

    data: Path | None = Field(
        default=None,
        description="CSV with the Formulario columns plus precio; baños, antiguedad and "
        "superficie_util may be left out or empty where unknown "
        "(default: built-in synthetic Madrid listings)",
    )
    out: Path = Field(default=EMBEDDED_MODEL_DIR, description="bundle folder")
    seed: int = Field(default=42, description="random seed")
    rows: int = Field(default=20_000, ge=1, description="synthetic rows to generate")
    trees: int | None = Field(
        default=None,
        ge=1,
        description="fix the forest at this many trees (leaves of 5 rows, log price) instead "
        "of choosing it by cross-validation grouped by location",
    )
    buscar: bool = Field(
        default=True,
        description="choose the forest (log price or price, leaf size, features per split, "
        "trees) by cross-validation grouped by location; --no-buscar takes 100 trees, leaves "
        "of 5 rows, log price",
    )
    nivel: float = Field(
        default=0.8, gt=0, lt=1, description="the prediction interval's level (0.8 = 80 %)"
    )
    sin_testigos: bool = Field(
        default=False,
        description="leave the testigos (comparable homes, coarsened training homes) out of "
        "the bundle: answers then carry none, and say so",
    )
    firmar: Path | None = Field(
        default=None,
        description="sign the bundle with this Ed25519 private key (PEM, from tasador claves; "
        "an encrypted one takes its passphrase from TASADOR_KEY_PASSPHRASE)",
    )
    mlflow: bool = Field(
        default=False,
        description="also log the run to MLflow (MLFLOW_TRACKING_URI; default: a local "
        "store in ./mlflow.db): parameters, data, metrics, the bundle and the forest",
    )
    experimento: str = Field(default="tasador", description="MLflow experiment (with --mlflow)")
    registrar: str | None = Field(
        default=None, description="register the model under this name (with --mlflow)"
    )
    alias: str | None = Field(
        default=None, description="point this alias at the new version (with --registrar)"
    )

    def cli_cmd(self) -> None:
        """Train and write the bundle."""
        raise SystemExit(train(self))


class KeysCommand(BaseModel):
    """Make an Ed25519 key pair to sign bundles with (tasador train --firmar)."""

    ruta: CliPositionalArg[Path] = Field(
        description="the private key file to write (PEM, readable by its owner only; "
        "encrypted when TASADOR_KEY_PASSPHRASE is set); the public key goes to RUTA.pub"
    )

    def cli_cmd(self) -> None:
        """Write the key pair and say how to trust it."""
        raise SystemExit(make_keys(self))


def _described(name: str) -> str | None:
    return Settings.model_fields[name].description


class PredictCommand(BaseModel):
    """Appraise every home of a CSV or Parquet file into a new file, as /predecir/lote
    with detalle answers; the model flags are tasador serve's (and TASADOR_* too)."""

    entrada: CliPositionalArg[Path] = Field(
        description="CSV (the columns training reads, without precio) or Parquet file"
    )
    salida: Path | None = Field(
        default=None,
        description="output file, .csv or .parquet (default: ENTRADA.tasado.csv or "
        ".tasado.parquet, the input's kind)",
    )
    filas_por_bloque: int = Field(
        default=25_000, ge=1, description="rows read, appraised and written at a time"
    )
    idioma: Literal["en", "es"] | None = Field(
        default=None, description="language of the warnings (default: the terminal's)"
    )
    model_dir: Path | None = Field(default=None, description=_described("model_dir"))
    model_uri: str | None = Field(default=None, description=_described("model_uri"))
    model_cache: Path | None = Field(default=None, description=_described("model_cache"))
    engine: EngineChoice | None = Field(default=None, description=_described("engine"))

    def cli_cmd(self) -> None:
        """Appraise the file."""
        raise SystemExit(predict(self))


class Tasador(BaseSettings):
    """Madrid house-price model: train it, serve it, appraise files (tasador --version)."""

    model_config = SettingsConfigDict(
        cli_prog_name="tasador", cli_kebab_case=True, cli_implicit_flags=True
    )

    serve: CliSubCommand[ServeCommand] = Field(description="serve the model bundle over HTTP")
    train: CliSubCommand[TrainCommand] = Field(description="train a model and write its bundle")
    claves: CliSubCommand[KeysCommand] = Field(description="make a key pair to sign bundles")
    predecir: CliSubCommand[PredictCommand] = Field(
        description="appraise every home of a CSV or Parquet file"
    )

    def cli_cmd(self) -> None:
        """Run the chosen subcommand."""
        CliApp.run_subcommand(self)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script: the command's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        print(f"tasador {_version()}")
        return 0
    if not args:  # no command: say which there are, rather than exit in silence
        with contextlib.suppress(SystemExit):
            CliApp.run(Tasador, cli_args=["--help"], cli_settings_source=_cli_source())
        print("tasador: choose a command, e.g. tasador serve", file=sys.stderr)
        return EXIT_USAGE
    try:
        CliApp.run(Tasador, cli_args=args, cli_settings_source=_cli_source())
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    except ValidationError as exc:
        print(f"tasador: {describe(exc, args)}", file=sys.stderr)
        return EXIT_USAGE
    except SettingsError as exc:
        print(f"tasador: invalid setting: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


# How a flag's value is shown in --help, by the type pydantic-settings names it after.
_METAVARS = {"Path": "PATH", "str": "TEXT", "int": "N", "float": "NUMBER"}


def _cli_source() -> CliSettingsSource[Tasador]:
    """pydantic-settings' CLI source, with help a person can read: no ``null`` choices,
    metavars that say what to type (``KEY,...`` rather than ``tuple[str,...]``), and no
    default factory's repr."""

    def add_argument(parser: Any, *names: str, **kwargs: Any) -> Any:
        metavar = kwargs.get("metavar")
        if isinstance(metavar, str):
            if metavar.startswith("tuple["):
                kwargs["metavar"] = "A,B,..."
            else:
                kwargs["metavar"] = _METAVARS.get(metavar, metavar)
        if isinstance(kwargs.get("help"), str) and "(default factory:" in kwargs["help"]:
            kwargs["help"] = kwargs["help"].split(" (default factory:")[0]
        return parser.add_argument(*names, **kwargs)

    return CliSettingsSource(Tasador, cli_hide_none_type=True, add_argument_method=add_argument)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tasador")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def serve(settings: Settings) -> int:
    """Verify the bundle, then serve it with uvicorn until stopped."""
    from concurrent.futures import ThreadPoolExecutor

    from app import logs
    from app.bundle.loader import BundleError
    from app.bundle.source import load_served_bundle

    log_config = logs.log_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(log_config)
    if (taken := _address_taken(settings.host, settings.port)) is not None:
        # Said before the model loads, not after, in uvicorn's words ([Errno 98]).
        print(f"tasador: {message('cannot_start', from_environment(), why=taken)}", file=sys.stderr)
        return EXIT_USAGE
    # The bundle loads in a thread while the server's modules are imported here: ONNX
    # Runtime builds its session mostly without the GIL, and FastAPI's import is the
    # largest part of start-up, so the two overlap (docs/benchmarks.md).
    with ThreadPoolExecutor(1, thread_name_prefix="load") as loader:
        loading = loader.submit(load_served_bundle, settings)
        import uvicorn

        from app.main import create_app
        from app.monitoring import shared_metrics
        from app.server import TasadorProtocol

        try:
            bundle = loading.result()
        except BundleError as exc:
            why = message("cannot_start", from_environment(), why=exc)
            print(f"tasador: {why}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            del loading  # the future would hold the bundle for the life of the process
    _raise_open_file_limit()
    # uvicorn's workers, and the protocol in each, read the settings from the
    # environment: put the flags given here where they can find them.
    os.environ.update(_as_environment(settings))
    get_settings.cache_clear()
    server: dict[str, Any] = {
        "http": TasadorProtocol,
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": log_config,
        # No access log: a line per request cost a third of /predecir's throughput
        # (uv run python -m benchmarks.run); the json format's request log is the one kept.
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }
    # Several workers share their metrics through files (before any worker starts).
    with shared_metrics(settings.workers > 1):
        if settings.workers == 1:
            app = create_app(settings, bundle)
            del bundle  # the app holds it: a reload must be able to free it
            uvicorn.run(app, **server)
            return 0
        # Several workers: the bundle was loaded here only to refuse a bad one before any
        # worker starts; each worker builds its app (and loads its bundle) on its own.
        del bundle
        gc.collect()
        from app.supervisor import ReloadingSupervisor

        config = uvicorn.Config(
            "app.main:create_app", factory=True, workers=settings.workers, **server
        )
        # As uvicorn.run does for several workers, with SIGHUP passed on to each worker.
        ReloadingSupervisor(config, sockets=[config.bind_socket()]).run()
    return 0


def _raise_open_file_limit() -> None:
    """Let the server hold as many connections as the system allows this process: each is
    a file, and the usual soft limit (1,024) is reached long before memory or CPU."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _address_taken(host: str, port: int) -> str | None:
    """Why uvicorn could not listen on ``host:port``, or None when it can."""
    import errno
    import socket

    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None  # an unknown host: uvicorn says so
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"{host}:{port} is already in use (another tasador?): stop it, or "
                    "choose another port with --port"
                )
    return None  # anything else, uvicorn says when it binds


def _as_environment(settings: Settings) -> dict[str, str]:
    """``TASADOR_*`` variables that rebuild ``settings`` in another process."""
    values = settings.model_dump(mode="json", exclude_defaults=True)
    return {
        ENV_PREFIX + name.upper(): value if isinstance(value, str) else _json(value)
        for name, value in values.items()
    }


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def train(command: TrainCommand) -> int:
    """Generate or read the data, fit, write the bundle; 2 when the data cannot be used."""
    try:
        from app.training.pipeline import OutputError, TrainingConfig, train
    except ModuleNotFoundError as missing:
        print(
            f"tasador train: {missing.name} is not installed; training needs the train "
            "extra: uv sync --extra train (or pip install 'tasador[train]')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from app.training.dataset import DatasetError, read_csv
    from app.training.synthetic import generate

    if (command.registrar or command.alias) and not command.mlflow:
        print("tasador train: --registrar and --alias need --mlflow", file=sys.stderr)
        return EXIT_USAGE
    if command.alias and not command.registrar:
        print("tasador train: --alias needs --registrar", file=sys.stderr)
        return EXIT_USAGE
    unavailable = _missing_mlflow() if command.mlflow else None
    if unavailable:
        print(f"tasador train: {unavailable}", file=sys.stderr)
        return EXIT_USAGE
    signer = None
    if command.firmar is not None:
        from app.bundle.signing import PASSPHRASE_VARIABLE, SigningKeyError, load_signer

        try:  # before the data and the fitting: a bad key should not cost a training
            signer = load_signer(command.firmar, os.environ.get(PASSPHRASE_VARIABLE))
        except SigningKeyError as exc:
            print(f"tasador train: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        if command.data is None:
            _say(f"Generating {command.rows} synthetic Madrid listings (seed {command.seed})…")
            dataset = generate(command.rows, command.seed)
        else:
            _say(f"Reading {command.data}…")
            dataset = read_csv(command.data)
            _say(f"{len(dataset)} usable rows, {dataset.rejected.total} rejected.")
            for line in dataset.rejected.summary():
                _say(f"  rejected {line}")
        config = TrainingConfig(
            seed=command.seed, nivel=command.nivel, testigos=not command.sin_testigos
        )
        if command.trees is not None or not command.buscar:
            config = replace(config, search=None, n_estimators=command.trees or 100)
        manifest = train(dataset, command.out, config, signer=signer)
    except (DatasetError, OutputError) as exc:
        print(f"tasador train: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Model {manifest.version} ready in {command.out}.")
    if command.mlflow:
        return _track(command, manifest)
    return 0


def _missing_mlflow() -> str | None:
    """Why ``--mlflow`` cannot work here, checked before the minutes of training."""
    from app.bundle.artefacts import BundleError
    from app.bundle.source import import_mlflow

    try:
        import_mlflow("--mlflow", extra=MLFLOW_TRAIN)
        import pandas  # noqa: F401 - the forest's signature and input example
        import skops  # noqa: F401 - the forest is logged in skops format
    except BundleError as exc:
        return str(exc)
    except ModuleNotFoundError as exc:
        return f"--mlflow needs {exc.name}, which is not installed: uv sync --extra {MLFLOW_TRAIN}"
    return None


def _track(command: TrainCommand, manifest: Any) -> int:
    from mlflow.exceptions import MlflowException

    from app.training.tracking import log_training

    _say(f"Logging the run to MLflow (experiment {command.experimento})…")
    try:
        tracked = log_training(
            command.out,
            manifest,
            experiment=command.experimento,
            register=command.registrar,
            alias=command.alias,
        )
    except MlflowException as exc:
        print(f"tasador train: MLflow: {exc.message.splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"MLflow run {tracked.run_id} (experiment {tracked.experiment_id}).")
    if tracked.registered:
        alias = f", alias {tracked.alias}" if tracked.alias else ""
        # With an alias, serve the alias: moving it and a SIGHUP then swap the model.
        uri = (
            f"models:/{tracked.registered}@{tracked.alias}"
            if tracked.alias
            else f"models:/{tracked.registered}/{tracked.version}"
        )
        print(
            f"Registered as models:/{tracked.registered}/{tracked.version}{alias}; serve it "
            f"with: tasador serve --model-uri {uri}"
        )
    return 0


def predict(command: PredictCommand) -> int:
    """Appraise a file; 2 when the file, the output or the model cannot be used, 130 when
    interrupted (and then no output is left)."""
    import signal

    from app.bundle.loader import BundleError
    from app.bundle.source import load_served_bundle
    from app.home_files import FileError
    from app.predecir import Progress, appraise_file, default_output, output_kind

    given = command.model_dump(include={"model_dir", "model_uri", "model_cache", "engine"})
    try:
        settings = Settings(**{name: value for name, value in given.items() if value is not None})
        salida = command.salida or default_output(command.entrada)
        output_kind(salida)
        bundle = load_served_bundle(settings)
    except (FileError, BundleError) as exc:
        print(f"tasador predecir: {exc}", file=sys.stderr)
        return EXIT_USAGE
    language = command.idioma or from_environment()

    def stop(signum: int, _: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)  # as Ctrl-C: the output is removed
    try:
        summary = appraise_file(
            bundle,
            command.entrada,
            salida,
            language,
            command.filas_por_bloque,
            Progress(shown=sys.stderr.isatty()),
        )
    except FileError as exc:
        print(f"tasador predecir: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk, a vanished folder: nothing is left behind
        print(f"tasador predecir: cannot write {salida}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tasador predecir: interrupted; {salida} was not written", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    refused = f", {summary.refused} with a motivo instead of a price" if summary.refused else ""
    print(
        f"Appraised {summary.rows} rows{refused} in {summary.seconds:.1f} s "
        f"({summary.rate:,.0f} rows/s) into {summary.output}.",
        file=sys.stderr,
    )
    return 0


def make_keys(command: KeysCommand) -> int:
    """Write a key pair; 2 when it cannot be written."""
    from app.bundle.signing import PASSPHRASE_VARIABLE, SigningKeyError, new_key_pair

    passphrase = os.environ.get(PASSPHRASE_VARIABLE)
    try:
        public = new_key_pair(command.ruta, passphrase)
    except SigningKeyError as exc:
        print(f"tasador claves: {exc}", file=sys.stderr)
        return EXIT_USAGE
    secret = "encrypted with TASADOR_KEY_PASSPHRASE" if passphrase else "not encrypted"
    print(f"Private key: {command.ruta} ({secret}; keep it secret).")
    print(f"Public key:  {command.ruta}.pub, id {public.key_id}.")
    print(f"Sign with:   tasador train --firmar {command.ruta}")
    print(f"Trust with:  TASADOR_TRUSTED_KEYS={public.text}")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

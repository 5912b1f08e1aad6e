"""The registered MLflow model on a real Spark cluster on this machine: `tasador train
--mlflow` registers it, and with nothing of ours but the model, `mlflow.pyfunc.spark_udf`
appraises a DataFrame of homes read from Parquet on two executor JVMs with their own Python
workers, to the cent as `/predecir/lote?detalle=true` answers."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import detailed_answers, make_client, require, require_program, sample_homes

pytestmark = [
    pytest.mark.spark,
    # MLflow 3.17's SQLite store uses a loader strategy SQLAlchemy 2.1 deprecates.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning"),
    # pyspark 4.3 warns that it is not yet tested with pandas 3 (the lock's); this test
    # is what checks that the answers are right with it.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    # MLflow 3.17 warns about one of its own type hints when mlflow.pyfunc is imported.
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]

INSTALL = "uv sync --extra mlflow-train --group mlflow-server --group spark"
JAVA = "apt-get install openjdk-17-jre-headless"
TRAIN = (sys.executable, "-m", "app.cli", "train", "--rows", "400", "--trees", "6")
MODEL = "models:/tasador@champion"
MASTER = "local-cluster[2,1,1024]"  # two workers, one core and 1 GB each: separate JVMs
ROWS = 20_000  # for the rates: enough for many Arrow batches per executor
ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    # Spark on 127.0.0.1 only, driver and executors, whatever the host name resolves to.
    "SPARK_LOCAL_IP": "127.0.0.1",
    # The executors' Python workers run this interpreter (MLflow's env_manager="local").
    "PYSPARK_PYTHON": sys.executable,
}
ANSWERS = ("precio", "intervalo_inferior", "intervalo_superior", "precio_m2")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`tasador train --mlflow --registrar tasador --alias champion` into a local SQLite
    store; the folder holding it and the trained bundle (``bundle/``)."""
    require("pyspark", INSTALL)
    require("mlflow", INSTALL)
    require_program("java", JAVA)
    folder = tmp_path_factory.mktemp("registry")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    done = subprocess.run(
        [*TRAIN, "--out", "bundle", "--mlflow", "--registrar", "tasador", "--alias", "champion"],
        cwd=folder,
        env={**os.environ, **ENV, "MLFLOW_TRACKING_URI": store},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**ENV, "MLFLOW_TRACKING_URI": store}.items():
            patch.setenv(name, value)
        yield folder


@pytest.fixture(scope="module")
def spark(registry: Path) -> Iterator[Any]:
    """A SparkSession on a local cluster of two executors, on 127.0.0.1."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master(MASTER)
        .appName("tasador-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.local.dir", str(registry / "spark"))
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _homes() -> list[dict[str, Any]]:
    """Homes with every kind of row: known, unknown fields (empty cells), and refused."""
    homes: list[dict[str, Any]] = [
        {**h, "habitaciones": float(h["habitaciones"])} for h in sample_homes(ROWS)
    ]
    for i in range(0, ROWS, 7):
        homes[i]["baños"] = None
    for i in range(0, ROWS, 11):
        homes[i]["antiguedad"] = homes[i]["superficie_util"] = None
    homes[1]["habitaciones"] = 2.5  # not a whole number
    homes[2]["latitud"] = 50.0  # not in Madrid
    homes[3]["condicion"] = "Nuevo"
    homes[5]["superficie_util"] = homes[5]["superficie_construida"] + 10
    return homes


REFUSED = {1: "habitaciones: ", 2: "latitud: ", 3: "condicion: ", 5: "superficie_util: "}


def test_spark_udf_appraises_parquet_homes_as_the_batch_route_does(
    registry: Path, spark: Any, tmp_path: Path
) -> None:
    import mlflow.pyfunc
    import pandas as pd
    from pyspark.sql.functions import struct

    homes = _homes()
    table = pd.DataFrame(homes)
    table.insert(0, "id", range(len(homes)))
    table["baños"] = table["baños"].astype("Int64")  # whole numbers with empty cells
    table["antiguedad"] = table["antiguedad"].astype("Int64")
    table.to_parquet(tmp_path / "homes.parquet", index=False)
    frame = spark.read.parquet(str(tmp_path / "homes.parquet")).repartition(4)
    fields = [c for c in frame.columns if c != "id"]

    udf = mlflow.pyfunc.spark_udf(spark, MODEL)  # the result type from the signature
    appraised = frame.select("id", udf(struct(*fields)).alias("tasacion"))
    rows = appraised.select("id", "tasacion.*").collect()
    by_id = {row["id"]: row.asDict() for row in rows}

    assert len(by_id) == len(homes)
    for i, start in REFUSED.items():
        assert by_id[i]["motivo"].startswith(start), by_id[i]
        assert all(by_id[i][name] is None for name in ANSWERS), by_id[i]
    valid = [i for i in range(len(homes)) if i not in REFUSED]
    with make_client(registry / "bundle") as client:
        expected = detailed_answers(
            client,
            [{k: v for k, v in homes[i].items() if v is not None} for i in valid[:10_000]],
        )
        expected += detailed_answers(
            client,
            [{k: v for k, v in homes[i].items() if v is not None} for i in valid[10_000:]],
        )
    got = [{k: v for k, v in by_id[i].items() if k not in ("id", "motivo")} for i in valid]
    assert [by_id[i]["motivo"] for i in valid] == [""] * len(valid)
    assert got == expected  # every price, bound and €/m² to the cent, every message
    assert any(r["desconocidos"] == ["baños"] for r in got)

    # The rates, side by side: the warm Spark job (models loaded in the Python workers by
    # the run above), and the same model in this process on the same table.
    started = time.perf_counter()
    appraised.write.format("noop").mode("overwrite").save()
    spark_rate = len(homes) / (time.perf_counter() - started)
    model = mlflow.pyfunc.load_model(MODEL)
    inputs = table.drop(columns="id")
    started = time.perf_counter()
    local = model.predict(inputs)
    local_rate = len(homes) / (time.perf_counter() - started)
    print(
        f"\n{len(homes):,} homes: Spark {MASTER} {spark_rate:,.0f} rows/s, "
        f"mlflow.pyfunc in process {local_rate:,.0f} rows/s"
    )
    assert local.loc[valid, list(ANSWERS)].to_dict("records") == [
        {k: r[k] for k in ANSWERS} for r in got
    ]


def test_a_column_left_out_is_unknown_on_spark(registry: Path, spark: Any) -> None:
    import mlflow.pyfunc
    from pyspark.sql.functions import struct

    homes = [{k: v for k, v in h.items() if k != "antiguedad"} for h in sample_homes(40)]
    frame = spark.createDataFrame(homes).repartition(2)

    udf = mlflow.pyfunc.spark_udf(spark, MODEL)
    rows = frame.select(udf(struct(*frame.columns)).alias("t")).select("t.*").collect()

    with make_client(registry / "bundle") as client:
        expected = detailed_answers(client, homes)
    assert sorted((r["precio"], r["desconocidos"]) for r in rows) == sorted(
        (e["precio"], e["desconocidos"]) for e in expected
    )
    assert {tuple(r["desconocidos"]) for r in rows} == {("antiguedad",)}

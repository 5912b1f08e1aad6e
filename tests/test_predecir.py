"""``tasador predecir``: whole files appraised as ``/predecir/lote?detalle=true`` answers,
every row kept, bad files refused in one line, and no partial output ever left."""

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app import predecir
from app.cli import main
from app.features import FIELDS, FIELDS_BY_NAME, Kind
from app.home_files import HomeChunk, validate
from app.predecir import OUTPUT_COLUMNS
from app.schemas.formulario import Formulario
from app.service.appraisal import _cents
from tests.helpers import sample_homes

COLUMNS = [f.name for f in FIELDS]


def _homes(n: int = 60) -> list[dict[str, Any]]:
    """Varied homes, some with unknown fields and some unlike the training data."""
    homes = sample_homes(n)
    for i, home in enumerate(homes):
        if i % 4 == 1:
            del home["baños"]
        if i % 6 == 2:
            del home["antiguedad"], home["superficie_util"]
    homes[5]["superficie_construida"] = 900.0  # outside the training range
    homes[7]["latitud"] = 40.64  # far from every training home
    return homes


def _cell(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _write_csv(path: Path, homes: list[dict[str, Any]], columns: list[str] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([_cell(h[c]) if c in h else "" for c in columns] for h in homes)
    return path


def _write_parquet(path: Path, homes: list[dict[str, Any]]) -> Path:
    columns = {c: [h.get(c) for h in homes] for c in COLUMNS}
    pq.write_table(pa.table(columns), path)
    return path


def _said(err: str) -> list[str]:
    """The command's own lines on stderr (a log line of another test's set-up may precede
    them when the whole suite runs)."""
    return [line for line in err.splitlines() if line.startswith("tasador predecir: ")]


def _run(*args: str | Path | int) -> int:
    return main(["predecir", *map(str, args)])


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    with path.open(encoding="utf-8", newline="") as read:
        return list(csv.DictReader(read))


def _detailed(client: TestClient, homes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answer = client.post("/predecir/lote?detalle=true", json={"formularios": homes})
    assert answer.status_code == 200, answer.text
    resultados: list[dict[str, Any]] = answer.json()["resultados"]
    return resultados


def _as_number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _as_list(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else json.loads(value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_every_row_is_answered_as_the_detailed_batch_is(
    tmp_path: Path, tiny_bundle: Path, client: TestClient, suffix: str
) -> None:
    homes = _homes()
    writer = _write_csv if suffix == ".csv" else _write_parquet
    entrada = writer(tmp_path / f"casas{suffix}", homes)

    assert (
        _run(entrada, "--model-dir", tiny_bundle, "--idioma", "en", "--filas-por-bloque", 16) == 0
    )

    rows = _read(tmp_path / f"casas.tasado{suffix}")
    expected = _detailed(client, homes)
    assert len(rows) == len(homes)
    assert list(rows[0]) == [*COLUMNS, *OUTPUT_COLUMNS]
    for row, answer in zip(rows, expected, strict=True):
        assert _as_number(row["precio"]) == answer["precio"]
        assert _as_number(row["intervalo_inferior"]) == answer["intervalo"]["inferior"]
        assert _as_number(row["intervalo_superior"]) == answer["intervalo"]["superior"]
        assert _as_number(row["precio_m2"]) == answer["precio_m2"]
        assert _as_list(row["advertencias"]) == [w["mensaje"] for w in answer["advertencias"]]
        assert _as_list(row["desconocidos"]) == answer["desconocidos"]
        assert row["motivo"] in (None, "")
    assert any(_as_list(row["desconocidos"]) for row in rows)
    assert any(len(_as_list(row["advertencias"])) > 1 for row in rows)


_BOUNDED = ["superficie_construida", "baños", "habitaciones", "antiguedad", "superficie_util"]


def _accepted(name: str, value: float) -> bool:
    field = Formulario.model_fields[FIELDS_BY_NAME[name].attribute]
    return all(getattr(m, "ge", value) <= value <= getattr(m, "le", value) for m in field.metadata)


def _at_and_past_the_training_ranges(bundle: Path) -> list[dict[str, Any]]:
    """Homes with each field at its training minimum and maximum and just past them
    (where Formulario allows), some with unknown fields or far from every training home."""
    ranges = json.loads((bundle / "manifest.json").read_text())["feature_ranges"]
    homes = []
    fields = _BOUNDED
    for i, (name, home) in enumerate(zip(fields * 4, sample_homes(4 * len(fields)), strict=True)):
        low, high = ranges[name]["min"], ranges[name]["max"]
        step = 1 if name in ("baños", "habitaciones", "antiguedad") else 0.5
        value = [low, high, low - step, high + step][i // len(fields)]
        if not _accepted(name, value):
            value = low  # Formulario refuses it: the bound itself again
        home = dict(home)
        home[name] = value
        if name == "superficie_construida":
            home["superficie_util"] = None  # it must not exceed the built area
        if name == "superficie_util":
            home["superficie_construida"] = max(value, home["superficie_construida"])
        if i % 3 == 0:
            home["antiguedad" if name != "antiguedad" else "baños"] = None
        if i % 7 == 0:
            home["latitud"] = 40.64  # far from every training home
        homes.append({k: v for k, v in home.items() if v is not None})
    return homes


def test_homes_at_and_past_the_training_bounds_get_the_batchs_warnings(
    tmp_path: Path, tiny_bundle: Path, client: TestClient
) -> None:
    homes = _at_and_past_the_training_ranges(tiny_bundle)
    entrada = _write_parquet(tmp_path / "casas.parquet", homes)

    assert _run(entrada, "--model-dir", tiny_bundle, "--idioma", "es") == 0

    rows = _read(tmp_path / "casas.tasado.parquet")
    answers = client.post(
        "/predecir/lote?detalle=true",
        json={"formularios": homes},
        headers={"Accept-Language": "es"},
    )
    assert answers.status_code == 200, answers.text
    expected = answers.json()["resultados"]
    assert [r["advertencias"] for r in rows] == [
        [w["mensaje"] for w in a["advertencias"]] for a in expected
    ]
    assert [r["precio"] for r in rows] == [a["precio"] for a in expected]
    campos = {w["campo"] for a in expected for w in a["advertencias"]}
    assert {"superficie_construida", "habitaciones", "desconocidos", "ubicacion"} <= campos
    # A value at a training bound was seen in training: no warning names its field.
    at_bounds = zip(_BOUNDED * 2, expected[: 2 * len(_BOUNDED)], strict=True)
    assert all(name not in {w["campo"] for w in a["advertencias"]} for name, a in at_bounds)


def test_unknown_columns_may_be_left_out(
    tmp_path: Path, tiny_bundle: Path, client: TestClient
) -> None:
    homes = [
        {k: v for k, v in h.items() if k not in ("baños", "antiguedad", "superficie_util")}
        for h in sample_homes(5)
    ]
    present = [c for c in COLUMNS if c in homes[0]]
    entrada = _write_csv(tmp_path / "casas.csv", homes, present)

    assert _run(entrada, "--model-dir", tiny_bundle, "--salida", tmp_path / "out.parquet") == 0

    rows = _read(tmp_path / "out.parquet")
    assert [r["precio"] for r in rows] == [a["precio"] for a in _detailed(client, homes)]
    assert {tuple(r["desconocidos"]) for r in rows} == {("baños", "antiguedad", "superficie_util")}


def test_a_bad_row_gets_a_motivo_and_the_others_their_prices(
    tmp_path: Path, tiny_bundle: Path, client: TestClient
) -> None:
    homes = sample_homes(6)
    bad = [dict(h) for h in homes]
    bad[1]["condicion"] = "Casi nuevo"
    bad[3]["superficie_construida"] = 5.0
    entrada = _write_csv(tmp_path / "casas.csv", bad)
    lines = entrada.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]  # the last value left out
    entrada.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert _run(entrada, "--model-dir", tiny_bundle) == 0

    rows = _read(tmp_path / "casas.tasado.csv")
    assert [r["motivo"] for r in rows] == [
        "",
        "condicion: Input should be 'A reformar', 'Reformado', 'A estrenar' or 'En buen estado'",
        "fewer values than columns",
        "superficie_construida: Input should be greater than or equal to 10",
        "",
        "",
    ]
    assert [r["precio"] for r in rows[1:4]] == ["", "", ""]
    good = [homes[0], homes[4], homes[5]]
    assert [float(rows[i]["precio"]) for i in (0, 4, 5)] == [
        a["precio"] for a in _detailed(client, good)
    ]


@pytest.mark.parametrize(
    ("field", "value", "motivo"),
    [
        pytest.param("baños", 0, "baños: Input should be greater than or equal to 1", id="baths"),
        pytest.param(
            "antiguedad", 401, "antiguedad: Input should be less than or equal to 400", id="age"
        ),
        pytest.param(
            "habitaciones", 31, "habitaciones: Input should be less than or equal to 30", id="rooms"
        ),
        pytest.param(
            "superficie_util",
            9.5,
            "superficie_util: Input should be greater than or equal to 10",
            id="usable-area",
        ),
    ],
)
def test_a_value_out_of_its_bounds_gets_a_motivo(
    tmp_path: Path, tiny_bundle: Path, field: str, value: float, motivo: str
) -> None:
    homes = sample_homes(3)
    homes[1][field] = value
    entrada = _write_csv(tmp_path / "casas.csv", homes)

    assert _run(entrada, "--model-dir", tiny_bundle) == 0

    assert [r["motivo"] for r in _read(tmp_path / "casas.tasado.csv")] == ["", motivo, ""]


def test_parquet_nulls_are_unknown_or_empty(tmp_path: Path, tiny_bundle: Path) -> None:
    homes: list[dict[str, Any]] = sample_homes(3)
    homes[0]["baños"] = None
    homes[1]["habitaciones"] = None
    entrada = _write_parquet(tmp_path / "casas.parquet", homes)

    assert _run(entrada, "--model-dir", tiny_bundle) == 0

    rows = _read(tmp_path / "casas.tasado.parquet")
    assert rows[0]["desconocidos"] == ["baños"]
    assert rows[0]["precio"] is not None
    assert (rows[1]["motivo"], rows[1]["precio"]) == ("habitaciones: empty", None)


def test_parquet_text_columns_are_read_as_csv_cells_are(tmp_path: Path, tiny_bundle: Path) -> None:
    homes = sample_homes(6)
    table = pa.table({c: [h[c] for h in homes] for c in COLUMNS})
    # Above every sample home's superficie_util, which must not exceed it.
    built = pa.array([" 300.5 ", "251", "abc", "", None, "260"])
    condicion = pa.array(["Reformado", "Casi nuevo", "Reformado", "Reformado", "A estrenar", None])
    table = table.set_column(COLUMNS.index("superficie_construida"), "superficie_construida", built)
    table = table.set_column(COLUMNS.index("condicion"), "condicion", condicion.dictionary_encode())
    entrada = tmp_path / "casas.parquet"
    pq.write_table(table, entrada)

    assert _run(entrada, "--model-dir", tiny_bundle) == 0

    rows = _read(tmp_path / "casas.tasado.parquet")
    assert [r["motivo"] for r in rows] == [
        None,
        "condicion: Input should be 'A reformar', 'Reformado', 'A estrenar' or 'En buen estado'",
        "superficie_construida: not a number",
        "superficie_construida: empty",
        "superficie_construida: empty",
        "condicion: empty",
    ]
    assert rows[0]["precio_m2"] == pytest.approx(rows[0]["precio"] / 300.5, abs=0.01)


def test_cents_are_rounded_as_python_rounds_them() -> None:
    # numpy's round scales by 100 first: 2.675 (2.67499999... as a float) becomes 2.68.
    awkward = [2.675, 1.005, 0.125, 1234567.885, 312345.675, 99999.995]
    rng = np.random.default_rng(4)
    values = np.array(awkward + list(rng.uniform(1e4, 5e6, 20_000).round(3)))

    got = _cents(values, lambda row: float(values[row]))

    assert got.tolist() == [round(v, 2) for v in values.tolist()]


def test_a_semicolon_file_keeps_its_separator_and_decimal_commas(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    home = sample_homes(1)[0]
    entrada = tmp_path / "casas.csv"
    cells = [_cell(home[c]).replace(".", ",") for c in COLUMNS]
    entrada.write_text(";".join(COLUMNS) + "\n" + ";".join(cells) + "\n", encoding="utf-8")

    assert _run(entrada, "--model-dir", tiny_bundle) == 0

    with (tmp_path / "casas.tasado.csv").open(encoding="utf-8", newline="") as read:
        (row,) = list(csv.DictReader(read, delimiter=";"))
    assert "," in row["precio"]
    assert row["latitud"] == cells[0]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        pytest.param(
            "latitud,longitud\n40.4,-3.7\n", "lacks column(s) superficie_construida", id="column"
        ),
        pytest.param(
            ",".join(COLUMNS).replace("baños", "baños,precio") + "\n",
            "already has column(s) precio, which the output adds",
            id="clash",
        ),
        pytest.param(",".join(COLUMNS).encode("latin-1"), "is not UTF-8 text: line 1", id="latin1"),
        pytest.param(b"PK\x03\x04\xff\xfe\x00", "is neither CSV nor Parquet", id="zip"),
        pytest.param(b"PAR1 not really", "is not a Parquet file", id="parquet"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(
    tmp_path: Path,
    tiny_bundle: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | bytes,
    why: str,
) -> None:
    entrada = tmp_path / "casas.dat"
    data = content.encode() if isinstance(content, str) else content
    entrada.write_bytes(data)
    if isinstance(content, str) or why.startswith("is not UTF-8"):
        entrada = entrada.rename(tmp_path / "casas.csv")

    assert _run(entrada, "--model-dir", tiny_bundle) == 2

    (said,) = _said(capsys.readouterr().err)
    assert why in said
    assert sorted(p.name for p in tmp_path.iterdir()) == [entrada.name]


def test_a_missing_file_and_a_bad_output_name_are_one_line(
    tmp_path: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path / "no.csv", "--model-dir", tiny_bundle) == 2
    assert _run(tmp_path / "no.csv", "--salida", tmp_path / "out.xlsx") == 2

    lines = _said(capsys.readouterr().err)
    assert len(lines) == 2
    assert lines[0].startswith(f"tasador predecir: cannot read {tmp_path / 'no.csv'}")
    assert (
        lines[1]
        == f"tasador predecir: {tmp_path / 'out.xlsx'}: the output's name must end in .csv "
        "or .parquet"
    )


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_no_output_is_left_when_stopped_midway(
    tmp_path: Path,
    tiny_bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop: BaseException | type[BaseException],
) -> None:
    entrada = _write_parquet(tmp_path / "casas.parquet", sample_homes(40))
    salida = tmp_path / "out.parquet"
    salida.write_bytes(b"the previous output")
    write = predecir.ParquetWriter.write
    written: list[int] = []

    def failing(self: predecir.ParquetWriter, part: Any, results: predecir.Results) -> None:
        if written:
            raise stop
        write(self, part, results)
        written.append(1)

    monkeypatch.setattr(predecir.ParquetWriter, "write", failing)

    code = _run(entrada, "--model-dir", tiny_bundle, "--salida", salida, "--filas-por-bloque", 10)

    assert code == (130 if stop is KeyboardInterrupt else 1)
    assert written == [1]
    assert salida.read_bytes() == b"the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["casas.parquet", "out.parquet"]


def _column_value(kind: Kind, rng: np.random.Generator) -> Any:
    edges = [-1.0, 0.0, 0.5, 1.0, 2.5, 9.99, 10.0, 20.0, 20.5, 30.0, 31.0, 400.0, 5000.0]
    if kind is Kind.CATEGORY:
        return str(rng.choice(["Reformado", "A reformar", "reformado", "Nuevo"]))
    if kind is Kind.BOOLEAN:  # reading leaves 1.0, 0.0 or NaN; anything else has a motivo
        return float(rng.choice([0.0, 1.0, np.nan]))
    return float(rng.choice([*edges, 5000.5, 40.31, 40.65, -3.89, -3.51, 40.4, -3.7, np.inf]))


def test_the_column_checks_refuse_exactly_what_formulario_refuses() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    columns: dict[str, Any] = {}
    for feature in FIELDS:
        values = [_column_value(feature.kind, rng) for _ in range(n)]
        if feature.optional:
            values = [np.nan if rng.random() < 0.2 else v for v in values]
        dtype = object if feature.kind is Kind.CATEGORY else np.float64
        columns[feature.attribute] = np.array(values, dtype=dtype)
    chunk = validate(HomeChunk(columns, [None] * n))

    for row in range(n):
        home = {
            f.name: (bool(v) if f.kind is Kind.BOOLEAN else v)
            for f in FIELDS
            if not (isinstance(v := columns[f.attribute][row], float) and np.isnan(v))
        }
        try:
            Formulario.model_validate(home)
        except ValueError:
            assert chunk.motivos[row] is not None, home
        else:
            assert chunk.motivos[row] is None, (home, chunk.motivos[row])

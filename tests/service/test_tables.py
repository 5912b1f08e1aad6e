"""A table of homes appraised as the MLflow model does: the answers of
``/predecir/lote?detalle=true`` to the cent, a reason per refused row, unknown fields as
absent columns or empty cells."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.bundle.loader import load_bundle
from app.service.tables import OUTPUT_COLUMNS, TableError, appraise_frame
from tests.helpers import detailed_answers, sample_homes

ANSWERS = ("precio", "intervalo_inferior", "intervalo_superior", "precio_m2")


def _without(home: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {k: v for k, v in home.items() if k not in fields}


def test_a_table_is_answered_as_the_batch_route_answers(
    tiny_bundle: Path, client: TestClient
) -> None:
    homes = sample_homes(60)
    homes[3] = _without(homes[3], "baños")
    homes[4] = _without(homes[4], "antiguedad", "superficie_util")
    homes[5] = {**homes[5], "superficie_construida": 4_000.0}  # far outside training
    frame = pd.DataFrame(homes)  # the missing cells become NaN: unknown

    answered = appraise_frame(load_bundle(tiny_bundle), frame, chunk_rows=7)

    assert list(answered.columns) == list(OUTPUT_COLUMNS)
    assert answered["motivo"].isna().all()
    got = answered.drop(columns="motivo").to_dict("records")
    assert got == detailed_answers(client, homes)
    assert got[3]["desconocidos"] == ["baños"]
    assert got[5]["advertencias"] != []


@pytest.mark.parametrize(
    ("change", "motivo"),
    [
        pytest.param(
            {"habitaciones": 2.5}, "habitaciones: Input should be a whole number", id="half"
        ),
        pytest.param({"latitud": 50.0}, "latitud: Input should be less than or equal to", id="far"),
        pytest.param({"condicion": "Nuevo"}, "condicion: Input should be 'A reformar'", id="enum"),
        pytest.param({"latitud": np.nan}, "latitud: Field required", id="empty"),
        pytest.param({"jardin": "sí"}, "jardin: Input should be a valid boolean", id="flag"),
    ],
)
def test_a_bad_row_gets_its_reason_and_the_others_their_price(
    tiny_bundle: Path, client: TestClient, change: dict[str, Any], motivo: str
) -> None:
    homes = sample_homes(3)
    frame = pd.DataFrame([homes[0], {**homes[1], **change}, homes[2]], index=[10, 11, 12])

    answered = appraise_frame(load_bundle(tiny_bundle), frame)

    assert list(answered.index) == [10, 11, 12]
    assert answered.loc[11, "motivo"].startswith(motivo)
    assert answered.loc[11, list(ANSWERS)].isna().all()
    good = answered.loc[[10, 12]]
    assert good["motivo"].isna().all()
    assert good.drop(columns="motivo").to_dict("records") == detailed_answers(
        client, [homes[0], homes[2]]
    )


def test_banos_without_the_tilde_and_a_column_left_out_are_accepted(
    tiny_bundle: Path, client: TestClient
) -> None:
    homes = [_without(h, "superficie_util") for h in sample_homes(4)]
    frame = pd.DataFrame(homes).rename(columns={"baños": "banos"})

    answered = appraise_frame(load_bundle(tiny_bundle), frame)

    assert answered.drop(columns="motivo").to_dict("records") == detailed_answers(client, homes)
    assert set(answered["desconocidos"].map(tuple)) == {("superficie_util",)}


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        pytest.param({"banyos": 2}, "unknown column(s) banyos; the model takes latitud", id="typo"),
        pytest.param({"latitud": None}, "missing column(s) latitud", id="missing"),
    ],
)
def test_a_wrong_column_refuses_the_table_in_one_line(
    tiny_bundle: Path, columns: dict[str, Any], message: str
) -> None:
    home = {**sample_homes(1)[0], **columns}
    frame = pd.DataFrame([{k: v for k, v in home.items() if v is not None}])

    with pytest.raises(TableError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")):
        appraise_frame(load_bundle(tiny_bundle), frame)

"""Feature rows are built by name, in the manifest's order."""

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.features import FeatureBuilder, FeatureError
from app.schemas import Formulario
from app.training.pipeline import ENCODINGS, FEATURES
from app.training.synthetic import generate
from tests.helpers import TINY, make_client, sample_homes, sklearn_prices, train_quietly


def test_row_follows_the_given_order(formulario: dict[str, Any]) -> None:
    home = Formulario.model_validate(formulario)
    order = [
        "condicion",
        "baños",
        "latitud",
        *[f for f in FEATURES if f not in ("condicion", "baños", "latitud")],
    ]

    (row,) = FeatureBuilder(order, ENCODINGS).matrix([home]).tolist()

    assert row[:3] == [ENCODINGS["condicion"]["En buen estado"], 2, 40.4168]
    assert dict(zip(order, row, strict=True))["superficie_util"] == 82.0


def test_unknown_fields_are_nan(formulario: dict[str, Any]) -> None:
    home = Formulario.model_validate({**formulario, "baños": None, "antiguedad": None})
    del formulario["superficie_util"]
    left_out = Formulario.model_validate(formulario)

    x = FeatureBuilder(FEATURES, ENCODINGS).matrix([home, left_out])
    columns = dict(zip(FEATURES, x.T, strict=True))

    assert np.isnan(columns["baños"][0])
    assert np.isnan(columns["antiguedad"][0])
    assert np.isnan(columns["superficie_util"][1])
    assert columns["baños"][1] == 2
    assert not np.isnan(columns["habitaciones"]).any()


def test_location_columns_are_kilometres_from_puerta_del_sol(formulario: dict[str, Any]) -> None:
    sol = Formulario.model_validate({**formulario, "latitud": 40.4169, "longitud": -3.7035})
    # One kilometre north-east of Sol: along the east axis turned 45° to the north.
    step = 1 / math.sqrt(2)
    north_east = Formulario.model_validate(
        {**formulario, "latitud": 40.4169 + step / 111.0, "longitud": -3.7035 + step / 84.7}
    )
    names = ["distancia_sol_km", "giro_45_este", "giro_45_norte"]

    x = FeatureBuilder(names, {}).matrix([sol, north_east])

    assert x[0].tolist() == [0.0, 0.0, 0.0]
    assert x[1] == pytest.approx([1.0, 1.0, 0.0], abs=1e-9)


def test_a_scrambled_manifest_order_still_predicts_what_sklearn_does(tmp_path: Path) -> None:
    scrambled = tuple(reversed(FEATURES))
    bundle = train_quietly(tmp_path / "b", replace(TINY, features=scrambled))
    homes = sample_homes(10)

    with make_client(bundle) as client:
        assert client.get("/modelo").json()["features"] == list(scrambled)
        got = client.post("/predecir/lote", json={"formularios": homes}).json()["precios"]

    assert got == pytest.approx(sklearn_prices(bundle, homes).tolist(), abs=0.01)


@pytest.mark.parametrize(
    ("features", "encodings", "message"),
    [
        pytest.param(["latitud", "piscina"], {}, "not in Formulario: piscina", id="unknown"),
        pytest.param(["latitud", "latitud"], {}, "more than once", id="repeated"),
        pytest.param(["condicion"], {}, "no encodings for categorical feature", id="no-codes"),
        pytest.param(
            ["condicion"], {"condicion": {"Reformado": 1}}, "lack A reformar", id="partial-codes"
        ),
        pytest.param(
            ["latitud"],
            {"condicion": ENCODINGS["condicion"]},
            "not a model feature",
            id="stray-codes",
        ),
    ],
)
def test_features_that_do_not_fit_the_schema_are_refused(
    features: list[str], encodings: dict[str, dict[str, int]], message: str
) -> None:
    with pytest.raises(FeatureError, match=message):
        FeatureBuilder(features, encodings)


def test_one_home_and_a_batch_holding_it_get_the_same_bits() -> None:
    homes = generate(40, 3).formularios
    builder = FeatureBuilder(tuple(reversed(FEATURES)), ENCODINGS)

    batch = builder.matrix(homes)
    one_by_one = np.vstack([builder.matrix([home]) for home in homes])

    assert batch.shape == (40, len(FEATURES))
    assert np.array_equal(batch, one_by_one, equal_nan=True)
    assert builder.matrix([]).shape == (0, len(FEATURES))

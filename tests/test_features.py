"""Feature rows are built by name, in the manifest's order."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.features import FeatureBuilder, FeatureError
from app.schemas import Formulario
from app.training.pipeline import ENCODINGS, FEATURES
from tests.helpers import TINY, make_client, sample_homes, sklearn_prices, train_quietly


def test_row_follows_the_given_order(formulario: dict[str, Any]) -> None:
    home = Formulario.model_validate(formulario)
    order = [
        "condicion",
        "baños",
        "latitud",
        *[f for f in FEATURES if f not in ("condicion", "baños", "latitud")],
    ]

    row = FeatureBuilder(order, ENCODINGS).row(home)

    assert row[:3] == [ENCODINGS["condicion"]["En buen estado"], 2, 40.4168]
    assert dict(zip(order, row, strict=True))["superficie_util"] == 82.0


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

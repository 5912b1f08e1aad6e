"""What a Spanish reader sees of numbers, dates and the API's messages (ui/formatting.py).
Plain Python: runs in the default suite, without Streamlit."""

import pytest

from ui import formatting as f


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        pytest.param(f.price(470_526.32), "470.500 €", id="price-to-500"),
        pytest.param(f.price(470_800), "471.000 €", id="price-rounds-up"),
        pytest.param(f.price(84_349), "84.300 €", id="price-to-100"),
        pytest.param(f.euros(1_284_000), "1.284.000 €", id="euros"),
        pytest.param(f.per_m2(4_953.4), "4.953 €/m²", id="per-m2"),
        pytest.param(f.km(1.0), "1,0 km", id="km"),
        pytest.param(f.distance(350.4), "350 m", id="metres"),
        pytest.param(f.distance(1_240), "1,2 km", id="distance-in-km"),
        pytest.param(f.number(40.5159, 4), "40,5159", id="decimal-comma"),
        pytest.param(f.number(-160_000), "\u2212160.000", id="minus-sign"),
        pytest.param(f.coordinate(-3.7), "\u22123,7", id="coordinate"),
        pytest.param(f.count(20_000, "viviendas"), "20.000 viviendas", id="count"),
        pytest.param(f.percent(0.213), "21,3 %", id="percent"),
        pytest.param(f.percent(0.07, signed=True), "+7,0 %", id="signed-percent"),
        pytest.param(f.percent(-0.07, signed=True), "\u22127,0 %", id="negative-percent"),
    ],
)
def test_numbers_are_written_as_in_spain(shown: str, expected: str) -> None:
    assert shown == expected


def test_dates_are_madrids_clock_in_words() -> None:
    assert f.date_time("2026-12-06T00:13:51.152826Z") == "6 de diciembre de 2026, 01:13"
    assert f.date_time("2026-07-01T10:00:00+00:00") == "1 de julio de 2026, 12:00"
    assert f.date("2026-12-06T00:13:51Z") == "6 de diciembre de 2026"


def test_field_errors_use_the_forms_labels() -> None:
    said = "superficie_util (120.0) no puede superar superficie_construida (95.0)"

    assert f.field_error(said) == (
        "Superficie útil (120) no puede superar la superficie construida (95)"
    )
    assert f.field_error("Debe ser menor o igual que 40.65") == "Debe ser menor o igual que 40,65"


@pytest.mark.parametrize(
    ("advertencia", "expected"),
    [
        pytest.param(
            {"campo": "latitud", "valor": 40.5159, "minimo": 40.33, "maximo": 40.51},
            "Latitud: 40,5159 está fuera de lo que el modelo vio al entrenar (40,33 a 40,51): "
            "el precio es menos fiable.",
            id="a-field",
        ),
        pytest.param(
            {
                "campo": "ubicacion",
                "valor": None,
                "minimo": None,
                "maximo": None,
                "mensaje": "Ninguna vivienda de entrenamiento está a menos de 1.0 km de estas "
                "coordenadas: el precio es menos fiable.",
            },
            "Ninguna vivienda de entrenamiento está a menos de 1,0 km de estas coordenadas: "
            "el precio es menos fiable.",
            id="the-location",
        ),
        pytest.param(
            {
                "campo": "desconocidos",
                "valor": None,
                "minimo": None,
                "maximo": None,
                "mensaje": "Sin dato: antiguedad, superficie_util. Por eso el intervalo es un "
                "12 % más ancho.",
            },
            "Sin dato: antigüedad, superficie útil. Por eso el intervalo es un 12 % más ancho.",
            id="unknown-fields",
        ),
    ],
)
def test_warnings_use_the_forms_words(advertencia: dict[str, object], expected: str) -> None:
    assert f.warning(advertencia) == expected


def test_vega_charts_get_the_spanish_locale() -> None:
    number = f.VEGA_LOCALE["number"]
    assert (number["decimal"], number["thousands"]) == (",", ".")
    assert f.VEGA_LOCALE["time"]["months"][11] == "diciembre"

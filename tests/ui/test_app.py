"""The front end against a live tasador, through Streamlit's AppTest: what a person sees
after filling the form, clicking the map, sending a CSV, or opening the model card."""

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import post_json, require, sample_homes
from tools.process import ServerProcess, free_port

pytestmark = pytest.mark.ui

INSTALL = "uv sync --extra ui"
APP = Path(__file__).resolve().parents[2] / "ui" / "streamlit_app.py"


def _started(url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    testing = require("streamlit.testing.v1", INSTALL)
    require("streamlit_folium", INSTALL)
    monkeypatch.setenv("TASADOR_API_URL", url)
    monkeypatch.setenv("TASADOR_UI_TILES", "")  # no street tiles from the internet
    at = testing.AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def app(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Streamlit app, run once, talking to the live tasador."""
    return _started(server.url, monkeypatch)


def _post_es(url: str, body: dict[str, Any]) -> Any:
    """POST as the front end does: JSON, asking for Spanish messages."""
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "accept-language": "es"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _euros(value: float) -> str:
    """Whole euros, grouped with dots as in Spain."""
    return f"{value:,.0f} €".replace(",", ".")


def _price(value: float) -> str:
    """A price as the front end rounds it: to €500 from €100.000 on, else to €100."""
    step = 500 if value >= 100_000 else 100
    return _euros(round(value / step) * step)


def _button(at: Any, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def _metric(at: Any, label: str) -> str:
    value: str = next(m for m in at.metric if m.label == label).value
    return value


def _texts(at: Any, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def test_the_example_home_is_appraised_as_the_api_does(app: Any, server: ServerProcess) -> None:
    _button(app, "Tasar").click().run()
    expected = _post_es(f"{server.url}/predecir?explicar=true", FORMULARIO_EJEMPLO)

    assert not app.exception
    assert _metric(app, "Precio estimado") == _price(expected["precio"])
    assert _metric(app, "Precio por m² construido") == _euros(expected["precio_m2"]) + "/m²"
    interval = expected["intervalo"]
    assert any(
        f"entre {_price(interval['inferior'])} y {_price(interval['superior'])}" in text
        for text in _texts(app, "markdown")
    )
    shown = _texts(app, "warning")
    assert any(text.startswith("**Modelo entrenado con datos sintéticos**") for text in shown)
    assert len(shown) == len(expected["advertencias"]) + 2  # + the notice, + the model card's
    assert app.get("vega_lite_chart"), "the explanation chart is drawn"
    (caption,) = [t for t in _texts(app, "caption") if expected["modelo"] in t]
    assert re.search(r"tasado el \d{1,2} de [a-z]+ de \d{4}, \d\d:\d\d$", caption), caption


def test_warnings_use_the_forms_words_and_spanish_numbers(app: Any) -> None:
    app.number_input(key="latitud").set_value(40.5159).run()  # north of the training homes
    _button(app, "Tasar").click().run()

    assert not app.exception
    shown = " ".join(_texts(app, "warning"))
    assert "Latitud: 40,5159 está fuera de lo que el modelo vio al entrenar" in shown
    assert "40.5159" not in shown
    assert "latitud =" not in shown


def test_a_click_outside_the_training_homes_gets_a_note(app: Any) -> None:
    (component,) = app.get("component_instance")
    app.session_state[component.key] = {"last_clicked": {"lat": 40.6, "lng": -3.68}}
    app.run()

    assert not app.exception
    assert any(
        "Ese punto (40,6, \u22123,68) queda fuera de la zona de las viviendas" in text
        for text in _texts(app, "warning")
    )


def test_no_lo_se_sends_a_field_as_unknown(app: Any, server: ServerProcess) -> None:
    next(c for c in app.checkbox if c.key == "antiguedad_no_lo_se").check()
    _button(app, "Tasar").click().run()
    expected = _post_es(f"{server.url}/predecir", {**FORMULARIO_EJEMPLO, "antiguedad": None})

    assert not app.exception
    assert _metric(app, "Precio estimado") == _price(expected["precio"])
    assert expected["desconocidos"] == ["antiguedad"]
    assert any("Sin dato: antigüedad" in text for text in _texts(app, "warning"))


TESTIGOS = {
    "viviendas": [
        {
            "distancia_m": 120 + 95 * i,
            "latitud": 40.4168 + 0.001 * i,
            "longitud": -3.7038,
            "superficie_construida": 80.0 + 12 * i,
            "habitaciones": 2 + i % 3,
            "condicion": ("Reformado", "En buen estado", "A reformar")[i % 3],
            "precio": 1000.0 * round((80 + 12 * i) * (4.5 + 0.1 * i)),
            "precio_m2": round(1000 * round((80 + 12 * i) * (4.5 + 0.1 * i)) / (80 + 12 * i), 2),
        }
        for i in range(6)
    ],
    "mediana_precio_m2": 4_743.5,
    "aviso": None,
}


# An answer as the API gives it, before testigos and confianza.
ANSWER = {
    "precio": 470_526.32,
    "fecha": "2026-12-06T00:13:51.152826Z",
    "modelo": "m1",
    "precio_m2": 4_953.0,
}


def _shown(answer: dict[str, Any]) -> Any:
    """The first tab's result as the app shows ``answer``."""
    testing = require("streamlit.testing.v1", INSTALL)

    def script(answer: dict) -> None:  # type: ignore[type-arg]  # run from its source alone
        from ui.valuation_tab import show

        show(answer, synthetic=True)

    return testing.AppTest.from_function(script, args=(answer,), default_timeout=30).run()


def test_testigos_and_confianza_are_shown_beside_the_price() -> None:
    at = _shown({**ANSWER, "confianza": "media", "testigos": TESTIGOS})

    assert not at.exception
    assert _metric(at, "Confianza") == "Media"
    (table,) = at.table
    rows = table.value.to_dict("records")
    assert len(rows) == 6
    assert rows[0] == {
        "Distancia": "120 m",
        "Superficie construida": "80 m²",
        "Habitaciones": "2",
        "Estado": "Reformado",
        "Precio": "360.000 €",
        "Precio por m²": "4.500 €/m²",
    }
    assert rows[5]["Distancia"] == "595 m"
    assert rows[5]["Superficie construida"] == "140 m²"
    assert "Mediana de los testigos: 4.744 €/m²." in _texts(at, "caption")


def test_an_answer_without_testigos_or_confianza_is_shown_without_them() -> None:
    at = _shown(ANSWER)

    assert not at.exception
    assert _metric(at, "Precio estimado") == "470.500 €"
    assert [m.label for m in at.metric] == ["Precio estimado", "Precio por m² construido"]
    assert not at.table
    assert _texts(at, "caption") == ["Modelo m1 · tasado el 6 de diciembre de 2026, 01:13"]


def test_a_click_on_the_map_moves_the_home_and_its_price(app: Any, server: ServerProcess) -> None:
    (component,) = app.get("component_instance")  # st_folium, which AppTest cannot click
    app.session_state[component.key] = {"last_clicked": {"lat": 40.45, "lng": -3.68}}
    app.run()
    _button(app, "Tasar").click().run()
    expected = post_json(
        f"{server.url}/predecir", {**FORMULARIO_EJEMPLO, "latitud": 40.45, "longitud": -3.68}
    )

    assert app.number_input(key="latitud").value == 40.45
    assert app.number_input(key="longitud").value == -3.68
    assert _metric(app, "Precio estimado") == _price(expected["precio"])


def _next_to(at: Any, key: str) -> list[str]:
    """The error messages shown right under the widget with ``key``."""
    for block in _blocks(at._tree):
        children = list(block.children.values())
        for position, child in enumerate(children):
            if getattr(child, "key", None) == key:
                following = children[position + 1 : position + 2]
                return [str(e.value) for e in following if e.type == "error"]
    raise AssertionError(f"no widget with key {key!r}")


def _blocks(node: Any) -> Iterator[Any]:
    if hasattr(node, "children"):
        yield node
        for child in node.children.values():
            yield from _blocks(child)


def test_the_apis_objections_appear_next_to_the_fields_they_name(app: Any) -> None:
    app.number_input(key="latitud").set_value(40.9).run()  # north of Madrid
    # A form's values are sent with its button, in the same run.
    app.number_input(key="superficie_util").set_value(150.0)  # more than the 95 m² built
    _button(app, "Tasar").click().run()

    assert "Precio estimado" not in [m.label for m in app.metric], "no price when refused"
    assert _next_to(app, "superficie_util") == [
        "Superficie útil (150) no puede superar la superficie construida (95)"
    ]
    assert "40,65" in " ".join(_next_to(app, "latitud"))
    assert _next_to(app, "superficie_construida") == []


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["referencia", *FORMULARIO_EJEMPLO])
    writer.writeheader()
    for i, row in enumerate(rows):
        writer.writerow({"referencia": f"v{i}", **row})
    return out.getvalue().encode()


def test_a_csv_is_appraised_and_refused_rows_are_named_by_line(
    app: Any, server: ServerProcess
) -> None:
    homes = sample_homes(12)
    bad = {**homes[4], "superficie_util": homes[4]["superficie_construida"] + 50}
    rows = [*homes[:4], bad, *homes[5:]]
    app.file_uploader(key="csv").upload("casas.csv", _csv(rows), "text/csv").run()
    _button(app, "Tasar el archivo").click().run()
    good = [h for i, h in enumerate(rows) if i != 4]
    answer = post_json(f"{server.url}/predecir/lote?detalle=true", {"formularios": good})
    expected = answer["resultados"]

    assert not app.exception
    table = app.dataframe[0].value
    assert list(table.columns[:4]) == ["Precio estimado", "Desde", "Hasta", "referencia"]
    assert list(table["referencia"]) == [f"v{i}" for i in range(12)]
    prices = list(table["Precio estimado"])
    assert prices[:4] + prices[5:] == [_price(e["precio"]) for e in expected]
    lows = list(table["Desde"])
    assert lows[:4] + lows[5:] == [_price(e["intervalo"]["inferior"]) for e in expected]
    assert prices[4] == ""  # no price for the refused row
    assert _metric(app, "Viviendas tasadas") == "11 de 12"
    assert any("línea 6: Superficie útil: Superficie útil (" in t for t in _texts(app, "error"))
    assert app.get("download_button")


def test_a_csv_may_leave_out_or_empty_what_is_unknown(app: Any, server: ServerProcess) -> None:
    homes = [{k: v for k, v in h.items() if k != "antiguedad"} for h in sample_homes(5)]
    homes[2]["baños"] = ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(homes[0]))
    writer.writeheader()
    writer.writerows(homes)
    app.file_uploader(key="csv").upload("casas.csv", out.getvalue().encode(), "text/csv").run()
    _button(app, "Tasar el archivo").click().run()
    sent = [{**h, "baños": h["baños"] or None} for h in homes]
    expected = post_json(f"{server.url}/predecir/lote", {"formularios": sent})["precios"]

    assert not app.exception
    assert list(app.dataframe[0].value["Precio estimado"]) == [_price(p) for p in expected]
    assert _metric(app, "Viviendas tasadas") == "5 de 5"


def test_a_latin1_csv_gets_the_same_diagnosis_as_training(app: Any) -> None:
    text = _csv(sample_homes(3)).decode()  # its header spells baños
    app.file_uploader(key="csv").upload("casas.csv", text.encode("latin-1"), "text/csv").run()
    _button(app, "Tasar el archivo").click().run()

    assert not app.exception
    assert _texts(app, "error") == [
        "No se puede leer el archivo: casas.csv no está en UTF-8: la línea 1 tiene el byte "
        "0xf1 (¿Latin-1 o Windows-1252?). Guárdalo como UTF-8 (en Excel: Guardar como, "
        "«CSV UTF-8») y súbelo de nuevo."
    ]
    assert not app.dataframe


def test_the_histogram_speaks_spanish(app: Any) -> None:
    app.file_uploader(key="csv").upload("casas.csv", _csv(sample_homes(8)), "text/csv").run()
    _button(app, "Tasar el archivo").click().run()

    spec = json.loads(app.get("vega_lite_chart")[-1].proto.spec)
    assert spec["encoding"]["x"]["title"] == "Precio estimado (€)"
    assert spec["encoding"]["y"]["title"] == "Viviendas"
    assert spec["config"]["locale"]["number"]["thousands"] == "."


def test_batches_are_sent_in_chunks_and_a_bad_row_costs_one_price(
    server: ServerProcess,
) -> None:
    from ui import batch
    from ui.api import Tasador

    homes = sample_homes(11)
    rows = batch.read_csv(
        _csv([{**h, "condicion": "Nuevo"} if i == 7 else h for i, h in enumerate(homes)])
    )
    calls: list[float] = []
    result = batch.appraise(Tasador(server.url), rows, chunk=4, progress=calls.append)
    good = [h for i, h in enumerate(homes) if i != 7]
    expected = post_json(f"{server.url}/predecir/lote", {"formularios": good})["precios"]

    assert [p for p in result.prices if p is not None] == pytest.approx(expected)
    assert result.prices[7] is None
    assert list(result.problems) == [7]
    assert result.problems[7].startswith("Estado:")
    assert calls == pytest.approx([4 / 11, 8 / 11, 1.0])


def test_the_model_card_says_in_plain_words_it_was_trained_on_synthetic_data(
    app: Any, tiny_bundle: Path
) -> None:
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())

    assert any(
        "Este modelo se entrenó con datos sintéticos" in text for text in _texts(app, "warning")
    )
    assert any(f"Modelo {manifest['version']}" in text for text in _texts(app, "subheader"))
    assert _metric(app, "Error típico (RMSE)") == _euros(manifest["metrics"]["rmse"])


def test_an_unreachable_api_is_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    testing = require("streamlit.testing.v1", INSTALL)
    monkeypatch.setenv("TASADOR_API_URL", f"http://127.0.0.1:{free_port()}")
    at = testing.AppTest.from_file(str(APP), default_timeout=60).run()
    _button(at, "Tasar").click().run()

    assert not at.exception
    errors = _texts(at, "error")
    assert any("No se puede conectar con http://127.0.0.1:" in text for text in errors)


@pytest.mark.parametrize(
    ("environment", "address"),
    [
        pytest.param({}, "127.0.0.1", id="like-tasador-serve"),
        pytest.param({"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}, None, id="the-image-says"),
    ],
)
def test_the_front_end_listens_on_loopback_unless_told(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], address: str | None
) -> None:
    cli = require("streamlit.web.cli", INSTALL)
    import ui.__main__ as entry

    monkeypatch.delenv("STREAMLIT_SERVER_ADDRESS", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    started: list[list[str]] = []

    def streamlit_main() -> int:
        started.append(list(sys.argv))
        return 0

    monkeypatch.setattr(cli, "main", streamlit_main)
    monkeypatch.setattr(sys, "argv", ["python"])

    with pytest.raises(SystemExit):
        entry.main([])

    (argv,) = started
    given = argv[argv.index("--server.address") + 1] if "--server.address" in argv else None
    assert given == address


def test_the_map_draws_the_districts_with_their_names_and_streets_only_when_asked(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui import map_picker

    names = map_picker.district_names()
    (component,) = app.get("component_instance")
    script = json.loads(component.proto.json_args)["script"]
    # folium writes the labels' HTML with \\u escapes (for "<", ">" and accents).
    drawn = script.encode("ascii", "backslashreplace").decode("unicode_escape")

    assert len(names) == 21
    assert {"Fuencarral-El Pardo", "Tetuán", "San Blas-Canillejas", "Vicálvaro"} <= set(names)
    assert all(f">{name}</div>" in drawn for name in names)  # the labels
    assert "tile.openstreetmap.org" not in drawn  # TASADOR_UI_TILES="" in these tests
    assert map_picker.DISTRICTS_FILE.stat().st_size < 300_000
    monkeypatch.delenv("TASADOR_UI_TILES")
    assert map_picker.tiles() == (map_picker.OSM_TILES, map_picker.OSM_ATTRIBUTION)
    monkeypatch.setenv("TASADOR_UI_TILES", "https://tiles.example/{z}/{x}/{y}.png")
    assert map_picker.tiles() == (
        "https://tiles.example/{z}/{x}/{y}.png",
        "Teselas: tiles.example",
    )
    monkeypatch.setenv("TASADOR_UI_TILES", "off")
    assert map_picker.tiles() is None


def test_the_map_shows_the_training_homes_area_from_the_manifest(
    app: Any, tiny_bundle: Path
) -> None:
    from ui.map_picker import Area, training_area

    ranges = json.loads((tiny_bundle / "manifest.json").read_text())["feature_ranges"]
    area = training_area({"feature_ranges": ranges})
    (component,) = app.get("component_instance")
    drawn = json.loads(component.proto.json_args)["script"]

    assert area == Area(
        ranges["latitud"]["min"],
        ranges["longitud"]["min"],
        ranges["latitud"]["max"],
        ranges["longitud"]["max"],
    )
    assert training_area({}) is None
    assert f"[[{area.south}, {area.west}], [{area.north}, {area.east}]]" in drawn

"""The interactive docs and the front end in a real browser (Debian's headless Chromium):
a person's clicks give the API's price, and no request leaves 127.0.0.1. Screenshots go
to ``test-artifacts/`` (``TASADOR_TEST_ARTIFACTS``)."""

import csv
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import EMBEDDED_MODEL_DIR
from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import ServerFactory, post_json, require, require_program, sample_homes
from tools.browser import chromium, requests_made, screenshot
from tools.process import ServerProcess

pytestmark = pytest.mark.browser

INSTALL = "apt-get install chromium chromium-driver; uv sync --extra ui --group browser"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TASADOR_TEST_ARTIFACTS", ROOT / "test-artifacts"))
WAIT_S = 90  # generous: a busy 2-core CI machine

# Swagger UI (fastapi-offline): the POST /predecir block, found by its path (its id holds
# the accented tag name).
OPERATION = (
    '.opblock.opblock-post:has(> .opblock-summary .opblock-summary-path[data-path="/predecir"])'
)
EXPAND = f"{OPERATION} .opblock-summary-control"
TRY_IT_OUT = f"{OPERATION} button.try-out__btn"
BODY = f"{OPERATION} textarea.body-param__text"
EXECUTE = f"{OPERATION} button.execute"
# The live answer, not the documented example below it (which shows the same price).
LIVE_STATUS = f"{OPERATION} .live-responses-table tbody .response-col_status"
LIVE_BODY = f"{OPERATION} .live-responses-table .response-col_description .highlight-code pre"

# Streamlit
NUMBER = ".st-key-{key} input[data-testid='stNumberInputField']"
SUBMIT = "[data-testid='stFormSubmitButton'] button"
METRIC = "[data-testid='stMetric']"
MAP_FRAME = "iframe[title='streamlit_folium.st_folium']"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
CHART = "[data-testid='stVegaLiteChart'] svg.marks"
TABLE = "[data-testid='stTable'] table"
DISTRICT_PICKER = "input[role='combobox'][aria-label='Ir a un distrito']"
OPTION = "//*[@role='option'][normalize-space(.)='{name}']"
DISTRICT_LABEL = ".tasador-distrito"
SCALE = ".leaflet-control-scale-line"
FILE_INPUT = "input[type='file']"
SPANISH_THOUSANDS = re.compile(r"\u2212?\d{1,3}(\.\d{3})+")


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium; fails saying what to install where it is missing."""
    require("selenium", INSTALL)
    require_program("chromium", INSTALL)
    require_program("chromedriver", INSTALL)
    with chromium() as driver:
        yield driver


def _wait(driver: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S)


def _visible(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return _wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))


def _clickable(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return _wait(driver).until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector)))


def _left_the_machine(driver: Any) -> list[str]:
    return sorted({r.url for r in requests_made(driver) if not r.local})


def test_docs_try_it_out_shows_the_price_with_no_request_leaving_the_machine(
    browser: Any, server: ServerProcess
) -> None:
    browser.get(f"{server.url}/docs")
    _clickable(browser, EXPAND).click()
    _clickable(browser, TRY_IT_OUT).click()
    sent = json.loads(_visible(browser, BODY).get_attribute("value"))  # the schema's example
    _clickable(browser, EXECUTE).click()
    status = _visible(browser, LIVE_STATUS).text.strip()
    answer_box = _visible(browser, LIVE_BODY)
    _wait(browser).until(lambda _: "precio" in answer_box.text)
    answer = json.loads(answer_box.text)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", answer_box)
    screenshot(browser, ARTIFACTS, "docs-predecir")
    expected = post_json(f"{server.url}/predecir", FORMULARIO_EJEMPLO)

    assert sent == FORMULARIO_EJEMPLO
    assert status == "200"
    assert answer["precio"] == expected["precio"]
    assert answer["modelo"] == expected["modelo"]
    assert _left_the_machine(browser) == []


@pytest.fixture(scope="module")
def app_server(server_factory: ServerFactory) -> ServerProcess:
    """The tasador the front end talks to: the embedded model, whose answers carry
    testigos wherever training homes lie near."""
    return server_factory(model_dir=EMBEDDED_MODEL_DIR)


@pytest.fixture
def front_end(app_server: ServerProcess) -> Iterator[ServerProcess]:
    """The Streamlit front end (``python -m ui``, as the README starts it), headless, with
    no street tiles (no internet here), talking to the live tasador."""
    require("streamlit", INSTALL)
    command = [
        sys.executable, "-m", "ui",
        "--server.headless", "true", "--server.address", "127.0.0.1",
        "--server.port", "{port}", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with ServerProcess(
        command,
        env={"TASADOR_API_URL": app_server.url, "TASADOR_UI_TILES": ""},
        cwd=ROOT,
        ready_path="/_stcore/health",
        process_group=True,
    ) as streamlit:
        yield streamlit


def _number(driver: Any, key: str) -> float:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, NUMBER.format(key=key))
    return float(box.get_attribute("value"))


def _metric_element(driver: Any, label: str) -> Any:
    from selenium.webdriver.common.by import By

    for metric in driver.find_elements(By.CSS_SELECTOR, METRIC):
        if metric.is_displayed() and label in metric.text:
            return metric
    return None


def _metric(driver: Any, label: str) -> str:
    from selenium.webdriver.common.by import By

    metric = _metric_element(driver, label)
    if metric is None:
        return ""
    value: str = metric.find_element(By.CSS_SELECTOR, "[data-testid='stMetricValue']").text
    return value


def _euros(value: float) -> str:
    return f"{value:,.0f} €".replace(",", ".")


def _price(value: float) -> str:
    """A price as the front end rounds it: to €500 from €100.000 on, else to €100."""
    step = 500 if value >= 100_000 else 100
    return _euros(round(value / step) * step)


def _svg_texts(driver: Any, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    chart = driver.find_elements(By.CSS_SELECTOR, selector)[-1]
    return [t.text for t in chart.find_elements(By.CSS_SELECTOR, "text") if t.text]


def test_front_end_map_click_and_form_give_the_apis_price_offline(
    browser: Any, front_end: ServerProcess, app_server: ServerProcess
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(front_end.url)
    _visible(browser, NUMBER.format(key="latitud"))
    _visible(browser, IDLE)
    before = (_number(browser, "latitud"), _number(browser, "longitud"))
    frame = _visible(browser, MAP_FRAME)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", frame)
    browser.switch_to.frame(frame)
    leaflet = _visible(browser, ".leaflet-container")
    _visible(browser, ".leaflet-interactive")  # the drawn area: Leaflet ran
    ActionChains(browser).move_to_element_with_offset(leaflet, 90, -60).click().perform()
    browser.switch_to.default_content()
    _wait(browser).until(lambda _: _number(browser, "latitud") != before[0])
    screenshot(browser, ARTIFACTS, "front-end-map")
    where = {"latitud": _number(browser, "latitud"), "longitud": _number(browser, "longitud")}
    _visible(browser, IDLE)
    _clickable(browser, SUBMIT).click()
    _wait(browser).until(lambda _: _metric(browser, "Precio estimado"))
    _visible(browser, CHART)  # the explanation, drawn
    testigos = _visible(browser, TABLE)
    time.sleep(1)  # late requests (beacons, fonts) get their chance to show in the log
    shown = _metric(browser, "Precio estimado")
    price_row = _metric_element(browser, "Precio estimado").find_element(
        By.XPATH, "./ancestor::div[@data-testid='stHorizontalBlock'][1]"
    )
    axis = _svg_texts(browser, CHART)
    headers = [th.text for th in testigos.find_elements(By.CSS_SELECTOR, "thead th")]
    first = [
        td.text
        for td in testigos.find_elements(By.CSS_SELECTOR, "tbody tr")[0].find_elements(
            By.CSS_SELECTOR, "td"
        )
    ]
    result = browser.find_element(By.XPATH, "//h3[contains(., 'Tasación')]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", result)
    screenshot(browser, ARTIFACTS, "front-end-price")
    expected = post_json(f"{app_server.url}/predecir", {**FORMULARIO_EJEMPLO, **where})

    assert where != dict(zip(("latitud", "longitud"), before, strict=True))
    assert shown == _price(expected["precio"])
    assert "Modelo entrenado con datos sintéticos" in price_row.text
    assert expected["confianza"].capitalize() in _metric(browser, "Confianza")
    assert any(SPANISH_THOUSANDS.fullmatch(t) for t in axis), (
        axis
    )  # 50.000, with a minus sign below zero
    assert not any("," in t for t in axis), axis
    assert "Efecto sobre el precio (€)" in axis
    assert headers[-6:] == [
        "Distancia", "Superficie construida", "Habitaciones", "Estado", "Precio", "Precio por m²"
    ]  # fmt: skip
    nearest = expected["testigos"]["viviendas"][0]
    assert re.fullmatch(r"\d{1,3}(\.\d{3})* m|\d+,\d km", first[-6]), first
    assert first[-5] == f"{nearest['superficie_construida']:,.0f} m²".replace(",", "."), first
    assert first[-4:-2] == [str(nearest["habitaciones"]), nearest["condicion"]]
    assert SPANISH_THOUSANDS.fullmatch(first[-2].removesuffix(" €")), first
    assert _left_the_machine(browser) == []


def test_front_end_map_zooms_on_a_district_and_names_them_all(
    browser: Any, front_end: ServerProcess
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from ui.map_picker import district_names

    browser.get(front_end.url)
    _visible(browser, IDLE)
    frame = _visible(browser, MAP_FRAME)
    browser.switch_to.frame(frame)
    scale = _visible(browser, SCALE).text
    browser.switch_to.default_content()
    picker = _clickable(browser, DISTRICT_PICKER)
    picker.click()
    picker.send_keys(Keys.CONTROL, "a")
    picker.send_keys("Salamanca")
    option = OPTION.format(name="Salamanca")
    _wait(browser).until(lambda d: d.find_elements(By.XPATH, option))
    browser.find_element(By.XPATH, option).click()
    _visible(browser, IDLE)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", frame)
    browser.switch_to.frame(frame)
    _wait(browser).until(lambda _: _visible(browser, SCALE).text != scale)
    time.sleep(0.5)  # the zoom animation ends
    names = [
        e.get_attribute("textContent")
        for e in browser.find_elements(By.CSS_SELECTOR, DISTRICT_LABEL)
    ]
    map_box = browser.find_element(By.CSS_SELECTOR, ".leaflet-container").rect
    salamanca = next(
        e for e in browser.find_elements(By.CSS_SELECTOR, DISTRICT_LABEL) if e.text == "Salamanca"
    ).rect
    zoomed = _visible(browser, SCALE).text
    browser.switch_to.default_content()
    screenshot(browser, ARTIFACTS, "front-end-map-distrito")

    assert sorted(names) == sorted(district_names())
    assert len(names) == 21
    assert zoomed in ("500 m", "300 m", "200 m", "1 km"), zoomed
    centre = (map_box["x"] + map_box["width"] / 2, map_box["y"] + map_box["height"] / 2)
    assert abs(salamanca["x"] + salamanca["width"] / 2 - centre[0]) < 40
    assert abs(salamanca["y"] + salamanca["height"] / 2 - centre[1]) < 40
    assert _left_the_machine(browser) == []


def test_front_end_csv_tab_leads_with_prices_in_spanish(
    browser: Any, front_end: ServerProcess, app_server: ServerProcess, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    homes = sample_homes(20)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["referencia", *FORMULARIO_EJEMPLO])
    writer.writeheader()
    writer.writerows({"referencia": f"v{i}", **h} for i, h in enumerate(homes))
    path = tmp_path / "casas.csv"
    path.write_text(out.getvalue(), encoding="utf-8")

    browser.get(front_end.url)
    _visible(browser, IDLE)
    tab = browser.find_element(By.XPATH, "//*[@data-testid='stTab'][contains(., 'Un lote')]")
    tab.click()
    _wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, FILE_INPUT))
    browser.find_element(By.CSS_SELECTOR, FILE_INPUT).send_keys(str(path))
    button = "//button[contains(., 'Tasar el archivo')]"
    _wait(browser).until(lambda d: d.find_elements(By.XPATH, button))
    browser.find_element(By.XPATH, button).click()
    _wait(browser).until(lambda _: _metric(browser, "Viviendas tasadas"))
    _visible(browser, IDLE)
    _wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, CHART)) >= 1)
    captions = [
        e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-testid='stCaptionContainer']")
    ]
    axis = _svg_texts(browser, CHART)
    grid = browser.find_element(By.CSS_SELECTOR, "[data-testid='stDataFrame']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", grid)
    screenshot(browser, ARTIFACTS, "front-end-csv")
    prices = post_json(f"{app_server.url}/predecir/lote", {"formularios": homes})["precios"]
    median = sorted(prices)[9:11]

    assert _metric(browser, "Viviendas tasadas") == "20 de 20"
    (summary,) = [c for c in captions if c.startswith("Mediana ")]
    assert summary == (
        f"Mediana {_price(sum(median) / 2)}, de {_price(min(prices))} a {_price(max(prices))}."
    )
    assert "Precio estimado (€)" in axis
    assert "Viviendas" in axis
    assert any(SPANISH_THOUSANDS.fullmatch(t) for t in axis), axis
    assert _left_the_machine(browser) == []

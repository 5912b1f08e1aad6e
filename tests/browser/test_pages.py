"""The interactive docs and the front end in a real browser (Debian's headless Chromium):
a person's clicks give the API's price, and no request leaves 127.0.0.1. Screenshots go
to ``test-artifacts/`` (``TASADOR_TEST_ARTIFACTS``)."""

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.schemas.formulario import FORMULARIO_EJEMPLO
from tests.helpers import post_json, require, require_program
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


@pytest.fixture(scope="module")
def tasador(tiny_bundle: Path) -> Iterator[ServerProcess]:
    """A live tasador serving the tiny bundle."""
    with ServerProcess(env={"TASADOR_MODEL_DIR": str(tiny_bundle)}) as server:
        yield server


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
    browser: Any, tasador: ServerProcess
) -> None:
    browser.get(f"{tasador.url}/docs")
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
    expected = post_json(f"{tasador.url}/predecir", FORMULARIO_EJEMPLO)

    assert sent == FORMULARIO_EJEMPLO
    assert status == "200"
    assert answer["precio"] == expected["precio"]
    assert answer["modelo"] == expected["modelo"]
    assert _left_the_machine(browser) == []


@pytest.fixture
def front_end(tasador: ServerProcess) -> Iterator[ServerProcess]:
    """The Streamlit front end (``python -m ui``, as the README starts it), headless."""
    require("streamlit", INSTALL)
    command = [
        sys.executable, "-m", "ui",
        "--server.headless", "true", "--server.address", "127.0.0.1",
        "--server.port", "{port}", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with ServerProcess(
        command,
        env={"TASADOR_API_URL": tasador.url},
        cwd=ROOT,
        ready_path="/_stcore/health",
        process_group=True,
    ) as server:
        yield server


def _number(driver: Any, key: str) -> float:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, NUMBER.format(key=key))
    return float(box.get_attribute("value"))


def _metric(driver: Any, label: str) -> str:
    from selenium.webdriver.common.by import By

    for metric in driver.find_elements(By.CSS_SELECTOR, METRIC):
        if metric.is_displayed() and label in metric.text:
            value: str = metric.find_element(By.CSS_SELECTOR, "[data-testid='stMetricValue']").text
            return value
    return ""


def _euros(value: float) -> str:
    return f"{value:,.0f} €".replace(",", ".")


def test_front_end_map_click_and_form_give_the_apis_price_offline(
    browser: Any, front_end: ServerProcess, tasador: ServerProcess
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
    time.sleep(1)  # late requests (beacons, fonts) get their chance to show in the log
    shown = _metric(browser, "Precio estimado")
    result = browser.find_element(By.XPATH, "//h3[contains(., 'Tasación')]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", result)
    screenshot(browser, ARTIFACTS, "front-end-price")
    expected = post_json(f"{tasador.url}/predecir", {**FORMULARIO_EJEMPLO, **where})

    assert where != dict(zip(("latitud", "longitud"), before, strict=True))
    assert shown == _euros(expected["precio"])
    assert _left_the_machine(browser) == []

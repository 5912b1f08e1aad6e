"""The confidence grade: alta, media or baja, each with its error measured on the hold-out."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.training.pipeline import train
from app.training.synthetic import generate
from tests.helpers import TINY

GRADES = ("alta", "media", "baja")


def test_the_manifest_states_each_grades_error_and_alta_is_the_surest(
    embedded: TestClient,
) -> None:
    confianza = embedded.get("/modelo").json()["confianza"]
    grades = confianza["grades"]

    assert confianza["alta"] < confianza["media"]
    assert sum(grades[g]["share"] for g in GRADES) == pytest.approx(1.0)
    assert all(grades[g]["rows"] > 100 for g in GRADES)
    assert grades["alta"]["median_ape"] < grades["media"]["median_ape"]
    assert grades["media"]["median_ape"] < grades["baja"]["median_ape"]
    assert all(0.7 < grades[g]["coverage"] < 0.9 for g in GRADES)


def test_on_homes_it_never_saw_alta_is_more_accurate_than_media_and_media_than_baja(
    embedded: TestClient,
) -> None:
    data = generate(3000, 2027)
    homes = [f.model_dump(mode="json") for f in data.formularios]

    results = embedded.post("/predecir/lote?detalle=true", json={"formularios": homes}).json()

    grade = np.array([r["confianza"] for r in results["resultados"]])
    price = np.array([r["precio"] for r in results["resultados"]])
    error = np.abs(price - data.precios) / data.precios
    median = {g: float(np.median(error[grade == g])) for g in GRADES}
    assert median["alta"] < median["media"] < median["baja"]
    stated = embedded.get("/modelo").json()["confianza"]["grades"]
    for g in GRADES:
        assert np.mean(grade == g) == pytest.approx(stated[g]["share"], abs=0.05), g


def _graded(answer: dict[str, Any], thresholds: dict[str, Any]) -> str:
    width = (answer["intervalo"]["superior"] - answer["intervalo"]["inferior"]) / answer["precio"]
    if (
        any(a["campo"] != "desconocidos" for a in answer["advertencias"])
        or width > thresholds["media"]
    ):
        return "baja"
    return "alta" if width <= thresholds["alta"] else "media"


def test_the_grade_is_the_intervals_width_against_the_stated_thresholds(
    embedded: TestClient,
) -> None:
    thresholds = embedded.get("/modelo").json()["confianza"]
    homes = [f.model_dump(mode="json") for f in generate(300, 5).formularios]

    results = embedded.post("/predecir/lote?detalle=true", json={"formularios": homes}).json()

    graded = [r["confianza"] for r in results["resultados"]]
    assert graded == [_graded(r, thresholds) for r in results["resultados"]]
    assert set(graded) == set(GRADES)


def test_a_home_unlike_the_training_data_is_baja(
    embedded: TestClient, formulario: dict[str, Any]
) -> None:
    huge = {**formulario, "superficie_construida": 1500.0, "superficie_util": 1300.0}

    assert embedded.post("/predecir", json=formulario).json()["confianza"] in ("alta", "media")
    assert embedded.post("/predecir", json=huge).json()["confianza"] == "baja"


def test_training_prints_and_records_the_grades(tmp_path: Path) -> None:
    said: list[str] = []
    train(generate(400, 3), tmp_path / "b", TINY, say=said.append, progress=False)

    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    valuation = json.loads((tmp_path / "b" / "valuation.json").read_text())
    line = next(s for s in said if s.startswith("Confianza on the hold-out: alta "))
    grades = manifest["confianza"]["grades"]
    assert sum(grades[g]["rows"] for g in GRADES) == manifest["interval"]["rows"]
    assert valuation["confianza"] == {
        "alta": manifest["confianza"]["alta"],
        "media": manifest["confianza"]["media"],
    }
    assert f"baja {grades['baja']['share']:.0%} of homes" in line

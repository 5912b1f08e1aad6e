"""Prediction routes: one home, or many in one call."""

from datetime import UTC, datetime

from fastapi import APIRouter

from app.deps import BundleDep, SettingsDep
from app.errors import check_rows
from app.schemas import Formulario, Lote, Prediccion, PrediccionLote

router = APIRouter(prefix="/predecir", tags=["predicción"])


@router.post("")
def predecir(formulario: Formulario, bundle: BundleDep) -> Prediccion:
    """Appraise one home: its estimated asking price in EUR."""
    x = bundle.features.matrix([formulario])
    precio = float(bundle.engine.predict(x)[0])
    return Prediccion(precio=round(precio, 2), timestamp=datetime.now(UTC), modelo=bundle.version)


@router.post("/lote")
def predecir_lote(lote: Lote, bundle: BundleDep, settings: SettingsDep) -> PrediccionLote:
    """Appraise many homes in one call; prices come back in the order sent."""
    check_rows(len(lote.formularios), settings.max_batch_rows, "formularios")
    precios = bundle.engine.predict(bundle.features.matrix(lote.formularios))
    return PrediccionLote(
        precios=[round(p, 2) for p in precios.tolist()],
        timestamp=datetime.now(UTC),
        modelo=bundle.version,
    )

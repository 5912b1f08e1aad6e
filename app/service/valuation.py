"""Appraising homes: one, or many in one vectorised engine call."""

from datetime import UTC, datetime

from app.bundle.loader import Bundle
from app.errors import too_many_rows
from app.schemas.formulario import Formulario
from app.schemas.prediccion import Lote, Prediccion, PrediccionLote


def appraise(bundle: Bundle, formulario: Formulario) -> Prediccion:
    """The estimated asking price of one home."""
    precio = float(bundle.engine.predict(bundle.features.matrix([formulario]))[0])
    return Prediccion(precio=round(precio, 2), timestamp=datetime.now(UTC), modelo=bundle.version)


def appraise_batch(bundle: Bundle, lote: Lote, max_rows: int) -> PrediccionLote:
    """One price per home, in the order sent; refused above ``max_rows`` homes."""
    if len(lote.formularios) > max_rows:
        raise too_many_rows(len(lote.formularios), max_rows, "formularios")
    precios = bundle.engine.predict(bundle.features.matrix(lote.formularios))
    return PrediccionLote(
        precios=precios.round(2).tolist(), timestamp=datetime.now(UTC), modelo=bundle.version
    )

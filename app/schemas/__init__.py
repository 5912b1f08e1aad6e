"""Wire formats of the API: what clients send and what they get back.

Names follow the users' domain language (Spanish); see the README's naming rule. Inside
the ``app`` package, import from the submodules (``app.schemas.formulario``): this
package's namespace gathers them for users of the API's types.
"""

from app.schemas.errores import Errores, Problema
from app.schemas.estado import Estado, Modelo
from app.schemas.evaluacion import (
    METRICAS_EJEMPLO,
    Evaluacion,
    Metricas,
    Muestra,
    PeticionEvaluacion,
)
from app.schemas.formulario import FORMULARIO_EJEMPLO, Condicion, Formulario
from app.schemas.prediccion import Lote, Prediccion, PrediccionLote

__all__ = [
    "FORMULARIO_EJEMPLO",
    "METRICAS_EJEMPLO",
    "Condicion",
    "Errores",
    "Estado",
    "Evaluacion",
    "Formulario",
    "Lote",
    "Metricas",
    "Modelo",
    "Muestra",
    "PeticionEvaluacion",
    "Prediccion",
    "PrediccionLote",
    "Problema",
]

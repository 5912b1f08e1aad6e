"""What model is being served."""

from fastapi import APIRouter

from app.api.deps import BundleDep
from app.schemas.estado import Firma, Modelo, Origen

router = APIRouter(tags=["estado"])


@router.get("/modelo", summary="The model served")
async def get_modelo(bundle: BundleDep) -> Modelo:
    """The manifest of the bundle being served (version, features, metrics, data), the
    engine serving it, where it came from (MLflow) and who signed it."""
    origin = bundle.origin
    origen = (
        Origen(uri=origin.uri, run_id=origin.run_id, nombre=origin.name, version=origin.version)
        if origin
        else None
    )
    seal = bundle.seal
    firma = Firma(clave=seal.key_id, comprobada=seal.checked) if seal else None
    return Modelo(
        **bundle.manifest.model_dump(), engine=bundle.engine.name, origen=origen, firma=firma
    )

"""The Prometheus metrics route."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.monitoring import Instruments

router = APIRouter(tags=["estado"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def get_metrics(request: Request) -> Response:
    """Prometheus metrics of the service, all its workers' added up."""
    instruments: Instruments = request.app.state.instruments
    return Response(instruments.exposition(), media_type=CONTENT_TYPE_LATEST)

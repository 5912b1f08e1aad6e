"""The Prometheus metrics route."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest

from app.monitoring import Instruments

router = APIRouter(tags=["estado"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def get_metrics(request: Request) -> Response:
    """Prometheus metrics of this process."""
    instruments: Instruments = request.app.state.instruments
    return Response(generate_latest(instruments.registry), media_type=CONTENT_TYPE_LATEST)

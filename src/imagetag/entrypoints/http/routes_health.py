"""Liveness and what is serving: no authentication."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import get
from litestar.openapi.spec import Operation

from imagetag import __version__
from imagetag.entrypoints.http.dependencies import ActiveDetector, ActiveSettings
from imagetag.entrypoints.http.schemas import HealthBody, detector_body


# A dataclass again so that its __init__ calls __post_init__ (Operation's does not).
@dataclass
class PublicOperation(Operation):
    """Needs no API key: an empty ``security`` overrides the API's global requirement."""

    def __post_init__(self) -> None:
        self.security = []


@get(
    "/health",
    summary="Service health and the active detector",
    operation_class=PublicOperation,
)
async def health(settings: ActiveSettings, detector: ActiveDetector) -> HealthBody:
    return HealthBody(
        status="ok",
        version=__version__,
        database=settings.database_backend,
        detector=detector_body(detector.info),
    )

"""Liveness and what is serving: no authentication."""

from __future__ import annotations

from litestar import get

from imagetag import __version__
from imagetag.entrypoints.http.dependencies import ActiveDetector, ActiveSettings
from imagetag.entrypoints.http.schemas import HealthBody, detector_body


@get("/health", summary="Service health and the active detector")
async def health(settings: ActiveSettings, detector: ActiveDetector) -> HealthBody:
    return HealthBody(
        status="ok",
        version=__version__,
        database=settings.database_backend,
        detector=detector_body(detector.info),
    )

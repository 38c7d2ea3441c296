"""What handlers receive from the container, exposed to Litestar as named dependencies."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidationMarker

from imagetag.entrypoints.container import Container
from imagetag.entrypoints.settings import Settings
from imagetag.ports.detector import Detector
from imagetag.services.images import ImageService

# Services are our own objects, not request data: Litestar need not validate them.
Images: TypeAlias = NamedDependency[Annotated[ImageService, SkipValidationMarker()]]
ActiveSettings: TypeAlias = NamedDependency[Annotated[Settings, SkipValidationMarker()]]
ActiveDetector: TypeAlias = NamedDependency[Annotated[Detector, SkipValidationMarker()]]


def dependencies_for(container: Container) -> dict[str, Provide]:
    """Providers without parameters, so Litestar has nothing to resolve per request."""

    def images() -> ImageService:
        return container.images()

    def settings() -> Settings:
        return container.settings()

    def detector() -> Detector:
        return container.detector()

    return {
        "images": Provide(images, sync_to_thread=False),
        "settings": Provide(settings, sync_to_thread=False),
        "detector": Provide(detector, sync_to_thread=False),
    }

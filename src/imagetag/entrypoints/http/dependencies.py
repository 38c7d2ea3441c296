"""What handlers receive from the container, exposed to Litestar as named dependencies."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidationMarker

from imagetag.entrypoints.container import Container
from imagetag.entrypoints.settings import Settings
from imagetag.ports.detector import Detector
from imagetag.services.audit import AuditService
from imagetag.services.images import ImageService
from imagetag.services.keys import KeyService
from imagetag.services.tags import TagService

# Services are our own objects, not request data: Litestar need not validate them.
Images: TypeAlias = NamedDependency[Annotated[ImageService, SkipValidationMarker()]]
Tags: TypeAlias = NamedDependency[Annotated[TagService, SkipValidationMarker()]]
Keys: TypeAlias = NamedDependency[Annotated[KeyService, SkipValidationMarker()]]
Audit: TypeAlias = NamedDependency[Annotated[AuditService, SkipValidationMarker()]]
ActiveSettings: TypeAlias = NamedDependency[Annotated[Settings, SkipValidationMarker()]]
ActiveDetector: TypeAlias = NamedDependency[Annotated[Detector, SkipValidationMarker()]]


def dependencies_for(container: Container) -> dict[str, Provide]:
    """Providers without parameters, so Litestar has nothing to resolve per request.

    Their names must not be those of query parameters (``tags`` is one of /images).
    """

    def images() -> ImageService:
        return container.images()

    def tags() -> TagService:
        return container.tags()

    def keys() -> KeyService:
        return container.keys()

    def audit() -> AuditService:
        return container.audit()

    def settings() -> Settings:
        return container.settings()

    def detector() -> Detector:
        return container.detector()

    return {
        "images": Provide(images, sync_to_thread=False),
        "tagging": Provide(tags, sync_to_thread=False),
        "audit_log": Provide(audit, sync_to_thread=False),
        "api_keys": Provide(keys, sync_to_thread=False),
        "settings": Provide(settings, sync_to_thread=False),
        "detector": Provide(detector, sync_to_thread=False),
    }

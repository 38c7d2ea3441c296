"""What handlers receive from the container, exposed to Litestar as named dependencies."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.datastructures import State
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


def _container(state: State) -> Container:
    container: Container = state.container
    return container


def provide_images(state: State) -> ImageService:
    return _container(state).images()


def provide_settings(state: State) -> Settings:
    return _container(state).settings()


def provide_detector(state: State) -> Detector:
    return _container(state).detector()


DEPENDENCIES = {
    "images": Provide(provide_images, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "detector": Provide(provide_detector, sync_to_thread=False),
}

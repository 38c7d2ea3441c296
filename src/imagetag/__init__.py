"""imagetag: ingest images, detect the objects in them, tag them and find them again.

The public API for embedding the core in your own service. The domain types, the ports
(what the core needs, as ``Protocol``s) and the use cases import nothing but the standard
library; the composition helpers (``Settings``, ``build_container``...) load the real
adapters, and only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagetag.domain.audit import AuditEvent, AuditEventType, AuditQuery
from imagetag.domain.detections import BoundingBox, Detection, DetectorInfo, Thresholds
from imagetag.domain.errors import (
    AuthenticationFailed,
    DetectionFailed,
    DetectorUnavailable,
    IdempotencyKeyReused,
    ImageNotFound,
    ImagetagError,
    ImageTooLarge,
    InvalidInput,
    PermissionDenied,
    UnsupportedImage,
    UrlFetchFailed,
    UrlRefused,
)
from imagetag.domain.idempotency import DuplicatePolicy
from imagetag.domain.images import DetectionRun, DetectionStatus, Image, ImageFacts
from imagetag.domain.principals import Actor, Principal, Role
from imagetag.domain.search import Match, SearchQuery, parse_search
from imagetag.domain.tags import Tag, TagCount, TagSource
from imagetag.ports.blobs import BlobStore, StagedBlob
from imagetag.ports.clock import Clock
from imagetag.ports.detector import Detector
from imagetag.ports.fetcher import UrlFetcher
from imagetag.ports.images import ImageInspector
from imagetag.ports.repository import ImageReader, UnitOfWork, UnitOfWorkFactory
from imagetag.services.audit import AuditService
from imagetag.services.images import (
    ImagePage,
    ImageService,
    IngestRequest,
    RemoteUrl,
    UploadedBytes,
    UploadedFile,
)
from imagetag.services.keys import KeyService
from imagetag.services.tags import TagService

if TYPE_CHECKING:
    from imagetag.adapters.sqla.migrate import upgrade_database
    from imagetag.entrypoints.container import Container, build_container, close_container
    from imagetag.entrypoints.settings import Settings

__version__ = "0.1.0"

# Composition helpers, imported on first use: they pull in SQLAlchemy, OpenCV and the rest.
_LAZY = {
    "Settings": "imagetag.entrypoints.settings",
    "Container": "imagetag.entrypoints.container",
    "build_container": "imagetag.entrypoints.container",
    "close_container": "imagetag.entrypoints.container",
    "upgrade_database": "imagetag.adapters.sqla.migrate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imagetag' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Actor",
    "AuditEvent",
    "AuditEventType",
    "AuditQuery",
    "AuditService",
    "AuthenticationFailed",
    "BlobStore",
    "BoundingBox",
    "Clock",
    "Container",
    "Detection",
    "DetectionFailed",
    "DetectionRun",
    "DetectionStatus",
    "Detector",
    "DetectorInfo",
    "DetectorUnavailable",
    "DuplicatePolicy",
    "IdempotencyKeyReused",
    "Image",
    "ImageFacts",
    "ImageInspector",
    "ImageNotFound",
    "ImagePage",
    "ImageReader",
    "ImageService",
    "ImageTooLarge",
    "ImagetagError",
    "IngestRequest",
    "InvalidInput",
    "KeyService",
    "Match",
    "PermissionDenied",
    "Principal",
    "RemoteUrl",
    "Role",
    "SearchQuery",
    "Settings",
    "StagedBlob",
    "Tag",
    "TagCount",
    "TagService",
    "TagSource",
    "Thresholds",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "UnsupportedImage",
    "UploadedBytes",
    "UploadedFile",
    "UrlFetchFailed",
    "UrlFetcher",
    "UrlRefused",
    "__version__",
    "build_container",
    "close_container",
    "parse_search",
    "upgrade_database",
]

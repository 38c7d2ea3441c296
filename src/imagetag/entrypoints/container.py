"""The composition root: builds every adapter from settings, for the app, the CLI and tests."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from dependency_injector import containers, providers

from imagetag.adapters.blobs_fs import FileSystemBlobStore
from imagetag.adapters.clock_system import SystemClock
from imagetag.adapters.detectors.imagga_http import ImaggaConfig
from imagetag.adapters.detectors.selection import build_detector
from imagetag.adapters.fetcher_http import RequestsUrlFetcher
from imagetag.adapters.identity_apikey import KEY_PREFIX, Sha256KeyHasher
from imagetag.adapters.identity_oidc import OidcConfig, OidcTokenVerifier
from imagetag.adapters.image_inspector_pillow import PillowImageInspector
from imagetag.adapters.sqla.engine import create_engine, session_factory
from imagetag.adapters.sqla.reader import (
    SqlAlchemyImageReader,
    SqliteImageReader,
    create_image_reader,
)
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.errors import ImagetagError
from imagetag.domain.idempotency import DuplicatePolicy
from imagetag.domain.principals import Principal
from imagetag.entrypoints.settings import Settings
from imagetag.ports.blobs import BlobStore
from imagetag.ports.clock import Clock
from imagetag.ports.fetcher import UrlFetcher
from imagetag.ports.identity import Authenticator, KeyHasher
from imagetag.ports.images import ImageInspector
from imagetag.ports.repository import ImageReader, UnitOfWorkFactory
from imagetag.services.audit import AuditService
from imagetag.services.images import ImageService
from imagetag.services.keys import KeyService
from imagetag.services.tags import TagService

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ByPrefix:
    """Sends a bearer that starts with ``prefix`` (an API key) to ``matching``, any other
    (a JWT) to ``other``."""

    prefix: str
    matching: Authenticator
    other: Authenticator

    async def authenticate(self, bearer: str, /) -> Principal:
        chosen = self.matching if bearer.startswith(self.prefix) else self.other
        return await chosen.authenticate(bearer)


def imagga_config(settings: Settings) -> ImaggaConfig | None:
    """Imagga's settings when it is the detector (only then are key and secret required)."""
    if settings.detector != "imagga":
        return None
    return ImaggaConfig(
        api_key=settings.imagga_key,
        api_secret=settings.imagga_secret,
        url=settings.imagga_url,
        threshold=settings.imagga_threshold,
        limit=settings.imagga_limit,
        timeout_seconds=settings.imagga_timeout_seconds,
        retries=settings.imagga_retries,
        backoff_seconds=settings.imagga_backoff_seconds,
    )


def build_blob_store(settings: Settings) -> BlobStore:
    """The S3 store when ``IMAGETAG_BLOBS`` is an ``s3://`` URL, else the disk store."""
    location = settings.blobs_s3
    if location is None:
        return FileSystemBlobStore(settings.blobs_dir)
    # Imported here: only deployments that keep blobs in S3 load boto3.
    from imagetag.adapters.blobs_s3 import S3BlobStore

    return S3BlobStore(
        location.bucket,
        location.prefix,
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region or None,
    )


def oidc_config(settings: Settings) -> OidcConfig:
    return OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        user_claim=settings.oidc_user_claim,
        roles_claim=settings.oidc_roles_claim,
        algorithms=settings.oidc_algorithm_names,
        leeway_seconds=settings.oidc_leeway_seconds,
    )


def build_authenticator(settings: Settings, keys: KeyService) -> Authenticator:
    """What checks a bearer credential, per ``IMAGETAG_AUTH``: the key service alone (the
    default), the OIDC verifier alone, or both chosen by the API-key prefix."""
    methods = settings.auth_methods
    if "oidc" not in methods:
        return keys
    tokens = OidcTokenVerifier(oidc_config(settings))
    if "apikey" not in methods:
        return tokens
    return ByPrefix(KEY_PREFIX, keys, tokens)


class Container(containers.DeclarativeContainer):
    """Tests swap an adapter with e.g. ``container.detector.override(FakeDetector())``."""

    settings = providers.Dependency(instance_of=Settings)

    engine = providers.Singleton(create_engine, settings.provided.database_url)
    unit_of_work = providers.Singleton(
        SqlUnitOfWorkFactory, providers.Singleton(session_factory, engine)
    )
    reader = providers.Singleton(create_image_reader, settings.provided.database_url, engine)
    blobs = providers.Singleton(build_blob_store, settings)
    inspector = providers.Singleton(
        PillowImageInspector,
        max_pixels=settings.provided.max_image_pixels,
        formats=settings.provided.image_format_names,
    )
    fetcher = providers.Singleton(
        RequestsUrlFetcher,
        max_bytes=settings.provided.max_upload_bytes,
        timeout_seconds=settings.provided.fetch_timeout_seconds,
        max_redirects=settings.provided.fetch_max_redirects,
        allow_private=settings.provided.fetch_allow_private,
    )
    detector = providers.Singleton(
        build_detector,
        settings.provided.detector,
        yolo_model=settings.provided.yolo_model,
        models_dir=settings.provided.models_dir,
        config_dir=settings.provided.ultralytics_config_dir,
        confidence=settings.provided.detect_confidence,
        iou=settings.provided.detect_iou,
        allow_download=settings.provided.yolo_allow_download,
        imagga=providers.Callable(imagga_config, settings),
    )
    clock = providers.Singleton(SystemClock)
    hasher = providers.Singleton(Sha256KeyHasher)

    images = providers.Singleton(
        ImageService,
        unit_of_work=unit_of_work,
        reader=reader,
        blobs=blobs,
        inspector=inspector,
        fetcher=fetcher,
        detector=detector,
        clock=clock,
        max_image_bytes=settings.provided.max_upload_bytes,
        duplicates=providers.Factory(DuplicatePolicy, settings.provided.duplicates),
        detect_timeout=providers.Factory(
            timedelta, seconds=settings.provided.detect_timeout_seconds
        ),
    )
    tags = providers.Singleton(TagService, unit_of_work=unit_of_work, clock=clock)
    audit = providers.Singleton(AuditService, unit_of_work=unit_of_work)
    keys = providers.Singleton(
        KeyService,
        unit_of_work=unit_of_work,
        hasher=hasher,
        clock=clock,
        cache_ttl=providers.Factory(timedelta, seconds=settings.provided.auth_cache_seconds),
    )
    authenticator = providers.Singleton(build_authenticator, settings, keys)


if TYPE_CHECKING:
    # The providers above take any callable: this has mypy check that each adapter they
    # build fits the port the services expect.
    def _adapters_fit_their_ports(
        unit_of_work: SqlUnitOfWorkFactory,
        readers: SqliteImageReader | SqlAlchemyImageReader,
        inspector: PillowImageInspector,
        fetcher: RequestsUrlFetcher,
        clock: SystemClock,
        hasher: Sha256KeyHasher,
    ) -> tuple[UnitOfWorkFactory, ImageReader, ImageInspector, UrlFetcher, Clock, KeyHasher]:
        return unit_of_work, readers, inspector, fetcher, clock, hasher


def build_container(settings: Settings) -> Container:
    container = Container(settings=settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return container


async def warm_up_detector(container: Container) -> None:
    """Load the detector's model now, on its own thread, so the first image need not wait.

    A model that will not load is logged here; each detection then fails with the reason,
    as it would without warming up. Detectors with nothing to load have no ``warm_up``.
    """
    warm_up = getattr(container.detector(), "warm_up", None)
    if warm_up is None:
        return
    try:
        await warm_up()
    except ImagetagError as error:
        logger.error("the detector could not be loaded: %s", error)


async def close_container(container: Container) -> None:
    """Release what the container opened (database pools) on shutdown."""
    await container.engine().dispose()

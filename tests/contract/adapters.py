"""Every adapter of each port, as a table of builders the contract fixtures run over.

An adapter added to a table runs the whole contract suite of its port. Models and
formats differ, so the detector and inspector entries also say what their adapter must
find in a real image.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagetag.adapters.blobs_fs import FileSystemBlobStore
from imagetag.adapters.detectors.imagga_http import ImaggaConfig, ImaggaHttpDetector
from imagetag.adapters.detectors.opencv_cascade import OpenCvCascadeDetector
from imagetag.adapters.detectors.yolo_onnx import OnnxYoloDetector
from imagetag.adapters.detectors.yolo_torch import UltralyticsYoloDetector
from imagetag.adapters.identity_apikey import Sha256KeyHasher
from imagetag.adapters.identity_oidc import OidcConfig, OidcTokenVerifier
from imagetag.adapters.image_inspector_pillow import PillowImageInspector
from imagetag.adapters.sqla.engine import create_engine, session_factory
from imagetag.adapters.sqla.reader import create_image_reader
from imagetag.adapters.sqla.unit_of_work import SqlUnitOfWorkFactory
from imagetag.domain.detections import BoundingBox, Detection
from imagetag.domain.images import ImageFacts
from imagetag.domain.principals import Actor, Principal, Role
from imagetag.ports.blobs import BlobStore
from imagetag.ports.detector import Detector
from imagetag.ports.identity import Authenticator
from imagetag.ports.images import ImageInspector
from imagetag.ports.repository import ImageReader, UnitOfWorkFactory
from imagetag.services.keys import SYSTEM, KeyService
from tests.fakes import (
    CORRUPT,
    FAKE_DETECTOR_INFO,
    FakeBlobStore,
    FakeDetector,
    FakeImageInspector,
    FakeImageReader,
    FakeUnitOfWorkFactory,
    FixedClock,
)
from tests.support.assets import BUS, ZIDANE, fall_weights_onnx, fall_weights_pt
from tests.support.databases import MigratedTemplates
from tests.support.fake_imagga import running_fake_imagga
from tests.support.jwks import AUDIENCE, ISSUER, SigningKey, claims, running_jwks
from tests.support.s3 import moto_s3_server

Marks = tuple[pytest.MarkDecorator, ...]


def params(table: Mapping[str, tuple[object, Marks]]) -> list[object]:
    """The fixture parameters of a table: one per adapter, with its marks."""
    return [pytest.param(name, marks=marks, id=name) for name, (_, marks) in table.items()]


# --- Storage: the unit of work with its repositories, and the point reader -------------


@dataclass(frozen=True)
class Storage:
    """One store as the services see it: units of work for writes, a reader for hot reads."""

    unit_of_work: UnitOfWorkFactory
    reader: ImageReader


@contextlib.asynccontextmanager
async def fake_storage(_request: pytest.FixtureRequest, _tmp_path: Path) -> AsyncIterator[Storage]:
    factory = FakeUnitOfWorkFactory()
    yield Storage(factory, FakeImageReader(factory.storage))


@contextlib.asynccontextmanager
async def _sql_storage(url: str) -> AsyncIterator[Storage]:
    engine = create_engine(url)
    try:
        unit_of_work = SqlUnitOfWorkFactory(session_factory(engine))
        yield Storage(unit_of_work, create_image_reader(url, engine))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def sqlite_storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    templates: MigratedTemplates = request.getfixturevalue("database_templates")
    async with _sql_storage(await templates.sqlite(tmp_path)) as storage:
        yield storage


@contextlib.asynccontextmanager
async def postgresql_storage(
    request: pytest.FixtureRequest, _tmp_path: Path
) -> AsyncIterator[Storage]:
    templates: MigratedTemplates = request.getfixturevalue("database_templates")
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    async with _sql_storage(await templates.postgresql(admin_url)) as storage:
        yield storage


StorageBuilder = Callable[
    [pytest.FixtureRequest, Path], contextlib.AbstractAsyncContextManager[Storage]
]
STORAGES: dict[str, tuple[StorageBuilder, Marks]] = {
    "fake": (fake_storage, ()),
    "sqlite": (sqlite_storage, ()),
    "postgresql": (postgresql_storage, (pytest.mark.postgres,)),
}


# --- Blob stores ------------------------------------------------------------------------


def fake_blob_store(_tmp_path: Path) -> BlobStore:
    return FakeBlobStore()


def disk_blob_store(tmp_path: Path) -> BlobStore:
    return FileSystemBlobStore(tmp_path / "blobs")


def s3_blob_store(_tmp_path: Path) -> BlobStore:
    """An S3 store over real HTTP: a new bucket on moto's S3 server on loopback, under a
    prefix (moto is a dev dependency, so the server is always there: no mark)."""
    server = moto_s3_server()
    return server.store(server.new_bucket(), "imagetag/blobs")


BLOB_STORES: dict[str, tuple[Callable[[Path], BlobStore], Marks]] = {
    "fake": (fake_blob_store, ()),
    "disk": (disk_blob_store, ()),
    "s3": (s3_blob_store, ()),
}


# --- Image inspectors -------------------------------------------------------------------


@dataclass(frozen=True)
class InspectorCase:
    """An inspector and a real image it reads, with the facts it must report."""

    inspector: ImageInspector
    image: bytes
    facts: ImageFacts
    # The same image damaged: its header reads, its pixels do not.
    damaged: bytes


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def noisy_jpeg(width: int, height: int) -> bytes:
    """Noise, so that the compressed data outweighs the header: half the file still has
    a whole header."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


SMALL_PNG_FACTS = ImageFacts("image/png", 48, 32)


def fake_inspector() -> InspectorCase:
    image = png(48, 32)
    return InspectorCase(
        FakeImageInspector(SMALL_PNG_FACTS, bounded=True), image, SMALL_PNG_FACTS, image + CORRUPT
    )


def pillow_inspector() -> InspectorCase:
    inspector = PillowImageInspector(max_pixels=10_000)
    image = png(48, 32)
    return InspectorCase(inspector, image, SMALL_PNG_FACTS, image[: len(image) // 2])


def pillow_inspector_of_a_jpeg() -> InspectorCase:
    """A JPEG: its facts come from the bounded read as well as from ``inspect``."""
    inspector = PillowImageInspector(max_pixels=10_000)
    image = noisy_jpeg(48, 32)
    facts = ImageFacts("image/jpeg", 48, 32)
    return InspectorCase(inspector, image, facts, image[: len(image) // 2])


INSPECTORS: dict[str, tuple[Callable[[], InspectorCase], Marks]] = {
    "fake": (fake_inspector, ()),
    "pillow": (pillow_inspector, ()),
    "pillow-jpeg": (pillow_inspector_of_a_jpeg, ()),
}


# --- Detectors --------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorCase:
    """A detector, its names, and what it must find in a real photo: at least
    ``at_least`` detections named one of ``finds_any_of``."""

    detector: Detector
    detector_name: str
    model_name: str
    photo: bytes
    finds_any_of: frozenset[str]
    at_least: int
    has_iou_threshold: bool = True


def _person(confidence: float, box: BoundingBox | None) -> Detection:
    return Detection("normal", confidence, box, FAKE_DETECTOR_INFO)


# Roughly what the fall model reports on bus.jpg: three standing people, one doubtful fall.
FAKE_FINDINGS = (
    _person(0.93, BoundingBox(0.06, 0.28, 0.31, 0.87)),
    _person(0.91, BoundingBox(0.27, 0.29, 0.46, 0.85)),
    _person(0.84, BoundingBox(0.80, 0.29, 1.0, 0.86)),
    Detection("fall", 0.31, None, FAKE_DETECTOR_INFO),
)
JPEG_MAGIC = b"\xff\xd8\xff"


@contextlib.contextmanager
def fake_detector(_request: pytest.FixtureRequest) -> Iterator[DetectorCase]:
    detector = FakeDetector(FAKE_FINDINGS, image_magic=JPEG_MAGIC)
    yield DetectorCase(detector, "fake", "fake-model", BUS.read_bytes(), frozenset({"normal"}), 3)


@contextlib.contextmanager
def yolo_torch_detector(request: pytest.FixtureRequest) -> Iterator[DetectorCase]:
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    detector = UltralyticsYoloDetector(
        fall_weights_pt(), config_dir=factory.mktemp("ultralytics-config")
    )
    try:
        yield DetectorCase(detector, "yolo", "best.pt", BUS.read_bytes(), frozenset({"normal"}), 3)
    finally:
        detector.close()


@contextlib.contextmanager
def yolo_onnx_detector(_request: pytest.FixtureRequest) -> Iterator[DetectorCase]:
    detector = OnnxYoloDetector(fall_weights_onnx())
    try:
        yield DetectorCase(
            detector, "yolo-onnx", "best_fp16.onnx", BUS.read_bytes(), frozenset({"normal"}), 3
        )
    finally:
        detector.close()


@contextlib.contextmanager
def opencv_detector(_request: pytest.FixtureRequest) -> Iterator[DetectorCase]:
    detector = OpenCvCascadeDetector()
    try:
        yield DetectorCase(
            detector,
            "opencv",
            "haarcascades",
            ZIDANE.read_bytes(),
            frozenset({"face", "person"}),
            1,
            has_iou_threshold=False,
        )
    finally:
        detector.close()


@contextlib.contextmanager
def imagga_detector(_request: pytest.FixtureRequest) -> Iterator[DetectorCase]:
    """Imagga's adapter over real HTTP, against the stand-in for Imagga on loopback."""
    with running_fake_imagga() as imagga:
        detector = ImaggaHttpDetector(
            ImaggaConfig(api_key=imagga.api_key, api_secret=imagga.api_secret, url=imagga.base_url)
        )
        try:
            yield DetectorCase(
                detector,
                "imagga",
                "imagga-tags",
                BUS.read_bytes(),
                frozenset({"bus"}),
                1,
                has_iou_threshold=False,
            )
        finally:
            detector.close()


DetectorBuilder = Callable[[pytest.FixtureRequest], contextlib.AbstractContextManager[DetectorCase]]
DETECTORS: dict[str, tuple[DetectorBuilder, Marks]] = {
    "fake": (fake_detector, ()),
    "yolo": (yolo_torch_detector, (pytest.mark.slow,)),
    "yolo-onnx": (yolo_onnx_detector, ()),
    "opencv": (opencv_detector, ()),
    "imagga": (imagga_detector, ()),
}


# --- Authenticators ---------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityCase:
    """An authenticator, a credential it accepts with the principal it stands for, and
    credentials of its own kind that it must refuse."""

    authenticator: Authenticator
    valid: str
    principal: Principal
    invalid: tuple[str, ...]


@contextlib.asynccontextmanager
async def api_key_identity() -> AsyncIterator[IdentityCase]:
    keys = KeyService(
        unit_of_work=FakeUnitOfWorkFactory(), hasher=Sha256KeyHasher(), clock=FixedClock()
    )
    issued = await keys.create("carol", SYSTEM, client="notebook", role=Role.TAGGER)
    revoked = await keys.create("gone", SYSTEM)
    await keys.revoke("gone", SYSTEM)
    yield IdentityCase(
        keys,
        issued.secret,
        Principal(Actor("carol", "notebook"), Role.TAGGER),
        (Sha256KeyHasher().new_secret(), revoked.secret, issued.secret[:-1], ""),
    )


@contextlib.asynccontextmanager
async def oidc_identity() -> AsyncIterator[IdentityCase]:
    """The OIDC verifier over real HTTP, against a JWKS served on loopback."""
    key = SigningKey.ec("contract")
    with running_jwks([key]) as idp:
        verifier = OidcTokenVerifier(OidcConfig(ISSUER, AUDIENCE, idp.url))
        yield IdentityCase(
            verifier,
            key.sign(claims(sub="carol", azp="notebook", roles="tagger")),
            Principal(Actor("carol", "notebook"), Role.TAGGER),
            (
                key.sign(claims(aud="elsewhere")),
                SigningKey.ec("contract").sign(claims()),
                "not.a.token",
                "",
            ),
        )


IDENTITIES: dict[
    str, tuple[Callable[[], contextlib.AbstractAsyncContextManager[IdentityCase]], Marks]
] = {
    "apikey": (api_key_identity, ()),
    "oidc": (oidc_identity, ()),
}

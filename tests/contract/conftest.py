"""One fixture per port, parametrised over every adapter of it (see adapters.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from imagetag.ports.blobs import BlobStore
from imagetag.ports.repository import ImageReader, UnitOfWorkFactory
from tests.contract.adapters import (
    BLOB_STORES,
    DETECTORS,
    IDENTITIES,
    INSPECTORS,
    STORAGES,
    DetectorCase,
    IdentityCase,
    InspectorCase,
    Storage,
    params,
)
from tests.support.databases import MigratedTemplates, postgres_server


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A real PostgreSQL server, the same one tests/integration uses in the same run."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory) -> MigratedTemplates:
    return MigratedTemplates(tmp_path_factory.mktemp("database-templates"))


@pytest.fixture(params=params(STORAGES))
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A new, empty store of each kind."""
    build, _marks = STORAGES[request.param]
    async with build(request, tmp_path) as built:
        yield built


@pytest.fixture
def unit_of_work(storage: Storage) -> UnitOfWorkFactory:
    return storage.unit_of_work


@pytest.fixture
def image_reader(storage: Storage) -> ImageReader:
    return storage.reader


@pytest.fixture(params=params(BLOB_STORES))
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """An empty blob store of each kind."""
    build, _marks = BLOB_STORES[request.param]
    return build(tmp_path)


@pytest.fixture(params=params(INSPECTORS))
def inspector_case(request: pytest.FixtureRequest) -> InspectorCase:
    build, _marks = INSPECTORS[request.param]
    return build()


@pytest.fixture(scope="module", params=params(DETECTORS))
def detector_case(request: pytest.FixtureRequest) -> Iterator[DetectorCase]:
    """Each detector, its model loaded once per module."""
    build, _marks = DETECTORS[request.param]
    with build(request) as case:
        yield case


@pytest.fixture(params=params(IDENTITIES))
async def identity_case(request: pytest.FixtureRequest) -> AsyncIterator[IdentityCase]:
    """Each authenticator, with a credential it accepts and some it refuses."""
    build, _marks = IDENTITIES[request.param]
    async with build() as case:
        yield case

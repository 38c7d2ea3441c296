"""A transaction per unit of work; rolled back unless committed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from imagetag.adapters.sqla.repository_audit import SqlAuditLog
from imagetag.adapters.sqla.repository_idempotency import SqlIdempotencyKeys
from imagetag.adapters.sqla.repository_images import SqlImageRepository
from imagetag.adapters.sqla.repository_keys import SqlApiKeyRepository
from imagetag.adapters.sqla.repository_tags import SqlTagRepository
from imagetag.adapters.sqla.sqlite_writes import (
    add_image_and_commit,
    append_audit_events_and_commit,
    one_hop_connection,
)
from imagetag.domain.audit import AuditEvent
from imagetag.domain.images import NewImage
from imagetag.ports.repository import AddedImage


class SqlUnitOfWork:
    images: SqlImageRepository
    tags: SqlTagRepository
    audit: SqlAuditLog
    idempotency: SqlIdempotencyKeys
    api_keys: SqlApiKeyRepository

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self._session = self._session_factory()
        self.images = SqlImageRepository(self._session)
        self.tags = SqlTagRepository(self._session)
        self.audit = SqlAuditLog(self._session)
        self.idempotency = SqlIdempotencyKeys(self._session)
        self.api_keys = SqlApiKeyRepository(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        # Closing returns the connection to the pool, which rolls back whatever was not
        # committed; an explicit rollback first would only cost another round trip.
        await self._session.close()
        self._session = None

    async def commit(self) -> None:
        assert self._session is not None
        sqlite_connection = (
            await one_hop_connection(self._session) if self.audit.has_pending else None
        )
        if sqlite_connection is not None:
            # The audit events and the COMMIT in one hop; SQLAlchemy's commit then finds no
            # transaction open on the connection and only closes its own.
            events = self.audit.take_pending()
            await sqlite_connection.call(append_audit_events_and_commit, events)
        else:
            await self.audit.flush()
        await self._session.commit()

    async def add_image_and_commit(
        self, image: NewImage, audit: Callable[[AddedImage], Sequence[AuditEvent]]
    ) -> AddedImage:
        assert self._session is not None
        sqlite_connection = await one_hop_connection(self._session)
        if sqlite_connection is None:
            added = await self.images.add(image)
            for event in audit(added):
                await self.audit.append(event)
            await self.commit()
            return added
        # The image, its run and tags, the audit events and the COMMIT in one hop;
        # SQLAlchemy's commit then finds no transaction open and only closes its own.
        pending = self.audit.take_pending()
        added = await sqlite_connection.call(add_image_and_commit, image, audit, pending)
        await self._session.commit()
        return added

    async def rollback(self) -> None:
        assert self._session is not None
        self.audit.discard()
        await self._session.rollback()


class SqlUnitOfWorkFactory:
    """Makes a fresh unit of work (and session) per use; never shared between tasks."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._session_factory)

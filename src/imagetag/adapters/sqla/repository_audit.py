"""The audit log over one AsyncSession: appends and reads, nothing else.

On PostgreSQL and SQLite a trigger (migration 0002) also refuses UPDATE and DELETE.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from imagetag.adapters.sqla.mapping import Values, audit_event_from_values, audit_values
from imagetag.adapters.sqla.queries import audit_events, audit_statement
from imagetag.domain.audit import AuditEvent, AuditQuery

# Built once; the values come with each execution (see repository_images).
_APPEND = insert(audit_events)


class SqlAuditLog:
    """Events appended in a unit of work are written together, in order, when it commits
    (or before a read): one statement for an ingest's two events instead of two, which
    on SQLite the commit sends with the COMMIT (``sqlite_writes``)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._pending: list[Values] = []

    async def append(self, event: AuditEvent) -> None:
        self._pending.append(audit_values(event))

    async def flush(self) -> None:
        """Write the events appended since the last flush; the unit of work's commit
        calls this."""
        if self._pending:
            await self._session.execute(_APPEND, self.take_pending())

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def take_pending(self) -> list[Values]:
        """The rows of the events not written yet, for the caller to write."""
        pending, self._pending = self._pending, []
        return pending

    def discard(self) -> None:
        """Drop the events not written yet; the unit of work's rollback calls this."""
        self._pending = []

    async def list(self, query: AuditQuery, *, limit: int) -> Sequence[AuditEvent]:
        await self.flush()
        result = await self._session.execute(audit_statement(query, limit))
        return [audit_event_from_values(row) for row in result.mappings()]

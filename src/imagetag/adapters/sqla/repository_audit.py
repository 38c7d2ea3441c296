"""The audit log over one AsyncSession: appends and reads, nothing else.

On PostgreSQL and SQLite a trigger (migration 0002) also refuses UPDATE and DELETE.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from imagetag.adapters.sqla.mapping import audit_event_from_values, audit_values
from imagetag.adapters.sqla.queries import audit_statement
from imagetag.adapters.sqla.tables import AuditEventRow
from imagetag.domain.audit import AuditEvent, AuditQuery


class SqlAuditLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, event: AuditEvent) -> None:
        await self._session.execute(insert(AuditEventRow).values(audit_values(event)))

    async def list(self, query: AuditQuery, *, limit: int) -> Sequence[AuditEvent]:
        result = await self._session.execute(audit_statement(query, limit))
        return [audit_event_from_values(row) for row in result.mappings()]

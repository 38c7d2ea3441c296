"""Reading the audit log (admins only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imagetag.domain.audit import AuditEvent, AuditQuery
from imagetag.domain.principals import Principal, Role
from imagetag.ports.repository import UnitOfWorkFactory
from imagetag.services.authorization import require


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: Sequence[AuditEvent]
    next_before_id: int | None


class AuditService:
    def __init__(self, *, unit_of_work: UnitOfWorkFactory) -> None:
        self._unit_of_work = unit_of_work

    async def list(self, query: AuditQuery, principal: Principal) -> AuditPage:
        """A page of events, newest first; ``next_before_id`` continues it."""
        require(principal, Role.ADMIN)
        async with self._unit_of_work() as uow:
            found = await uow.audit.list(query, limit=query.limit + 1)
        page = found[: query.limit]
        has_more = len(found) > query.limit
        last_id = page[-1].id if has_more else None
        return AuditPage(page, last_id)

"""The audit log, for admins."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter

from imagetag.domain.audit import parse_audit_query
from imagetag.domain.principals import Principal
from imagetag.domain.search import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    encode_cursor,
)
from imagetag.entrypoints.http.dependencies import Audit
from imagetag.entrypoints.http.guards import ADMIN_ONLY
from imagetag.entrypoints.http.problems import problem_responses
from imagetag.entrypoints.http.query_params import refuse_repeated_parameters
from imagetag.entrypoints.http.schemas import AuditPageBody, audit_event_body


@get(
    "/audit",
    guards=ADMIN_ONLY,
    summary="Who changed what and when, newest first (admin)",
    responses=problem_responses(400, 403),
)
async def list_audit_events(
    request: Request[Principal, Any, Any],
    audit_log: Audit,
    user: Annotated[str | None, Parameter(description="Events by this user")] = None,
    image_id: Annotated[int | None, Parameter(description="Events about this image")] = None,
    type: Annotated[
        str | None, Parameter(description="Event types, comma-separated, e.g. tag.added")
    ] = None,
    after: Annotated[str | None, Parameter(description="At or after this time")] = None,
    before: Annotated[str | None, Parameter(description="Before this time")] = None,
    limit: Annotated[
        int,
        Parameter(
            description="Page size, 1..1000",
            schema_extra={"minimum": 1, "maximum": MAX_PAGE_SIZE},
        ),
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Parameter(description="next_cursor of the last page")] = None,
) -> AuditPageBody:
    refuse_repeated_parameters(request)
    query = parse_audit_query(
        user=user,
        image_id=image_id,
        type=type,
        after=after,
        before=before,
        limit=limit,
        cursor=cursor,
    )
    page = await audit_log.list(query, request.user)
    return AuditPageBody(
        events=[audit_event_body(event) for event in page.events],
        next_cursor=encode_cursor(page.next_before_id) if page.next_before_id else None,
    )

"""API keys over HTTP, for admins; the secret of a new key is in its response only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody

from imagetag.domain.principals import ApiKeyRecord, Principal, parse_role
from imagetag.entrypoints.http.body_deadline import limit_body_time
from imagetag.entrypoints.http.dependencies import Keys
from imagetag.entrypoints.http.guards import ADMIN_ONLY
from imagetag.entrypoints.http.problems import problem_responses


class NewKeyJson(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(description="1-64 letters, digits, _ . @ -")]
    user: Annotated[str, msgspec.Meta(description="The key's user; default: the name")] | None = (
        None
    )
    client: Annotated[str, msgspec.Meta(description="Its client; default: the name")] | None = None
    role: Annotated[str, msgspec.Meta(description="reader (default), tagger or admin")] = "reader"


class KeyBody(msgspec.Struct):
    name: str
    user: str
    client: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedKeyBody(msgspec.Struct):
    key: KeyBody
    secret: Annotated[str, msgspec.Meta(description="Shown this once; store it now")]


def _key_body(record: ApiKeyRecord) -> KeyBody:
    return KeyBody(
        name=record.name,
        user=record.user,
        client=record.client,
        role=record.role.value,
        prefix=record.prefix,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


@get(
    "/keys",
    guards=ADMIN_ONLY,
    summary="Every API key, never its secret (admin)",
    responses=problem_responses(403),
)
async def list_keys(request: Request[Principal, Any, Any], api_keys: Keys) -> list[KeyBody]:
    return [_key_body(record) for record in await api_keys.list(request.user)]


@post(
    "/keys",
    middleware=[limit_body_time],
    guards=ADMIN_ONLY,
    status_code=201,
    summary="Issue an API key (admin)",
    responses=problem_responses(400, 403, 409, 413),
)
async def create_key(
    data: JSONBody[NewKeyJson], request: Request[Principal, Any, Any], api_keys: Keys
) -> IssuedKeyBody:
    issued = await api_keys.create(
        data.name, request.user, user=data.user, client=data.client, role=parse_role(data.role)
    )
    return IssuedKeyBody(key=_key_body(issued.record), secret=issued.secret)


@delete(
    "/keys/{name:str}",
    guards=ADMIN_ONLY,
    status_code=204,
    summary="Revoke a key (admin)",
    responses=problem_responses(400, 403, 404),
)
async def revoke_key(
    name: FromPath[str], request: Request[Principal, Any, Any], api_keys: Keys
) -> None:
    await api_keys.revoke(name, request.user)

"""Role guards refuse early, on the event loop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from imagetag.domain.errors import PermissionDenied
from imagetag.domain.principals import Actor, Principal, Role
from imagetag.entrypoints.http.guards import ADMIN_ONLY, TAGGER_ONLY, requires


def connection_of(role: Role) -> Any:
    return SimpleNamespace(scope={"user": Principal(Actor("alice", "cli"), role)})


@pytest.mark.parametrize("guard", [*TAGGER_ONLY, *ADMIN_ONLY])
def test_guards_are_coroutines_so_litestar_does_not_send_them_to_a_thread(guard: Any) -> None:
    assert asyncio.iscoroutinefunction(guard)


async def test_a_guard_lets_the_role_and_those_above_it_through_and_refuses_the_rest() -> None:
    guard = requires(Role.TAGGER)

    await guard(connection_of(Role.TAGGER), None)  # type: ignore[arg-type]
    await guard(connection_of(Role.ADMIN), None)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        await guard(connection_of(Role.READER), None)  # type: ignore[arg-type]

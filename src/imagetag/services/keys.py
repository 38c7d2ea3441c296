"""API keys: issuing, listing, revoking, and authenticating callers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from imagetag.domain.audit import AuditEvent, AuditEventType
from imagetag.domain.errors import AuthenticationFailed, KeyNameTaken, KeyNotFound
from imagetag.domain.principals import Actor, ApiKeyRecord, Principal, Role, check_key_name
from imagetag.ports.clock import Clock
from imagetag.ports.identity import KeyHasher
from imagetag.ports.repository import UnitOfWorkFactory
from imagetag.services.authorization import require

BOOTSTRAP_KEY_NAME = "admin"
# Bounds the memory of remembered authentications; beyond it the cache starts over.
MAX_REMEMBERED_KEYS = 10_000
KEY_PREFIX_LENGTH = 8
# The actor of what the server does on its own, such as issuing the first key.
SYSTEM = Principal(Actor("system", "imagetag"), Role.ADMIN)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key; ``secret`` exists only here and is never stored."""

    record: ApiKeyRecord
    secret: str


class KeyService:
    """Issues and checks API keys.

    Successful authentications are remembered for ``cache_ttl`` so the hot path does not
    query the store on every request. A key revoked through this service stops working at
    once; one revoked by another process (``imagetag keys revoke``) within ``cache_ttl``.
    """

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        hasher: KeyHasher,
        clock: Clock,
        cache_ttl: timedelta = timedelta(0),
    ) -> None:
        self._unit_of_work = unit_of_work
        self._hasher = hasher
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._recent: dict[str, tuple[Principal, datetime, str]] = {}

    async def create(
        self,
        name: str,
        by: Principal,
        *,
        user: str | None = None,
        client: str | None = None,
        role: Role = Role.READER,
    ) -> IssuedKey:
        """Issue a key for ``user`` (default: the key name) using ``client`` (default: the
        key name) with ``role`` (default: ``reader``, the least)."""
        require(by, Role.ADMIN)
        check_key_name(name)
        secret = self._hasher.new_secret()
        record = ApiKeyRecord(
            name=name,
            key_hash=self._hasher.hash(secret),
            prefix=secret[:KEY_PREFIX_LENGTH],
            created_at=self._clock.now(),
            user=check_key_name(user, field="user") if user is not None else name,
            client=check_key_name(client, field="client") if client is not None else name,
            role=role,
        )
        async with self._unit_of_work() as uow:
            await uow.api_keys.add(record)
            await uow.audit.append(
                AuditEvent(
                    type=AuditEventType.KEY_CREATED,
                    actor=by.actor,
                    occurred_at=record.created_at,
                    target=f"key:{name}",
                    payload={"user": record.user, "client": record.client, "role": role.value},
                )
            )
            await uow.commit()
        return IssuedKey(record, secret)

    async def list(self, by: Principal) -> Sequence[ApiKeyRecord]:
        require(by, Role.ADMIN)
        async with self._unit_of_work() as uow:
            return await uow.api_keys.list()

    async def revoke(self, name: str, by: Principal) -> None:
        require(by, Role.ADMIN)
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            if not await uow.api_keys.revoke(name, now):
                raise KeyNotFound(name)
            await uow.audit.append(
                AuditEvent(
                    type=AuditEventType.KEY_REVOKED,
                    actor=by.actor,
                    occurred_at=now,
                    target=f"key:{name}",
                )
            )
            await uow.commit()
        self._recent = {
            key_hash: entry for key_hash, entry in self._recent.items() if entry[2] != name
        }

    async def ensure_bootstrap_key(self) -> IssuedKey | None:
        """Create the ``admin`` key (role admin) when no active key exists, so a new
        install is usable."""
        async with self._unit_of_work() as uow:
            if await uow.api_keys.count_active() > 0:
                return None
        try:
            return await self.create(
                BOOTSTRAP_KEY_NAME, SYSTEM, client="imagetag-serve", role=Role.ADMIN
            )
        except KeyNameTaken:
            # Another process bootstrapped at the same moment; its key stands.
            return None

    async def authenticate(self, secret: str) -> Principal:
        key_hash = self._hasher.hash(secret)
        now = self._clock.now()
        remembered = self._recent.get(key_hash)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        async with self._unit_of_work() as uow:
            record = await uow.api_keys.find_active_by_hash(key_hash)
        if record is None:
            self._recent.pop(key_hash, None)
            raise AuthenticationFailed("the API key is unknown or revoked")
        principal = record.principal
        if self._cache_ttl > timedelta(0):
            if len(self._recent) >= MAX_REMEMBERED_KEYS:
                self._recent.clear()
            self._recent[key_hash] = (principal, now + self._cache_ttl, record.name)
        return principal

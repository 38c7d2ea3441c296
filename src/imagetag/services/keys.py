"""API keys: issuing, listing, revoking, and authenticating callers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imagetag.domain.errors import AuthenticationFailed, KeyNameTaken, KeyNotFound
from imagetag.domain.principals import ApiKeyRecord, Principal, check_key_name
from imagetag.ports.clock import Clock
from imagetag.ports.identity import KeyHasher
from imagetag.ports.repository import UnitOfWorkFactory

BOOTSTRAP_KEY_NAME = "admin"
KEY_PREFIX_LENGTH = 8


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key; ``secret`` exists only here and is never stored."""

    record: ApiKeyRecord
    secret: str


class KeyService:
    def __init__(self, *, unit_of_work: UnitOfWorkFactory, hasher: KeyHasher, clock: Clock) -> None:
        self._unit_of_work = unit_of_work
        self._hasher = hasher
        self._clock = clock

    async def create(self, name: str) -> IssuedKey:
        check_key_name(name)
        secret = self._hasher.new_secret()
        record = ApiKeyRecord(
            name=name,
            key_hash=self._hasher.hash(secret),
            prefix=secret[:KEY_PREFIX_LENGTH],
            created_at=self._clock.now(),
        )
        async with self._unit_of_work() as uow:
            await uow.api_keys.add(record)
            await uow.commit()
        return IssuedKey(record, secret)

    async def list(self) -> Sequence[ApiKeyRecord]:
        async with self._unit_of_work() as uow:
            return await uow.api_keys.list()

    async def revoke(self, name: str) -> None:
        async with self._unit_of_work() as uow:
            if not await uow.api_keys.revoke(name, self._clock.now()):
                raise KeyNotFound(name)
            await uow.commit()

    async def ensure_bootstrap_key(self) -> IssuedKey | None:
        """Create the ``admin`` key when no active key exists, so a new install is usable."""
        async with self._unit_of_work() as uow:
            if await uow.api_keys.count_active() > 0:
                return None
        try:
            return await self.create(BOOTSTRAP_KEY_NAME)
        except KeyNameTaken:
            # Another process bootstrapped at the same moment; its key stands.
            return None

    async def authenticate(self, secret: str) -> Principal:
        async with self._unit_of_work() as uow:
            record = await uow.api_keys.find_active_by_hash(self._hasher.hash(secret))
        if record is None:
            raise AuthenticationFailed("the API key is unknown or revoked")
        return Principal(record.name)

"""Human tags on images: adding, removing, listing, counting."""

from __future__ import annotations

from collections.abc import Sequence

from imagetag.domain.audit import AuditEvent, AuditEventType
from imagetag.domain.errors import ImageNotFound
from imagetag.domain.objects import normalise_object_name
from imagetag.domain.principals import Principal, Role
from imagetag.domain.tags import Tag, TagCount, check_tag_names
from imagetag.ports.clock import Clock
from imagetag.ports.repository import UnitOfWorkFactory
from imagetag.services.authorization import require


class TagService:
    """Every change is written with its audit event in one transaction."""

    def __init__(self, *, unit_of_work: UnitOfWorkFactory, clock: Clock) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def tags_of(self, image_id: int) -> tuple[Tag, ...]:
        async with self._unit_of_work() as uow:
            image = await uow.images.get(image_id)
        if image is None:
            raise ImageNotFound(image_id)
        return image.tags

    async def add(
        self, image_id: int, names: Sequence[str], principal: Principal
    ) -> tuple[Tag, ...]:
        """Add human tags as the caller. A name the caller already put on the image is
        left as it is, so repeating a request changes nothing; another user's tag of the
        same name stays theirs, and both are kept. Returns the image's live tags."""
        require(principal, Role.TAGGER)
        wanted = check_tag_names(names)
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            if await uow.images.get(image_id) is None:
                raise ImageNotFound(image_id)
            added = await uow.tags.add_human(image_id, wanted, principal.actor, now)
            for name in added:
                await uow.audit.append(
                    AuditEvent(
                        type=AuditEventType.TAG_ADDED,
                        actor=principal.actor,
                        occurred_at=now,
                        target=f"tag:{name}",
                        image_id=image_id,
                        payload={"name": name, "source": "human"},
                    )
                )
            await uow.commit()
            image = await uow.images.get(image_id)
        assert image is not None
        return image.tags

    async def remove(self, image_id: int, name: str, principal: Principal) -> int:
        """Take a tag off an image, whoever or whatever put it there.

        Returns how many live tags of that name were removed; 0 means it was not there,
        which is not an error, so retrying a removal is safe.
        """
        require(principal, Role.TAGGER)
        # Normalised but not checked like typed tags: a detector's names may hold
        # characters a person could not add ("tabby, tabby cat"), and must stay removable.
        tag_name = normalise_object_name(name) or None
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            if await uow.images.get(image_id) is None:
                raise ImageNotFound(image_id)
            if tag_name is None:
                return 0
            removed = await uow.tags.remove(image_id, tag_name, principal.actor, now)
            if removed:
                await uow.audit.append(
                    AuditEvent(
                        type=AuditEventType.TAG_REMOVED,
                        actor=principal.actor,
                        occurred_at=now,
                        target=f"tag:{tag_name}",
                        image_id=image_id,
                        payload={"name": tag_name, "removed": removed},
                    )
                )
                await uow.commit()
        return removed

    async def counts(self) -> Sequence[TagCount]:
        async with self._unit_of_work() as uow:
            return await uow.tags.counts()

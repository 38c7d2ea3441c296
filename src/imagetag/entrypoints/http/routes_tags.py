"""Tags on images, and the tag vocabulary with its counts."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody

from imagetag.domain.principals import Principal
from imagetag.entrypoints.http.body_deadline import limit_body_time
from imagetag.entrypoints.http.dependencies import Tags
from imagetag.entrypoints.http.guards import TAGGER_ONLY
from imagetag.entrypoints.http.problems import problem_responses
from imagetag.entrypoints.http.routes_images import stored_id
from imagetag.entrypoints.http.schemas import (
    ImageTagsBody,
    TagCountBody,
    TagCountsBody,
    TagRemovalBody,
    TagsJson,
    tag_body,
)


@get(
    "/images/{image_id:int}/tags",
    summary="An image's live tags with their provenance",
    responses=problem_responses(400, 404),
)
async def list_image_tags(image_id: FromPath[int], tagging: Tags) -> ImageTagsBody:
    found = await tagging.tags_of(stored_id(image_id))
    return ImageTagsBody(image_id=image_id, tags=[tag_body(tag) for tag in found])


@post(
    "/images/{image_id:int}/tags",
    middleware=[limit_body_time],
    guards=TAGGER_ONLY,
    status_code=200,
    summary="Add human tags (tagger); adding a tag the image has is a no-op",
    responses=problem_responses(400, 403, 404, 413),
)
async def add_image_tags(
    image_id: FromPath[int],
    data: JSONBody[TagsJson],
    request: Request[Principal, Any, Any],
    tagging: Tags,
) -> ImageTagsBody:
    live = await tagging.add(stored_id(image_id), data.names, request.user)
    return ImageTagsBody(image_id=image_id, tags=[tag_body(tag) for tag in live])


@delete(
    "/images/{image_id:int}/tags/{name:str}",
    guards=TAGGER_ONLY,
    status_code=200,
    summary="Take a tag off an image (tagger), whoever or whatever added it",
    responses=problem_responses(400, 403, 404),
)
async def remove_image_tag(
    image_id: FromPath[int],
    name: FromPath[str],
    request: Request[Principal, Any, Any],
    tagging: Tags,
) -> TagRemovalBody:
    removed = await tagging.remove(stored_id(image_id), name, request.user)
    return TagRemovalBody(image_id=image_id, name=name, removed=removed)


@get(
    "/tags",
    summary="Every live tag name with how many images carry it, by provenance",
    responses=problem_responses(),
)
async def list_tags(tagging: Tags) -> TagCountsBody:
    counts = await tagging.counts()
    return TagCountsBody(
        tags=[
            TagCountBody(name=count.name, images=count.images, human=count.human, model=count.model)
            for count in counts
        ]
    )

"""The /images endpoints: thin handlers that turn requests into service calls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import IO, Annotated, Any, TypeVar

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromPath, HeaderParameter, JSONBody, Parameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse

from imagetag.domain.detections import Thresholds
from imagetag.domain.errors import ImageNotFound, InvalidInput
from imagetag.domain.principals import Principal
from imagetag.domain.search import (
    DEFAULT_PAGE_SIZE,
    MAX_IMAGE_ID,
    MAX_PAGE_SIZE,
    encode_cursor,
    parse_search,
)
from imagetag.entrypoints.http.body_deadline import limit_body_time
from imagetag.entrypoints.http.dependencies import Images
from imagetag.entrypoints.http.guards import TAGGER_ONLY
from imagetag.entrypoints.http.problems import problem_responses
from imagetag.entrypoints.http.query_params import refuse_repeated_parameters
from imagetag.entrypoints.http.schemas import (
    DetectAgainJson,
    ImageBody,
    ImageListBody,
    ImagePatchJson,
    IngestImageJson,
    image_body,
)
from imagetag.entrypoints.http.upload_bodies import (
    SPOOL_BYTES,
    decode_base64_field,
    json_value_given,
    read_body,
)
from imagetag.services.images import IngestRequest, RemoteUrl, UploadedBytes, UploadedFile

BodyT = TypeVar("BodyT")

_FIELDS = {
    "url": Schema(
        type=OpenAPIType.STRING, format=OpenAPIFormat.URI, description="An http(s) URL to fetch"
    ),
    "label": Schema(type=OpenAPIType.STRING, max_length=200, description="Generated when missing"),
    "detect": Schema(type=OpenAPIType.BOOLEAN, default=False, description="Run object detection"),
}


# Dataclasses again so that their __init__ calls __post_init__ (Operation's does not).
@dataclass
class IngestOperation(Operation):
    """Documents the two accepted bodies: JSON with base64 or URL, and multipart for curl."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="Exactly one of image (base64) / file (multipart) or url.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={
                            "image": Schema(
                                type=OpenAPIType.STRING,
                                content_encoding="base64",
                                description="The image bytes, base64-encoded",
                            ),
                            "filename": Schema(type=OpenAPIType.STRING),
                            **_FIELDS,
                        },
                        one_of=[
                            Schema(required=["image"]),
                            Schema(required=["url"]),
                        ],
                        additional_properties=False,
                    )
                ),
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={
                            "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
                            **_FIELDS,
                        },
                    )
                ),
            },
        )


@post(
    "/images",
    middleware=[limit_body_time],
    guards=TAGGER_ONLY,
    status_code=200,
    operation_class=IngestOperation,
    responses=problem_responses(400, 403, 408, 409, 413, 415, 422, 502),
    summary="Ingest an image from bytes or a URL, optionally detecting objects",
)
async def create_image(
    request: Request[Principal, Any, Any],
    images: Images,
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            description="Any unique string (e.g. a UUID): a retry with the same key and "
            "body returns the first request's image instead of storing a second",
        ),
    ] = None,
) -> ImageBody:
    ingest = await _read_ingest_request(request)
    try:
        image = await images.ingest(ingest, request.user, idempotency_key=idempotency_key)
    finally:
        if isinstance(ingest.content, UploadedFile):
            ingest.content.file.close()
    return image_body(image)


def stored_id(image_id: int) -> int:
    """``image_id``, or ImageNotFound when no stored image can have it (beyond 64 bits)."""
    # The database would fail to bind such an integer, which is no fault of the server's.
    if not 0 < image_id <= MAX_IMAGE_ID:
        raise ImageNotFound(image_id)
    return image_id


def _text(description: str, **documented: Any) -> Any:
    """A query parameter; ``documented`` constraints go in the schema, the domain checks them."""
    return Parameter(description=description, schema_extra=documented or None)


@get(
    "/images",
    summary="Search images, newest first",
    responses=problem_responses(400),
    description=(
        "Every parameter is optional and they combine. Tag conditions look at *qualifying* "
        "tags: live tags passing every provenance filter given (source, model, "
        "min_confidence — human tags always pass it —, tagged_by, tagged_after/before). "
        "Times are ISO 8601 dates (midnight UTC) or datetimes (UTC when no offset); "
        "ranges are half-open: after <= t < before."
    ),
)
async def list_images(
    request: Request[Any, Any, Any],
    images: Images,
    objects: Annotated[
        str | None, _text("Detected objects (model tags), comma-separated, e.g. dog,cat")
    ] = None,
    tags: Annotated[str | None, _text("Tags of either source, comma-separated")] = None,
    match: Annotated[
        str, _text("'any' (default): any of the names; 'all': every one", enum=["any", "all"])
    ] = "any",
    exclude: Annotated[str | None, _text("No qualifying tag with any of these names")] = None,
    untagged: Annotated[bool | None, _text("true: no qualifying tag; false: at least one")] = None,
    min_confidence: Annotated[
        float | None, _text("Model tags need at least this confidence (0..1)", minimum=0, maximum=1)
    ] = None,
    source: Annotated[str | None, _text("'human' or 'model'", enum=["human", "model"])] = None,
    model: Annotated[
        str | None, _text("Model tags of NAME or NAME@VERSION (weights sha256 prefix)")
    ] = None,
    tagged_by: Annotated[str | None, _text("Tags added by this user")] = None,
    tagged_after: Annotated[str | None, _text("Tags added at or after this time")] = None,
    tagged_before: Annotated[str | None, _text("Tags added before this time")] = None,
    created_after: Annotated[str | None, _text("Images created at or after this time")] = None,
    created_before: Annotated[str | None, _text("Images created before this time")] = None,
    limit: Annotated[
        int, _text("Page size, 1..1000", minimum=1, maximum=MAX_PAGE_SIZE)
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, _text("next_cursor from the previous page")] = None,
) -> ImageListBody:
    refuse_repeated_parameters(request)
    query = parse_search(
        objects=objects,
        tags=tags,
        match=match,
        exclude=exclude,
        untagged=untagged,
        min_confidence=min_confidence,
        source=source,
        model=model,
        tagged_by=tagged_by,
        tagged_after=tagged_after,
        tagged_before=tagged_before,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        cursor=cursor,
    )
    page = await images.search(query)
    return ImageListBody(
        images=[image_body(image) for image in page.images],
        next_cursor=encode_cursor(page.next_before_id) if page.next_before_id else None,
    )


@get(
    "/images/{image_id:int}",
    summary="One image's metadata and detections",
    responses=problem_responses(400, 404),
)
async def get_image(image_id: FromPath[int], images: Images) -> ImageBody:
    return image_body(await images.get(image_id))


@patch(
    "/images/{image_id:int}",
    middleware=[limit_body_time],
    guards=TAGGER_ONLY,
    summary="Change an image's label (tagger)",
    responses=problem_responses(400, 403, 404, 413),
)
async def update_image(
    image_id: FromPath[int],
    data: JSONBody[ImagePatchJson],
    request: Request[Principal, Any, Any],
    images: Images,
) -> ImageBody:
    return image_body(await images.relabel(stored_id(image_id), data.label, request.user))


@delete(
    "/images/{image_id:int}",
    guards=TAGGER_ONLY,
    summary="Delete an image (tagger); soft: the audit trail keeps it",
    responses=problem_responses(400, 403, 404),
    status_code=204,
)
async def delete_image(
    image_id: FromPath[int], request: Request[Principal, Any, Any], images: Images
) -> None:
    await images.delete(stored_id(image_id), request.user)


@dataclass
class DetectAgainOperation(Operation):
    """Documents the optional body: thresholds for this run only."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=False,
            description="Optional thresholds for this run; the configured ones otherwise.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={
                            "confidence": Schema(type=OpenAPIType.NUMBER, minimum=0, maximum=1),
                            "iou": Schema(type=OpenAPIType.NUMBER, exclusive_minimum=0, maximum=1),
                        },
                        additional_properties=False,
                    )
                )
            },
        )


@post(
    "/images/{image_id:int}/detections",
    middleware=[limit_body_time],
    operation_class=DetectAgainOperation,
    responses=problem_responses(400, 403, 404, 413, 422, 502),
    guards=TAGGER_ONLY,
    status_code=200,
    summary="Run detection again on a stored image (tagger); earlier model tags are kept",
)
async def detect_again(
    image_id: FromPath[int], request: Request[Principal, Any, Any], images: Images
) -> ImageBody:
    raw = await request.body()
    options = _decode_json(raw, DetectAgainJson) if raw.strip() else DetectAgainJson()
    thresholds = Thresholds(confidence=options.confidence, iou=options.iou)
    return image_body(await images.redetect(stored_id(image_id), request.user, thresholds))


@get(
    "/images/{image_id:int}/content",
    summary="The stored image bytes",
    media_type="image/*",
    responses=problem_responses(400, 404),
)
async def get_image_content(image_id: FromPath[int], images: Images) -> Stream:
    image, chunks = await images.content(stored_id(image_id))
    # Sent a megabyte at a time as the store reads it: a large image is never held whole.
    return _ImageStream(
        chunks,
        media_type=image.facts.media_type,
        headers={
            "Content-Length": str(image.size_bytes),
            "ETag": f'"{image.sha256}"',
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )


class _ImageStream(Stream):
    """A Stream whose own media type wins over the handler's documented ``image/*``, as
    it does for a plain Response (Litestar's Stream prefers the handler's)."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)


async def _read_ingest_request(request: Request[Any, Any, Any]) -> IngestRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().casefold()
    if content_type == "multipart/form-data":
        return await _read_multipart(request)
    if content_type not in ("application/json", ""):
        raise InvalidInput(
            f"unsupported Content-Type {content_type!r}; send application/json or "
            "multipart/form-data"
        )
    body = _decode_json(await read_body(request), IngestImageJson)
    if json_value_given(body.image) == (body.url is not None):
        raise InvalidInput("send exactly one of 'image' (base64 bytes) or 'url'")
    if body.url is not None:
        return IngestRequest(RemoteUrl(body.url), label=body.label, detect=body.detect)
    if len(body.image) > SPOOL_BYTES:
        file = await asyncio.to_thread(decode_base64_field, body.image, "image")
        content: UploadedBytes | UploadedFile = UploadedFile(file, filename=body.filename)
    else:
        content = _in_memory(decode_base64_field(body.image, "image"), body.filename)
    return IngestRequest(content, label=body.label, detect=body.detect)


def _in_memory(file: IO[bytes], filename: str | None) -> UploadedBytes:
    """The bytes of a spooled file that stayed in memory, which it closes: the service
    accepts small uploads in memory without a hop to a worker thread."""
    with file:
        file.seek(0)
        return UploadedBytes(file.read(), filename=filename)


async def _read_multipart(request: Request[Any, Any, Any]) -> IngestRequest:
    form = await request.form()
    upload = form.get("file")
    url = form.get("url")
    if (upload is None) == (url is None or url == ""):
        raise InvalidInput("send exactly one of a 'file' part or a 'url' field")
    label = form.get("label")
    detect = _form_bool(form.get("detect"))
    label_text = label if isinstance(label, str) else None
    if isinstance(upload, UploadFile):
        # Litestar spooled the part to a temporary file, which rolls to disk past 1 MiB.
        content = (
            UploadedFile(upload.file, filename=upload.filename)
            if upload.rolled_to_disk
            else _in_memory(upload.file, upload.filename)
        )
        return IngestRequest(content, label=label_text, detect=detect)
    if upload is not None:
        raise InvalidInput("'file' must be a file part", field="file")
    assert isinstance(url, str)
    return IngestRequest(RemoteUrl(url), label=label_text, detect=detect)


def _decode_json(raw: bytes | memoryview, body_type: type[BodyT]) -> BodyT:
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as error:
        raise InvalidInput(f"invalid request body: {error}") from None
    except msgspec.DecodeError:
        raise InvalidInput("the request body is not valid JSON") from None


def _form_bool(value: object) -> bool:
    if value is None:
        return False
    text = str(value).strip().casefold()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise InvalidInput("'detect' must be true or false", field="detect")

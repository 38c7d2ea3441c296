"""The /images endpoints: thin handlers that turn requests into service calls."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromPath, Parameter

from imagetag.domain.errors import InvalidInput
from imagetag.domain.principals import Principal
from imagetag.domain.search import (
    DEFAULT_PAGE_SIZE,
    ImageQuery,
    ObjectFilter,
    decode_cursor,
    encode_cursor,
    parse_match,
)
from imagetag.entrypoints.http.dependencies import Images
from imagetag.entrypoints.http.schemas import (
    ImageBody,
    ImageListBody,
    IngestImageJson,
    image_body,
)
from imagetag.services.images import IngestRequest, RemoteUrl, UploadedBytes

_FIELDS = {
    "url": Schema(
        type=OpenAPIType.STRING, format=OpenAPIFormat.URI, description="An http(s) URL to fetch"
    ),
    "label": Schema(type=OpenAPIType.STRING, max_length=200, description="Generated when missing"),
    "detect": Schema(type=OpenAPIType.BOOLEAN, default=False, description="Run object detection"),
}


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
    status_code=200,
    operation_class=IngestOperation,
    summary="Ingest an image from bytes or a URL, optionally detecting objects",
)
async def create_image(request: Request[Principal, Any, Any], images: Images) -> ImageBody:
    ingest = await _read_ingest_request(request)
    image = await images.ingest(ingest, request.user)
    return image_body(image)


@get("/images", summary="List images, newest first, optionally only those with given objects")
async def list_images(
    images: Images,
    objects: Annotated[
        str | None,
        Parameter(description="Comma-separated object names, e.g. dog,cat"),
    ] = None,
    match: Annotated[
        str, Parameter(description="'any' (default): any of the objects; 'all': every one")
    ] = "any",
    limit: Annotated[int, Parameter(description="Page size, 1..1000")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Parameter(description="next_cursor from the previous page")
    ] = None,
) -> ImageListBody:
    mode = parse_match(match)
    query = ImageQuery(
        objects=ObjectFilter.parse(objects, mode) if objects is not None else None,
        limit=limit,
        before_id=decode_cursor(cursor) if cursor is not None else None,
    )
    page = await images.search(query)
    return ImageListBody(
        images=[image_body(image) for image in page.images],
        next_cursor=encode_cursor(page.next_before_id) if page.next_before_id else None,
    )


@get("/images/{image_id:int}", summary="One image's metadata and detections")
async def get_image(image_id: FromPath[int], images: Images) -> ImageBody:
    return image_body(await images.get(image_id))


@get("/images/{image_id:int}/content", summary="The stored image bytes", media_type="image/*")
async def get_image_content(image_id: FromPath[int], images: Images) -> Response[bytes]:
    image, data = await images.content(image_id)
    return Response(
        data,
        media_type=image.facts.media_type,
        headers={
            "ETag": f'"{image.sha256}"',
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )


async def _read_ingest_request(request: Request[Any, Any, Any]) -> IngestRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().casefold()
    if content_type == "multipart/form-data":
        return await _read_multipart(request)
    if content_type not in ("application/json", ""):
        raise InvalidInput(
            f"unsupported Content-Type {content_type!r}; send application/json or "
            "multipart/form-data"
        )
    raw = await request.body()
    try:
        body = msgspec.json.decode(raw, type=IngestImageJson)
    except msgspec.ValidationError as error:
        raise InvalidInput(f"invalid request body: {error}") from None
    except msgspec.DecodeError:
        raise InvalidInput("the request body is not valid JSON") from None
    if (body.image is None) == (body.url is None):
        raise InvalidInput("send exactly one of 'image' (base64 bytes) or 'url'")
    if body.url is not None:
        return IngestRequest(RemoteUrl(body.url), label=body.label, detect=body.detect)
    assert body.image is not None
    try:
        data = base64.b64decode(body.image, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("'image' is not valid base64", field="image") from None
    return IngestRequest(
        UploadedBytes(data, filename=body.filename), label=body.label, detect=body.detect
    )


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
        data = await upload.read()
        return IngestRequest(
            UploadedBytes(data, filename=upload.filename), label=label_text, detect=detect
        )
    if upload is not None:
        raise InvalidInput("'file' must be a file part", field="file")
    assert isinstance(url, str)
    return IngestRequest(RemoteUrl(url), label=label_text, detect=detect)


def _form_bool(value: object) -> bool:
    if value is None:
        return False
    text = str(value).strip().casefold()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise InvalidInput("'detect' must be true or false", field="detect")

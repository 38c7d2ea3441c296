"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi import ResponseSpec

from imagetag.domain.errors import (
    AuthenticationFailed,
    DetectionFailed,
    DetectionRejected,
    DetectorUnavailable,
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    ImageNotFound,
    ImagetagError,
    ImageTooLarge,
    InvalidInput,
    KeyNameTaken,
    KeyNotFound,
    PermissionDenied,
    UnsupportedImage,
    UrlFetchFailed,
    UrlRefused,
)
from imagetag.entrypoints.http.schemas import ProblemBody

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# The handler argument Litestar decodes a request body into; its errors name it as the key.
_BODY_KWARG = "data"
PROBLEM_TYPE_BASE = "https://imagetag.dev/problems/"
# When an unavailable detector does not say how long it will be out.
DEFAULT_RETRY_AFTER_SECONDS = 30

# Order matters: subclasses before their bases.
_DOMAIN_STATUS: tuple[tuple[type[ImagetagError], int, str], ...] = (
    (InvalidInput, 400, "invalid-input"),
    (AuthenticationFailed, 401, "unauthenticated"),
    (PermissionDenied, 403, "forbidden"),
    (ImageNotFound, 404, "not-found"),
    (KeyNotFound, 404, "not-found"),
    (KeyNameTaken, 409, "conflict"),
    (IdempotencyKeyTaken, 409, "conflict"),
    (IdempotencyKeyReused, 422, "idempotency-key-reused"),
    (ImageTooLarge, 413, "too-large"),
    (UnsupportedImage, 415, "unsupported-image"),
    (UrlRefused, 422, "url-refused"),
    (UrlFetchFailed, 422, "url-fetch-failed"),
    (DetectionRejected, 422, "detection-rejected"),
    (DetectorUnavailable, 503, "detector-unavailable"),
    (DetectionFailed, 502, "detection-failed"),
)


_WHEN: dict[int, str] = {
    400: "A malformed body or an invalid parameter, named in `detail` and `field`",
    401: "No 'Authorization: Bearer <api key>', or an unknown or revoked key",
    403: "The key's role does not allow this",
    404: "No such resource",
    408: "The body did not arrive within IMAGETAG_BODY_TIMEOUT_SECONDS",
    409: "A conflict with what exists (a key name taken, an Idempotency-Key in use)",
    413: "The body or the image is too large",
    415: "Bytes that are not an image in a supported format",
    422: "A URL refused or not fetched, a reused Idempotency-Key, or the detector refused "
    "the image (it is stored)",
    429: "Too many requests from this user; retry after Retry-After seconds",
    502: "The detector failed on this image; it is stored (`image_id`)",
    503: "Storage or the detector is unavailable; retry after Retry-After seconds",
}
# Every authenticated endpoint may answer these: no key, over the rate, storage down.
_ALWAYS = (401, 429, 503)


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI ``responses`` of an authenticated handler that may also answer ``statuses``.

    Each is an ``application/problem+json`` body; these replace Litestar's generated 400.
    """
    return {
        status: ResponseSpec(
            data_container=ProblemBody,
            description=_WHEN[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted({*statuses, *_ALWAYS})
    }


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + kind if kind else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update({key: value for key, value in extensions.items() if value is not None})
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error_handler(request: Request[Any, Any, Any], error: ImagetagError) -> Response[Any]:
    for error_type, status, kind in _DOMAIN_STATUS:
        if isinstance(error, error_type):
            extensions: dict[str, Any] = {}
            headers = None
            if isinstance(error, InvalidInput):
                extensions["field"] = error.field
            if isinstance(error, DetectionFailed):
                extensions["image_id"] = error.image_id
                logger.warning("detection failed on %s: %s", request.url.path, error)
            if isinstance(error, DetectorUnavailable):
                retry_after = error.retry_after
                if retry_after is None:
                    retry_after = DEFAULT_RETRY_AFTER_SECONDS
                headers = {"Retry-After": str(retry_after)}
            if isinstance(error, AuthenticationFailed):
                headers = {"WWW-Authenticate": 'Bearer realm="imagetag"'}
            return problem(status, str(error), kind=kind, headers=headers, **extensions)
    return internal_error_handler(request, error)


def http_exception_handler(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    if error.status_code >= 500:
        logger.error("%s on %s %s", error.detail, request.method, request.url.path, exc_info=error)
    detail = error.detail
    extensions: dict[str, Any] = {}
    if isinstance(error, ValidationException) and error.extra:
        extensions["errors"] = error.extra
        detail = _validation_detail(error)
    elif isinstance(error.__cause__, SerializationException):
        # Litestar's own message ("Input data was truncated") does not say which input.
        detail = f"the request body is not valid JSON: {error.detail}"
    headers = dict(error.headers or {})
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="imagetag"')
    return problem(error.status_code, detail, headers=headers or None, **extensions)


def storage_error_handler(request: Request[Any, Any, Any], error: OSError) -> Response[Any]:
    """The disk or object store failed: ours to fix, and often passing (503, retry later)."""
    logger.error(
        "storage failed on %s %s: %s", request.method, request.url.path, error, exc_info=error
    )
    return problem(
        503,
        "storage (the database or the image store) is unavailable; try again later",
        kind="storage-unavailable",
        headers={"Retry-After": "30"},
    )


def internal_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    logger.error(
        "unhandled %s on %s %s",
        type(error).__name__,
        request.method,
        request.url.path,
        exc_info=error,
    )
    return problem(500, "an internal error occurred; it has been logged", kind="internal")


def _validation_detail(error: ValidationException) -> str:
    extra = error.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        first = extra[0]
        key = first.get("key")
        message = first.get("message", "invalid value")
        if key == _BODY_KWARG and first.get("source") == "body":
            if message == repr(_BODY_KWARG):
                # Litestar reports a missing body as the KeyError of its own argument name.
                return "the request body is missing: send a JSON object"
            return f"the request body: {message}"
        return f"{key}: {message}" if key else str(message)
    return error.detail

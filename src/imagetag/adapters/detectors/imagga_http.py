"""Imagga's tagging API (v2) as a detector: tags for the whole image, with confidences, no boxes.

One image takes three calls: ``POST /v2/uploads`` with the bytes (multipart field
``image``), ``GET /v2/tags`` on the upload id, and ``DELETE /v2/uploads/<id>``, best effort
and also after a failure, so that our images do not stay on Imagga's side.

Failures, by whose fault they are:

- 400, 413, 415, 422: Imagga refused this image: ``DetectionRejected``, the caller's to fix.
- 401, 403 (credentials), any other 4xx and answers we cannot read: ``DetectionFailed``,
  ours to fix; logged with Imagga's status and text, never with the key or secret.
- 429, 5xx, timeouts and dropped connections: retried with exponential backoff, then
  ``DetectorUnavailable`` carrying Imagga's ``Retry-After`` (or a default).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError

from imagetag.domain.detections import Detection, DetectorInfo, Thresholds
from imagetag.domain.errors import (
    DetectionFailed,
    DetectionRejected,
    DetectorUnavailable,
    InvalidInput,
)
from imagetag.domain.objects import MAX_OBJECT_NAME_LENGTH, normalise_object_name
from imagetag.ports.detector import DecodedImage

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://api.imagga.com"
USER_AGENT = "imagetag/0.1 (+imagga detector)"
# Statuses by which Imagga says the image itself is the problem (invalid, unsupported, big).
_REJECTING = frozenset({400, 413, 415, 422})
_CREDENTIALS = frozenset({401, 403})
_MAX_TEXT = 300


@dataclass(frozen=True, slots=True)
class ImaggaConfig:
    """Where Imagga is, who we are to it and what we ask it for.

    ``threshold`` is Imagga's own (0..100); ``retries`` are the attempts after the first
    one; the waits between them double from ``backoff_seconds`` up to
    ``max_backoff_seconds``. A ``Retry-After`` longer than that cap ends the retries at once.
    """

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    url: str = DEFAULT_URL
    threshold: float = 30.0
    limit: int = 20
    timeout_seconds: float = 10.0
    retries: int = 2
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 10.0
    default_retry_after: int = 30
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        if not self.api_key or not self.api_secret:
            raise ValueError("Imagga needs an API key and an API secret")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the Imagga URL must be http(s)://host[:port], got {self.url!r}")
        object.__setattr__(self, "url", self.url.rstrip("/"))
        if not (math.isfinite(self.threshold) and 0.0 <= self.threshold <= 100.0):
            raise ValueError(f"the Imagga threshold must be within 0..100, got {self.threshold}")
        if self.limit < 1:
            raise ValueError(f"the Imagga tag limit must be positive, got {self.limit}")
        if not self.timeout_seconds > 0:
            raise ValueError("the Imagga timeout must be positive")
        if self.retries < 0 or self.backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ValueError("Imagga retries and backoff cannot be negative")
        if self.default_retry_after < 0 or self.max_concurrency < 1:
            raise ValueError("default_retry_after >= 0 and max_concurrency >= 1 are needed")


class _Transient(Exception):
    """A failure that may pass: worth another attempt."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ImaggaHttpDetector:
    """Imagga's English tags for an image, as detections without boxes.

    Calls go through one ``requests.Session`` (its connection pool is shared and
    thread-safe; no cookies are involved) on a thread pool of ``max_concurrency``
    workers, which also bounds how many calls are open at Imagga at once (plans limit
    concurrency). Waits between retries are spent on the event loop, not on a thread.
    """

    def __init__(self, config: ImaggaConfig) -> None:
        self._config = config
        self._session = requests.Session()
        self._session.auth = (config.api_key, config.api_secret)
        self._session.headers["User-Agent"] = USER_AGENT
        # Retries are ours (they know 429 and Retry-After); urllib3 makes one attempt.
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=config.max_concurrency, max_retries=0
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._executor = ThreadPoolExecutor(
            max_workers=config.max_concurrency, thread_name_prefix="imagetag-imagga"
        )
        self._closed = False
        self._info = DetectorInfo(
            detector="imagga",
            model="imagga-tags",
            library_version="imagga v2",
            confidence_threshold=config.threshold / 100.0,
            parameters=(("limit", str(config.limit)), ("url", config.url)),
        )

    @property
    def info(self) -> DetectorInfo:
        return self._info

    async def decode(self, image: bytes, *, start_detecting: bool = False) -> DecodedImage:
        """The bytes as they are, unchecked: Imagga decodes them on its side, and ``detect``
        sends them."""
        return DecodedImage(image, None, checked=False, decoded_by=self)

    async def detect(
        self, image: bytes | DecodedImage, thresholds: Thresholds | None = None
    ) -> list[Detection]:
        """Imagga's tags for ``image`` at or above the confidence threshold (Imagga's
        ``threshold`` is that times 100), at most ``limit`` of them.

        Raises ``DetectionRejected`` when Imagga refuses the image, ``DetectorUnavailable``
        when it stays unreachable or overloaded through the retries, ``DetectionFailed``
        otherwise, and ``InvalidInput`` for an IoU threshold (there are no boxes).
        """
        if thresholds is not None and thresholds.iou is not None:
            raise InvalidInput(
                "the imagga detector has no IoU threshold (it tags whole images, there are "
                "no boxes to merge); send only confidence",
                field="iou",
            )
        info = self._info.with_thresholds(thresholds)
        threshold = 100.0 * (info.confidence_threshold or 0.0)
        if isinstance(image, DecodedImage):
            image = image.data
        upload = await self._call(
            "upload",
            "POST",
            "/v2/uploads",
            files={"image": ("image", image, "application/octet-stream")},
        )
        upload_id = upload.get("upload_id")
        if not isinstance(upload_id, str) or not upload_id:
            raise DetectionFailed("imagga answered the upload without an upload_id")
        try:
            tagged = await self._call(
                "tagging",
                "GET",
                "/v2/tags",
                params={
                    "image_upload_id": upload_id,
                    "threshold": f"{threshold:g}",
                    "limit": str(self._config.limit),
                },
            )
        finally:
            await self._delete_upload(upload_id)
        return _detections(tagged.get("tags"), info)

    def close(self) -> None:
        """Let calls in flight finish, then release the threads and connections."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._session.close()

    async def _call(self, step: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One API call with retries; the ``result`` object of its answer."""
        attempts = self._config.retries + 1
        attempt = 1
        while True:
            try:
                response = await self._exchange(method, path, **kwargs)
            except _Transient as problem:
                delay = min(
                    self._config.backoff_seconds * 2 ** (attempt - 1),
                    self._config.max_backoff_seconds,
                )
                waits_too_long = (
                    problem.retry_after is not None
                    and problem.retry_after > self._config.max_backoff_seconds
                )
                if attempt >= attempts or waits_too_long:
                    retry_after = problem.retry_after
                    raise DetectorUnavailable(
                        f"imagga is unavailable: the {step} {problem} "
                        f"(attempt {attempt} of {attempts})",
                        retry_after=(
                            retry_after
                            if retry_after is not None
                            else self._config.default_retry_after
                        ),
                    ) from None
                if problem.retry_after is not None:
                    delay = max(delay, float(problem.retry_after))
                logger.warning(
                    "imagga %s %s; retrying in %.2f s (attempt %d of %d)",
                    step,
                    problem,
                    delay,
                    attempt + 1,
                    attempts,
                )
                await asyncio.sleep(delay)
                attempt += 1
            else:
                return _result(response, step)

    async def _exchange(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request, off the event loop; raises by whose fault a failure is."""
        if self._closed:
            raise DetectionFailed("the imagga detector is closed")
        send = functools.partial(
            self._session.request,
            method,
            self._config.url + path,
            timeout=self._config.timeout_seconds,
            **kwargs,
        )
        try:
            response = await asyncio.get_running_loop().run_in_executor(self._executor, send)
        except requests.Timeout:
            raise _Transient(f"got no answer within {self._config.timeout_seconds:g} s") from None
        except requests.exceptions.SSLError as error:
            # A certificate that does not verify will not verify on a retry either.
            raise DetectionFailed(
                f"could not call imagga over TLS: {_connection_reason(error)}"
            ) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
            logger.debug("imagga %s %s: %r", method, path, error)
            raise _Transient(
                f"connection failed or was dropped ({_connection_reason(error)})"
            ) from None
        except requests.RequestException as error:
            raise DetectionFailed(
                f"could not call imagga ({type(error).__name__}: {_short(str(error))})"
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(
                f"answered {status}{_text_suffix(response)}",
                retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status in _CREDENTIALS:
            logger.error(
                "imagga refused our credentials on %s %s: %d%s",
                method,
                path,
                status,
                _text_suffix(response),
            )
            raise DetectionFailed(
                f"imagga refused imagetag's API credentials ({status}{_text_suffix(response)})"
            )
        if status in _REJECTING:
            raise DetectionRejected(f"imagga refused the image ({status}{_text_suffix(response)})")
        if status >= 300:
            raise DetectionFailed(f"imagga answered {status} to {method} {path}")
        return response

    async def _delete_upload(self, upload_id: str) -> None:
        try:
            await self._exchange("DELETE", f"/v2/uploads/{quote(upload_id, safe='')}")
        except (DetectionFailed, _Transient) as error:
            # Imagga drops uploads on its own after a day; a failed delete only delays that.
            logger.warning("could not delete imagga upload %s: %s", upload_id, error)


def _result(response: requests.Response, step: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise DetectionFailed(
            f"imagga answered the {step} with something other than JSON"
        ) from None
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict):
        raise DetectionFailed(f"imagga answered the {step} without a result")
    return result


def _detections(tags: object, info: DetectorInfo) -> list[Detection]:
    if not isinstance(tags, list):
        raise DetectionFailed("imagga answered the tagging without a list of tags")
    found = []
    for entry in tags:
        try:
            name = entry["tag"]["en"]
            confidence = float(entry["confidence"])
        except (KeyError, TypeError, ValueError):
            name, confidence = None, math.nan
        if not isinstance(name, str) or not math.isfinite(confidence):
            raise DetectionFailed(
                f"imagga answered with a tag we cannot read: {_short(repr(entry))}"
            )
        normalised = normalise_object_name(name)
        if not normalised or len(normalised) > MAX_OBJECT_NAME_LENGTH:
            logger.debug("skipping the imagga tag %r: not a usable object name", name)
            continue
        found.append(
            Detection(
                name=normalised,
                confidence=min(max(confidence / 100.0, 0.0), 1.0),
                box=None,
                detector=info,
            )
        )
    return found


def _text_suffix(response: requests.Response) -> str:
    """``": <Imagga's error text>"`` from its ``{"status": {"text": ...}}`` body, if any."""
    try:
        body = response.json()
    except ValueError:
        text = response.text
    else:
        status = body.get("status") if isinstance(body, dict) else None
        text = status.get("text", "") if isinstance(status, dict) else ""
    text = _short(str(text))
    return f": {text}" if text else ""


def _retry_after_seconds(value: str | None) -> int | None:
    """``Retry-After`` as whole seconds from now; it is either seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))


def _connection_reason(error: Exception) -> str:
    """What went wrong, by name (``RemoteDisconnected``, ``NewConnectionError``), without
    the URL and object addresses of the wrapped errors' own text."""
    cause = error.args[0] if error.args else error
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError
    if isinstance(cause, ProtocolError) and cause.args and isinstance(cause.args[-1], Exception):
        cause = cause.args[-1]
    return type(cause).__name__


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_TEXT else line[: _MAX_TEXT - 1] + "…"

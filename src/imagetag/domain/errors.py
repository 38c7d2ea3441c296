"""Errors the core raises; each entrypoint maps them to its own way of failing."""

from __future__ import annotations


class ImagetagError(Exception):
    """Base of every error the core raises on purpose."""


class InvalidInput(ImagetagError):
    """The caller sent something malformed; the message says what to fix."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ImageNotFound(ImagetagError):
    def __init__(self, image_id: int) -> None:
        super().__init__(f"no image with id {image_id}")
        self.image_id = image_id


class UnsupportedImage(ImagetagError):
    """The bytes are not an image we can read (unknown format, corrupt or truncated)."""


class ImageTooLarge(ImagetagError):
    """The image exceeds a configured byte or pixel limit."""


class UrlRefused(ImagetagError):
    """The URL is not one we will fetch (scheme, address range, redirects)."""


class UrlFetchFailed(ImagetagError):
    """The URL did not answer with an image (status, timeout, wrong content)."""


class DetectionFailed(ImagetagError):
    """The detector could not produce a result; the image itself may already be stored."""

    def __init__(self, message: str, *, image_id: int | None = None) -> None:
        super().__init__(message)
        self.image_id = image_id


class DetectionRejected(DetectionFailed):
    """The detector refused this image (e.g. a remote service found it invalid): the
    caller's to fix, unlike a failure of the detector itself."""


class DetectorUnavailable(DetectionFailed):
    """No detector is configured, its model cannot be loaded, or its service is down;
    ``retry_after`` says in how many seconds trying again makes sense, when known."""

    def __init__(
        self, message: str, *, image_id: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, image_id=image_id)
        self.retry_after = retry_after


class IdempotencyKeyReused(ImagetagError):
    """An Idempotency-Key came back with a different request than the first time."""


class IdempotencyKeyTaken(ImagetagError):
    """Another request with the same Idempotency-Key committed first (a race)."""


class AuthenticationFailed(ImagetagError):
    """Missing, malformed, unknown or revoked credentials."""


class PermissionDenied(ImagetagError):
    """The caller is known but their role does not allow this."""

    def __init__(self, role: str, needed: str) -> None:
        super().__init__(f"a {role} may not do this; it needs the {needed} role")
        self.role = role
        self.needed = needed


class KeyNameTaken(ImagetagError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an API key named {name!r} already exists; pick another name")
        self.name = name


class KeyNotFound(ImagetagError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no active API key named {name!r}")
        self.name = name

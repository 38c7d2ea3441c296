"""Reading facts out of encoded image bytes."""

from __future__ import annotations

from typing import Protocol

from imagetag.domain.images import ImageFacts


class ImageInspector(Protocol):
    def inspect(self, data: bytes) -> ImageFacts:
        """Sniff format and size from the bytes themselves.

        Raises ``UnsupportedImage`` for non-image, corrupt or truncated data and
        ``ImageTooLarge`` beyond the pixel limit.
        """
        ...

"""Reading facts out of encoded image bytes."""

from __future__ import annotations

from typing import IO, Protocol

from imagetag.domain.images import ImageFacts


class ImageInspector(Protocol):
    def inspect(self, source: IO[bytes]) -> ImageFacts:
        """Sniff format and size from the bytes themselves: the whole of ``source``, a
        seekable binary file read from its start. A blocking call, for a worker thread.

        Checks that the whole image decodes without holding more of it in memory than a
        bounded window where the format allows (JPEG, PNG). Raises ``UnsupportedImage``
        for non-image, corrupt or truncated data and ``ImageTooLarge`` beyond the pixel
        limit.
        """
        ...

"""Fetching images from URLs given by callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class FetchedContent:
    url: str
    data: bytes
    content_type: str | None


class UrlFetcher(Protocol):
    async def fetch(self, url: str) -> FetchedContent:
        """Download ``url`` with guards on address, size and time.

        Raises ``UrlRefused`` for URLs we will not fetch and ``UrlFetchFailed``
        when the server does not deliver.
        """
        ...

"""Fetching images from caller-given URLs with requests, guarded against SSRF and abuse."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import requests

from imagetag.domain.errors import ImageTooLarge, UrlFetchFailed, UrlRefused
from imagetag.ports.fetcher import FetchedContent

_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "imagetag/0.1 (+image fetcher)"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public_address(address: IpAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved and similar ranges."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public_address(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


class RequestsUrlFetcher:
    """GET with a connect/read timeout, a total deadline, a byte cap and redirect checks."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout_seconds: float,
        max_redirects: int = 3,
        allow_private: bool = False,
    ) -> None:
        self._max_bytes = max_bytes
        self._timeout = timeout_seconds
        self._max_redirects = max_redirects
        self._allow_private = allow_private

    async def fetch(self, url: str) -> FetchedContent:
        return await asyncio.to_thread(self._fetch, url)

    def _fetch(self, url: str) -> FetchedContent:
        deadline = time.monotonic() + self._timeout
        with requests.Session() as session:
            session.trust_env = False  # no proxies or netrc picked up from the environment
            current = url
            for _ in range(self._max_redirects + 1):
                self._check_url(current)
                response = self._get(session, current, deadline)
                with response:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise UrlFetchFailed(
                            f"the URL answered HTTP {response.status_code}; it must answer "
                            "200 with an image"
                        )
                    data = self._read_body(response, deadline)
                    return FetchedContent(
                        url=current, data=data, content_type=response.headers.get("content-type")
                    )
        raise UrlRefused(f"the URL redirected more than {self._max_redirects} times")

    def _get(self, session: requests.Session, url: str, deadline: float) -> requests.Response:
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            return session.get(
                url,
                stream=True,
                allow_redirects=False,
                timeout=(min(remaining, 5.0), remaining),
                headers={"User-Agent": USER_AGENT, "Accept": "image/*"},
            )
        except requests.Timeout:
            raise UrlFetchFailed(f"the URL did not answer within {self._timeout:g} s") from None
        except requests.ConnectionError:
            host = urlsplit(url).hostname
            raise UrlFetchFailed(
                f"could not connect to {host}: its name does not resolve or it refused the "
                "connection"
            ) from None
        except requests.RequestException as error:
            raise UrlFetchFailed(f"could not fetch the URL: {type(error).__name__}") from None

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise ImageTooLarge(
                f"the URL's content is {declared} bytes; the limit is {self._max_bytes} bytes"
            )
        body = bytearray()
        try:
            for chunk in response.iter_content(_CHUNK):
                body.extend(chunk)
                if len(body) > self._max_bytes:
                    raise ImageTooLarge(
                        f"the URL's content exceeds the limit of {self._max_bytes} bytes"
                    )
                if time.monotonic() > deadline:
                    raise UrlFetchFailed(
                        f"the URL did not deliver its content within {self._timeout:g} s"
                    )
        except requests.RequestException as error:
            raise UrlFetchFailed(f"the download broke off: {type(error).__name__}") from None
        if not body:
            raise UrlFetchFailed("the URL answered with an empty body; it must deliver an image")
        return bytes(body)

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused("only http and https URLs can be fetched")
        if not parts.hostname:
            raise UrlRefused("the URL has no host")
        if parts.username or parts.password:
            raise UrlRefused("URLs with credentials are not fetched")
        if self._allow_private:
            return
        for address in self._resolve(parts.hostname, parts.port):
            if not is_public_address(address):
                raise UrlRefused(
                    f"the URL's host resolves to {address}, a private, loopback or link-local "
                    "address; only public addresses are fetched"
                )

    @staticmethod
    def _resolve(host: str, port: int | None) -> list[IpAddress]:
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            raise UrlFetchFailed(f"the URL's host {host!r} could not be resolved") from None
        return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]

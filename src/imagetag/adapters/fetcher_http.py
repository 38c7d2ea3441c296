"""Fetching images from caller-given URLs with requests, guarded against SSRF and abuse.

Each hop's host is resolved once, every address it has must be public, and the connection
goes to that checked address (no second lookup a DNS-rebinding server could answer
differently); redirects are followed by hand, each one checked the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest

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


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


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
        current = url
        for _ in range(self._max_redirects + 1):
            address = self._checked_address(current)
            # A session per hop, pinned to the address just checked: a second DNS answer
            # (rebinding) can never point the connection somewhere else.
            with requests.Session() as session:
                session.trust_env = False  # no proxies or netrc picked up from the environment
                adapter = _PinnedAddressAdapter(address)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
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
                # The connection goes to a pinned address; the Host header keeps the name.
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": "image/*",
                    # The bytes are stored as they come: no compressed transfer to undo.
                    "Accept-Encoding": "identity",
                    "Host": _host_header(url),
                },
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
            # read1 returns what has arrived (up to a chunk) after at most one socket read,
            # so a server dripping a few bytes at a time still meets the deadline check.
            while chunk := response.raw.read1(_CHUNK, decode_content=False):
                body.extend(chunk)
                if len(body) > self._max_bytes:
                    raise ImageTooLarge(
                        f"the URL's content exceeds the limit of {self._max_bytes} bytes"
                    )
                if time.monotonic() > deadline:
                    raise UrlFetchFailed(
                        f"the URL did not deliver its content within {self._timeout:g} s"
                    )
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            raise UrlFetchFailed(f"the download broke off: {type(error).__name__}") from None
        except TimeoutError:
            raise UrlFetchFailed(
                f"the URL did not deliver its content within {self._timeout:g} s"
            ) from None
        if not body:
            raise UrlFetchFailed("the URL answered with an empty body; it must deliver an image")
        return bytes(body)

    def _checked_address(self, url: str) -> str:
        """Resolve the URL's host once and return the address to connect to, or refuse."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UrlRefused("only http and https URLs can be fetched")
        if not parts.hostname:
            raise UrlRefused("the URL has no host")
        if parts.username or parts.password:
            raise UrlRefused("URLs with credentials are not fetched")
        try:
            port = parts.port
        except ValueError:
            raise UrlRefused("the URL's port is not a number from 0 to 65535") from None
        addresses = self._resolve(parts.hostname, port)
        if not self._allow_private:
            for address in addresses:
                if not is_public_address(address):
                    raise UrlRefused(
                        f"the URL's host resolves to {address}, a private, loopback, "
                        "link-local or otherwise non-public address; only public addresses "
                        "are fetched"
                    )
        return str(addresses[0])

    @staticmethod
    def _resolve(host: str, port: int | None) -> list[IpAddress]:
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            raise UrlFetchFailed(f"the URL's host {host!r} could not be resolved") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise UrlFetchFailed(f"the URL's host {host!r} has no address")
        return addresses


class _PinnedAddressAdapter(HTTPAdapter):
    """Connects to one given address, whatever the URL's host resolves to by then.

    The request keeps the URL's host name for the ``Host`` header, and for TLS: the server
    name sent (SNI) and the name its certificate must carry.
    """

    def __init__(self, address: str) -> None:
        super().__init__(max_retries=0)
        self._address = address

    def build_connection_pool_key_attributes(  # type: ignore[override]
        self, request: PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        base_params, base_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params: dict[str, Any] = dict(base_params)
        pool_kwargs: dict[str, Any] = dict(base_kwargs)
        hostname = host_params["host"]
        host_params["host"] = self._address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs

"""The URL fetcher against real HTTP servers on loopback, and a resolver that lies.

Loopback is itself a refused range, so most tests allow private addresses and check the
other guards; the address checks use a stand-in resolver.
"""

from __future__ import annotations

import http.server
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from imagetag.adapters.fetcher_http import RequestsUrlFetcher, is_public_address
from imagetag.domain.errors import ImageTooLarge, UrlFetchFailed, UrlRefused

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, Callable[[_Handler], None]]
    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Host")))
        self.routes[self.path](self)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def web_server(routes: dict[str, Callable[[_Handler], None]]) -> Iterator[tuple[int, list[Any]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (_Handler,), {"routes": routes, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def _slow(handler: _Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(1000 * len(PNG)))
    handler.end_headers()
    for _ in range(1000):
        try:
            handler.wfile.write(PNG)
            handler.wfile.flush()
        except OSError:
            return
        time.sleep(0.01)


def _undeclared(handler: _Handler, body: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)
    handler.close_connection = True


ROUTES: dict[str, Callable[[_Handler], None]] = {
    "/photo.png": lambda h: h.answer(200, PNG, Content_Type="image/png"),
    "/moved": lambda h: h.answer(302, Location="/photo.png"),
    "/loop": lambda h: h.answer(302, Location="/loop"),
    "/to-metadata": lambda h: h.answer(302, Location="http://169.254.169.254/latest/meta-data/"),
    "/big": lambda h: h.answer(200, b"\x00" * 5000, Content_Type="image/png"),
    "/big-undeclared": lambda h: _undeclared(h, b"\x00" * 5000),
    "/missing": lambda h: h.answer(404),
    "/empty": lambda h: h.answer(200),
    "/slow": _slow,
}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, list[Any]]]:
    with web_server(ROUTES) as running:
        yield running


def fetcher(**options: Any) -> RequestsUrlFetcher:
    values: dict[str, Any] = {"max_bytes": 4096, "timeout_seconds": 2.0, "allow_private": True}
    values.update(options)
    return RequestsUrlFetcher(**values)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
        "100.64.0.1", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fd00:ec2::254",
        "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::",
    ],
)  # fmt: skip
def test_non_public_addresses_are_recognised(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_recognised(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


async def test_an_image_is_fetched_through_a_redirect_with_its_host_header(
    server: tuple[int, list[Any]],
) -> None:
    port, seen = server
    fetched = await fetcher().fetch(f"http://localhost:{port}/moved")
    assert fetched.data == PNG
    assert fetched.url == f"http://localhost:{port}/photo.png"
    assert seen[-2:] == [("/moved", f"localhost:{port}"), ("/photo.png", f"localhost:{port}")]


@pytest.mark.parametrize(
    ("url", "error", "fragment"),
    [
        ("ftp://example.com/a.png", UrlRefused, "only http and https"),
        ("file:///etc/passwd", UrlRefused, "only http and https"),
        ("http://user:secret@localhost:{port}/photo.png", UrlRefused, "credentials"),
        ("http://localhost:99999/photo.png", UrlRefused, "port"),
        ("http://localhost:{port}/loop", UrlRefused, "redirected more than 3 times"),
        ("http://localhost:{port}/missing", UrlFetchFailed, "HTTP 404"),
        ("http://localhost:{port}/empty", UrlFetchFailed, "empty body"),
        ("http://localhost:{port}/big", ImageTooLarge, "limit is 4096 bytes"),
        ("http://localhost:{port}/big-undeclared", ImageTooLarge, "limit of 4096 bytes"),
        ("http://no-such-host.invalid/a.png", UrlFetchFailed, "could not be resolved"),
    ],
)
async def test_each_refusal_says_why(
    server: tuple[int, list[Any]], url: str, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        await fetcher().fetch(url.format(port=server[0]))


async def test_a_slow_download_stops_at_the_deadline(server: tuple[int, list[Any]]) -> None:
    started = time.monotonic()
    with pytest.raises(UrlFetchFailed, match="within 1 s"):
        await fetcher(timeout_seconds=1.0, max_bytes=10**6).fetch(
            f"http://localhost:{server[0]}/slow"
        )
    assert time.monotonic() - started < 3


async def test_private_addresses_are_refused_including_after_a_redirect(
    server: tuple[int, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen = server
    guarded = fetcher(allow_private=False)
    with pytest.raises(UrlRefused, match=re.escape("127.0.0.1")):
        await guarded.fetch(f"http://localhost:{port}/photo.png")
    with pytest.raises(UrlRefused, match=re.escape("169.254.169.254")):
        await guarded.fetch("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(UrlRefused, match="fd00:ec2::254"):
        await guarded.fetch("http://[fd00:ec2::254]/latest/meta-data/")
    with pytest.raises(UrlRefused, match="::ffff:7f00:1"):
        await guarded.fetch("http://[::ffff:127.0.0.1]/")
    # A public name that redirects to the metadata service: the second hop is refused.
    public = ipaddress.ip_address("93.184.215.14")
    resolve_to = {"images.example": "127.0.0.1"}
    real = socket.getaddrinfo

    def lying_resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        if host in resolve_to:
            return real(resolve_to[host], *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lying_resolver)
    monkeypatch.setattr(
        "imagetag.adapters.fetcher_http.is_public_address",
        lambda address: address == public or str(address) == "127.0.0.1",
    )
    hits = len(seen)
    with pytest.raises(UrlRefused, match=re.escape("169.254.169.254")):
        await guarded.fetch(f"http://images.example:{port}/to-metadata")
    assert seen[hits:] == [("/to-metadata", f"images.example:{port}")]


async def test_the_connection_goes_to_the_address_that_was_checked(
    server: tuple[int, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the first answer is public, every later one points at loopback."""
    port, seen = server
    answers = iter(["192.0.2.1"])  # TEST-NET-1: public for the check, unreachable here
    real = socket.getaddrinfo

    def rebinding_resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            return real(next(answers, "127.0.0.1"), *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_resolver)
    monkeypatch.setattr("imagetag.adapters.fetcher_http.is_public_address",
                        lambda address: str(address) == "192.0.2.1")  # fmt: skip
    hits = len(seen)
    with pytest.raises(UrlFetchFailed):
        await fetcher(allow_private=False, timeout_seconds=1.0).fetch(
            f"http://rebind.example:{port}/photo.png"
        )
    assert seen[hits:] == [], "the loopback server, which a second lookup names, is never asked"

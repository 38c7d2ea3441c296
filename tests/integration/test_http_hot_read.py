"""The hot read in front of Litestar: the same answers, a rate token per request, and
every request it does not answer left to Litestar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from imagetag.entrypoints.http import routes_images
from tests.integration.test_http_api import (
    assert_problem,
    authorised_client,
    b64,
    start_api,
)
from tests.support.assets import BUS

ORIGIN = {"Origin": "https://labelling.example"}


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reached Litestar's own entry point."""
    paths: list[str] = []
    original = Litestar.__call__

    async def counting(self: Litestar, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            paths.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(Litestar, "__call__", counting)
    return paths


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    server, _, secret = start_api(tmp_path, detector="opencv")
    with server, authorised_client(server, secret) as client:
        yield client, secret


def headers_without_date(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted((name, value) for name, value in response.headers.items() if name != "date")


def test_the_hot_read_answers_exactly_as_litestar_does(
    served: tuple[httpx.Client, str], routed: list[str]
) -> None:
    client, _ = served
    created = client.post("/images", json={"image": b64(BUS), "detect": True}).json()
    client.post(f"/images/{created['id']}/tags", json={"names": ["street", "sample"]})
    routed.clear()

    hot = client.get(f"/images/{created['id']}")
    # With an Origin header the front leaves the request to Litestar (CORS is its job).
    through_litestar = client.get(f"/images/{created['id']}", headers=ORIGIN)

    assert routed == [f"/images/{created['id']}"], "only the request with Origin was routed"
    assert hot.status_code == through_litestar.status_code == 200
    assert hot.content == through_litestar.content
    assert headers_without_date(hot) == headers_without_date(through_litestar)
    assert hot.json()["objects"] == created["objects"]
    assert {tag["name"] for tag in hot.json()["tags"]} >= {"street", "sample"}


@pytest.mark.parametrize(
    ("path", "credential"),
    [
        ("/images/999999", "key"),  # no such image: Litestar's 404
        ("/images/99999999999999999999999", "key"),  # beyond 64 bits: 404 too
        ("/images/1", None),  # no credential: 401
        ("/images/1", "Bearer itk_not-a-key"),  # unknown key: 401
        ("/images/1", "Basic dXNlcjpwYXNz"),  # not a bearer: 401
        ("/images/1/content", "key"),  # another route
        ("/images/%C2%B2", "key"),  # a digit, but not an ASCII one: 404
    ],
)
def test_what_the_front_does_not_answer_goes_to_litestar_unchanged(
    served: tuple[httpx.Client, str], routed: list[str], path: str, credential: str | None
) -> None:
    client, secret = served
    client.post("/images", json={"image": b64(BUS)})
    headers = {} if credential is None else {"Authorization": credential}
    if credential == "key":
        headers["Authorization"] = f"Bearer {secret}"
    routed.clear()

    # A client of its own: the fixture's sends the key with every request.
    response = httpx.get(f"{client.base_url}{path}", headers=headers, timeout=60)

    assert len(routed) == 1
    if path.endswith("/content"):
        assert response.status_code == 200
    elif credential == "key":
        assert_problem(response, 404)
    else:
        assert_problem(response, 401)


def test_each_read_takes_one_rate_token_whichever_way_it_is_answered(tmp_path: Path) -> None:
    server, _, secret = start_api(tmp_path, rate_limit_per_minute=1, rate_limit_burst=3)
    with server, authorised_client(server, secret) as client:
        image_id = client.post("/images", json={"image": b64(BUS)}).json()["id"]  # token 1
        assert client.get("/images/999999").status_code == 404  # token 2, through Litestar
        assert client.get(f"/images/{image_id}").status_code == 200  # token 3, the front
        limited = client.get(f"/images/{image_id}")
        assert_problem(limited, 429, "too many requests from tester")
        assert int(limited.headers["retry-after"]) >= 1


def test_an_app_without_the_front_answers_the_same(tmp_path: Path) -> None:
    server, _, secret = start_api(tmp_path)
    app = server.app
    with server, authorised_client(server, secret) as client:
        image_id = client.post("/images", json={"image": b64(BUS)}).json()["id"]
        hot = client.get(f"/images/{image_id}")
        app.hot_read = None
        plain = client.get(f"/images/{image_id}")
    assert hot.content == plain.content
    assert headers_without_date(hot) == headers_without_date(plain)


def test_the_route_the_front_stands_in_for_has_nothing_the_front_would_skip(
    tmp_path: Path,
) -> None:
    # The front checks the credential and the rate as the middleware does; a guard, hook,
    # response header or cookie on the route or on the app would be skipped for the reads
    # it answers.
    server, _, _ = start_api(tmp_path)
    app: Litestar = server.app
    (route,) = [
        route
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path == "/images/{image_id:int}"
    ]
    (handler,) = [
        handler
        for handler in route.route_handlers
        if isinstance(handler, HTTPRouteHandler) and "GET" in handler.http_methods
    ]

    assert handler.fn is routes_images.get_image.fn
    assert handler.resolve_guards() == []
    assert handler.resolve_before_request() is None
    assert handler.resolve_after_response() is None
    assert not [
        layer for layer in handler.ownership_layers if getattr(layer, "after_request", None)
    ]
    assert handler.resolve_response_headers() == frozenset()
    assert handler.resolve_response_cookies() == frozenset()

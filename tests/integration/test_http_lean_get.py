"""GET /images/{id} runs lean (lean_get): the same answers as Litestar's ordinary way.

Both apps here share one container, the API key middleware and the error handlers; one
serves ``get_image`` through ``lean_get``, as ``create_app`` does, the other the ordinary
way. Every answer, headers and body, must be the same byte for byte.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from dependency_injector import providers
from litestar import Litestar, Router, get
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, PathParameter
from litestar.testing import TestClient
from PIL import Image as PillowImage

from imagetag.adapters.sqla.migrate import upgrade_database
from imagetag.domain.detections import BoundingBox
from imagetag.domain.errors import ImagetagError
from imagetag.domain.principals import Role
from imagetag.entrypoints.container import Container, build_container
from imagetag.entrypoints.http import routes_images, routes_tags
from imagetag.entrypoints.http.app import create_app
from imagetag.entrypoints.http.auth import bearer_authentication
from imagetag.entrypoints.http.dependencies import dependencies_for
from imagetag.entrypoints.http.lean_get import LeanCall, lean_call, lean_get
from imagetag.entrypoints.http.problems import (
    domain_error_handler,
    http_exception_handler,
    internal_error_handler,
)
from imagetag.entrypoints.http.security_headers import add_security_headers
from imagetag.entrypoints.settings import Settings
from imagetag.services.keys import SYSTEM
from tests.fakes import FakeDetector, detection


@dataclass
class Apps:
    lean: TestClient[Litestar]
    ordinary: TestClient[Litestar]
    secret: str
    tagged: int
    deleted: int


def ordinary_app(container: Container) -> Litestar:
    """The handlers the test needs, with the app's auth and error handling, none lean."""
    return Litestar(
        route_handlers=[
            routes_images.get_image,
            routes_images.create_image,
            routes_images.delete_image,
            routes_tags.add_image_tags,
        ],
        dependencies=dependencies_for(container),
        middleware=[bearer_authentication(container.keys())],
        exception_handlers={
            ImagetagError: domain_error_handler,
            HTTPException: http_exception_handler,
            Exception: internal_error_handler,
        },
        before_send=[add_security_headers],
        debug=False,
    )


def png(shade: int) -> str:
    buffer = io.BytesIO()
    PillowImage.new("RGB", (16, 12), (shade, 40, 90)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("lean")), detector="opencv")
    asyncio.run(upgrade_database(settings.database_url))
    container = build_container(settings)
    box = BoundingBox(0.1, 0.2, 0.5, 0.6)
    container.detector.override(
        providers.Object(FakeDetector([detection("dog", 0.91234, box), detection("cat", 0.5)]))
    )
    issued = asyncio.run(container.keys().create("tester", SYSTEM, role=Role.TAGGER))
    auth = {"Authorization": f"Bearer {issued.secret}"}
    with (
        TestClient(create_app(container)) as lean,
        TestClient(ordinary_app(container)) as ordinary,
    ):
        created = lean.post("/images", json={"image": png(1), "detect": True}, headers=auth)
        assert created.status_code == 200, created.text
        tagged = created.json()["id"]
        added = lean.post(
            f"/images/{tagged}/tags", json={"names": ["Sofa", "indoor"]}, headers=auth
        )
        assert added.status_code == 200, added.text
        doomed = lean.post("/images", json={"image": png(2)}, headers=auth).json()["id"]
        assert lean.delete(f"/images/{doomed}", headers=auth).status_code == 204
        yield Apps(lean, ordinary, issued.secret, tagged, doomed)


def answers(client: TestClient[Litestar], path: str, headers: dict[str, str]) -> Any:
    response = client.get(path, headers=headers)
    return response.status_code, sorted(response.headers.multi_items()), response.content


def test_the_app_serves_get_image_lean(apps: Apps) -> None:
    handler = apps.lean.app.route_handler_method_map["/images/{image_id:int}"]["GET"]
    assert isinstance(handler, BaseRouteHandler)
    assert isinstance(lean_call(handler, {"image_id": 1}), LeanCall)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "path", "key", "status"),
    [
        ("human and model tags", "tagged", "valid", 200),
        ("deleted image", "deleted", "valid", 404),
        ("unknown id", "/images/987654", "valid", 404),
        ("id beyond 64 bits", f"/images/{2**64}", "valid", 404),
        ("no key", "tagged", None, 401),
        ("unknown key", "tagged", "itk_not-a-key", 401),
    ],
)
def test_lean_answers_equal_the_ordinary_ones_byte_for_byte(
    apps: Apps, case: str, path: str, key: str | None, status: int
) -> None:
    target = {"tagged": f"/images/{apps.tagged}", "deleted": f"/images/{apps.deleted}"}
    secret = apps.secret if key == "valid" else key
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    lean = answers(apps.lean, target.get(path, path), headers)
    assert lean == answers(apps.ordinary, target.get(path, path), headers), case
    assert lean[0] == status, lean
    if status == 200:
        body = msgspec.json.decode(lean[2])
        assert {(tag["name"], tag["source"]) for tag in body["tags"]} == {
            ("dog", "model"),
            ("cat", "model"),
            ("sofa", "human"),
            ("indoor", "human"),
        }


class Thing(msgspec.Struct):
    id: int


def refuse(_: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
    raise NotAuthorizedException("guarded")


@get("/guarded/{thing_id:int}", guards=[refuse])
async def guarded(thing_id: FromPath[int]) -> Thing:
    return Thing(thing_id)


@get("/headers/{thing_id:int}", response_headers={"X-Extra": "1"})
async def with_headers(thing_id: FromPath[int]) -> Thing:
    return Thing(thing_id)


@get("/positive/{thing_id:int}")
async def constrained(thing_id: Annotated[int, PathParameter(gt=0)]) -> Thing:
    return Thing(thing_id)


@get("/plain/{thing_id:int}")
async def returns_a_dict(thing_id: FromPath[int]) -> dict[str, int]:
    return {"id": thing_id}


def offset_of(thing_id: FromPath[int]) -> int:
    return thing_id


@get("/needs/{thing_id:int}", dependencies={"offset": Provide(offset_of, sync_to_thread=False)})
async def dependency_with_parameters(
    thing_id: FromPath[int], offset: NamedDependency[int]
) -> Thing:
    return Thing(thing_id + offset)


@pytest.mark.parametrize(
    ("handler", "path", "status"),
    [
        (guarded, "/guarded/1", 401),
        (with_headers, "/headers/1", 200),
        (constrained, "/positive/0", 400),
        (returns_a_dict, "/plain/1", 200),
        (dependency_with_parameters, "/needs/1", 200),
    ],
)
def test_handlers_that_need_litestar_run_the_ordinary_way(
    handler: Any, path: str, status: int
) -> None:
    app = Litestar([Router("/", route_handlers=[handler], middleware=[lean_get])], debug=False)
    registered = next(iter(app.route_handler_method_map.values()))["GET"]
    assert isinstance(lean_call(registered, {"thing_id": 1}), str)  # type: ignore[arg-type]
    with TestClient(app) as client:
        response = client.get(path)
    assert response.status_code == status, response.text
    if handler is with_headers:
        assert response.headers["x-extra"] == "1"

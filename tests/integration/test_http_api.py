"""The HTTP API through a real uvicorn server on loopback, with real adapters.

The default detector here is the real offline one (OpenCV cascades); the only fake is
a detector that fails on purpose, to show what a detector outage looks like to a client.
"""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image as PillowImage

from imagetag.adapters.sqla.migrate import upgrade_database
from imagetag.domain.errors import DetectionFailed
from imagetag.domain.principals import Role
from imagetag.entrypoints.container import Container, build_container
from imagetag.entrypoints.http.app import create_app
from imagetag.entrypoints.settings import Settings
from imagetag.services.keys import SYSTEM
from tests.fakes import FakeDetector
from tests.support.assets import BUS, ZIDANE
from tests.support.servers import ThreadedUvicorn, static_file_server

MAX_UPLOAD = 2 * 1024 * 1024


def start_api(tmp_path: Path, **settings: Any) -> tuple[ThreadedUvicorn, Container, str]:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "fetch_allow_private": True,
        "max_upload_bytes": MAX_UPLOAD,
        "detector": "opencv",
    }
    values.update(settings)
    config = Settings(**values)
    asyncio.run(upgrade_database(config.database_url))
    container = build_container(config)
    secret = asyncio.run(_create_key(container))
    return ThreadedUvicorn(create_app(container)), container, secret


def authorised_client(server: ThreadedUvicorn, secret: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=60
    )


async def _create_key(container: Container) -> str:
    issued = await container.keys().create("tester", SYSTEM, role=Role.TAGGER)
    await container.engine().dispose()
    return issued.secret


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server, _, secret = start_api(tmp_path_factory.mktemp("api"))
    with server, authorised_client(server, secret) as client:
        yield client


@pytest.fixture(scope="module")
def anonymous(api: httpx.Client) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A loopback web server with the two photos and a text file."""
    root = tmp_path_factory.mktemp("www")
    for photo in (BUS, ZIDANE):
        shutil.copy(photo, root / photo.name)
    (root / "notes.txt").write_text("this is not an image")
    with static_file_server(root) as base_url:
        yield base_url


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def image_count(api: httpx.Client) -> int:
    return len(api.get("/images", params={"limit": 1000}).json()["images"])


def assert_problem(response: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


# --- security -------------------------------------------------------------------------


def test_health_and_docs_answer_without_a_key(anonymous: httpx.Client) -> None:
    health = anonymous.get("/health")
    assert health.status_code == 200
    assert health.json()["detector"]["detector"] == "opencv"
    assert anonymous.get("/schema/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/images"),
        ("GET", "/images/1"),
        ("GET", "/images/1/content"),
        ("POST", "/images"),
        ("GET", "/images?objects=person"),
    ],
)
def test_every_other_endpoint_refuses_anonymous_callers(
    anonymous: httpx.Client, method: str, path: str
) -> None:
    response = anonymous.request(method, path, json={"url": "http://example.com/a.jpg"})
    assert_problem(response, 401, "Authorization")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_unknown_key_is_refused(anonymous: httpx.Client) -> None:
    response = anonymous.get("/images", headers={"Authorization": "Bearer itk_not-a-key"})
    assert_problem(response, 401, "unknown or revoked")
    basic = anonymous.get("/images", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_problem(basic, 401, "Bearer")


# --- ingest ---------------------------------------------------------------------------


def test_post_json_base64_stores_the_image_and_records_the_caller(api: httpx.Client) -> None:
    response = api.post("/images", json={"image": b64(ZIDANE), "filename": "zidane.jpg"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] > 0
    assert body["label"] == "zidane"
    assert body["media_type"] == "image/jpeg"
    assert (body["width"], body["height"]) == (1280, 720)
    assert body["size_bytes"] == ZIDANE.stat().st_size
    assert body["created_by"] == {"user": "tester", "client": "tester"}
    assert body["detection_enabled"] is False
    assert body["objects"] == []
    content = api.get(body["content_url"])
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["content-length"] == str(ZIDANE.stat().st_size)
    assert "transfer-encoding" not in content.headers
    assert content.content == ZIDANE.read_bytes()
    assert api.get(f"/images/{body['id']}").json() == body


def test_post_with_detection_finds_people_and_search_finds_the_image(api: httpx.Client) -> None:
    response = api.post("/images", json={"image": b64(BUS), "detect": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["detection_enabled"] is True
    assert {"face", "person"} & set(body["objects"])
    assert body["label"] == ", ".join(body["objects"])
    detection = body["tags"][0]
    assert detection["source"] == "model"
    assert 0 <= detection["confidence"] <= 1
    assert detection["model"]["detector"] == "opencv"
    assert detection["added_by"] == {"user": "tester", "client": "tester"}
    found = api.get("/images", params={"objects": body["objects"][0]}).json()["images"]
    assert body["id"] in [image["id"] for image in found]
    quoted = api.get("/images", params={"objects": f'"{body["objects"][0].upper()},zebra"'})
    assert body["id"] in [image["id"] for image in quoted.json()["images"]]
    none = api.get("/images", params={"objects": "zebra"})
    assert none.status_code == 200
    assert none.json() == {"images": [], "next_cursor": None}
    every = api.get("/images", params={"objects": f"{body['objects'][0]},zebra", "match": "all"})
    assert every.json()["images"] == []


def test_multipart_upload_for_curl_users(api: httpx.Client) -> None:
    response = api.post(
        "/images",
        files={"file": ("my_holiday-photo.jpg", BUS.read_bytes(), "image/jpeg")},
        data={"label": "  the bus  "},
    )
    assert response.status_code == 200, response.text
    assert response.json()["label"] == "the bus"
    assert response.json()["source"] == "my_holiday-photo.jpg"


@pytest.mark.parametrize("mode", ["multipart", "json"])
def test_an_upload_past_the_memory_spool_round_trips_byte_for_byte(
    api: httpx.Client, mode: str
) -> None:
    # 1.5 MB of noise: the upload rolls to a temporary file on its way to the blob store.
    noise = PillowImage.frombytes("RGB", (720, 720), bytes(range(251)) * 6197)
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG", compress_level=0)
    data = buffer.getvalue()
    assert 1024 * 1024 < len(data) < MAX_UPLOAD
    if mode == "multipart":
        response = api.post("/images", files={"file": ("noise.png", data, "image/png")})
    else:
        response = api.post("/images", json={"image": base64.b64encode(data).decode()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"], body["size_bytes"]) == (720, 720, len(data))
    assert api.get(body["content_url"]).content == data


def test_json_escaped_slashes_in_base64_are_decoded(api: httpx.Client) -> None:
    encoded = base64.b64encode(ZIDANE.read_bytes()).decode()
    assert "/" in encoded
    body = '{"image": "' + encoded.replace("/", "\\/") + '"}'
    response = api.post("/images", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert api.get(response.json()["content_url"]).content == ZIDANE.read_bytes()


def test_post_by_url_fetches_the_image(api: httpx.Client, images_dir: str) -> None:
    url = f"{images_dir}/zidane.jpg"
    response = api.post("/images", json={"url": url})
    assert response.status_code == 200, response.text
    assert response.json()["source"] == url
    assert response.json()["label"] == "zidane"


def test_list_pages_newest_first_with_a_cursor(api: httpx.Client) -> None:
    for _ in range(3):
        assert api.post("/images", json={"image": b64(ZIDANE)}).status_code == 200
    everything = [image["id"] for image in api.get("/images").json()["images"]]
    assert everything == sorted(everything, reverse=True)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/images", params=params).json()
        seen += [image["id"] for image in page["images"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


# --- client errors: 4xx, nothing stored -----------------------------------------------


def _truncated_jpeg() -> bytes:
    return BUS.read_bytes()[:5000]


def _small_png() -> bytes:
    buffer = io.BytesIO()
    PillowImage.new("RGB", (40, 30), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def _damaged_png() -> bytes:
    data = bytearray(_small_png())
    data[-20] ^= 0xFF  # inside the compressed image data
    return bytes(data)


def _big_png() -> bytes:
    buffer = io.BytesIO()
    noise = PillowImage.frombytes(
        "RGB", (1100, 1100), bytes(range(256)) * (1100 * 1100 * 3 // 256 + 1)
    )
    noise.save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("request_kwargs", "status", "fragment"),
    [
        (
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "not valid JSON",
        ),
        ({"json": {}}, 400, "exactly one"),
        ({"json": {"image": "aGk=", "url": "http://x.org/a.jpg"}}, 400, "exactly one"),
        ({"json": {"image": "%%%"}}, 400, "base64"),
        ({"json": {"image": "aGk=", "detect": "yes"}}, 400, "detect"),
        ({"json": {"image": "aGk=", "colour": "red"}}, 400, "colour"),
        ({"json": {"image": "aGk=", "label": "   "}}, 400, "label"),
        (
            {"json": {"image": base64.b64encode(b"hello, not an image").decode()}},
            415,
            "not an image",
        ),
        ({"json": {"image": base64.b64encode(_truncated_jpeg()).decode()}}, 415, "truncated"),
        (
            {"json": {"image": base64.b64encode(_truncated_jpeg()).decode(), "detect": True}},
            415,
            "truncated",
        ),
        ({"json": {"image": base64.b64encode(_small_png()[:-30]).decode()}}, 415, "truncated"),
        ({"files": {"file": ("x.png", _small_png()[:-30], "image/png")}}, 415, "truncated"),
        ({"json": {"image": base64.b64encode(_damaged_png()).decode()}}, 415, "corrupt"),
        ({"json": {"image": 12}}, 400, "string of base64"),
        ({"json": {"image": None}}, 400, "exactly one"),
        ({"json": {"image": "aGk=aGk="}}, 400, "base64"),
        ({"json": {"url": "ftp://example.com/a.jpg"}}, 422, "http"),
        ({"content": b"x", "headers": {"Content-Type": "text/plain"}}, 400, "Content-Type"),
    ],
    ids=[
        "malformed-json",
        "neither",
        "both",
        "bad-base64",
        "wrong-type",
        "unknown-field",
        "blank-label",
        "not-an-image",
        "truncated-jpeg",
        "truncated-jpeg-detecting",
        "truncated-png",
        "truncated-png-multipart",
        "damaged-png",
        "image-not-a-string",
        "image-null",
        "padding-inside",
        "ftp-url",
        "wrong-content-type",
    ],
)
def test_bad_input_is_a_client_error_and_stores_nothing(
    api: httpx.Client, request_kwargs: dict[str, Any], status: int, fragment: str
) -> None:
    before = image_count(api)
    response = api.post("/images", **request_kwargs)
    assert_problem(response, status, fragment)
    assert image_count(api) == before


def test_a_body_over_the_size_limit_is_413(api: httpx.Client) -> None:
    before = image_count(api)
    big = _big_png()
    assert len(big) > MAX_UPLOAD
    multipart = api.post("/images", files={"file": ("big.png", big, "image/png")})
    assert multipart.status_code == 413
    as_json = api.post("/images", json={"image": base64.b64encode(big).decode()})
    assert as_json.status_code == 413
    assert image_count(api) == before


def test_urls_that_do_not_deliver_an_image_are_422(api: httpx.Client, images_dir: str) -> None:
    before = image_count(api)
    missing = api.post("/images", json={"url": f"{images_dir}/nothing-here.jpg"})
    assert_problem(missing, 422, "404")
    not_image = api.post("/images", json={"url": f"{images_dir}/notes.txt"})
    assert_problem(not_image, 422, "not an image")
    unresolvable = api.post("/images", json={"url": "http://no-such-host.invalid/a.jpg"})
    assert_problem(unresolvable, 422, "no-such-host.invalid")
    assert image_count(api) == before


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"objects": " , "}, "objects"),
        ({"objects": "dog", "match": "some"}, "match"),
        ({"match": "some"}, "match"),
        ((("objects", "dog"), ("objects", "cat")), "objects is given 2 times; give it once"),
    ],
)
def test_bad_query_parameters_are_400(
    api: httpx.Client, params: dict[str, str | int] | tuple[tuple[str, str], ...], fragment: str
) -> None:
    assert_problem(api.get("/images", params=params), 400, fragment)


def test_unknown_image_is_404(api: httpx.Client) -> None:
    assert_problem(api.get("/images/999999"), 404, "999999")
    assert_problem(api.get("/images/999999/content"), 404, "999999")


# --- our faults and upstream faults: 5xx, the image is kept ---------------------------


def test_private_addresses_are_refused_unless_allowed(tmp_path: Path, images_dir: str) -> None:
    server, _, secret = start_api(tmp_path, fetch_allow_private=False)
    with server, authorised_client(server, secret) as client:
        response = client.post("/images", json={"url": f"{images_dir}/bus.jpg"})
        assert_problem(response, 422, "only public addresses are fetched")
        metadata = client.post("/images", json={"url": "http://169.254.169.254/latest/"})
        assert_problem(metadata, 422, "169.254.169.254")


def test_detector_failure_is_502_and_the_image_is_kept(tmp_path: Path) -> None:
    server, container, secret = start_api(tmp_path)
    container.detector.override(FakeDetector(error=DetectionFailed("the model crashed")))
    with server, authorised_client(server, secret) as client:
        response = client.post("/images", json={"image": b64(BUS), "detect": True})
        body = assert_problem(response, 502, "the model crashed")
        kept = client.get(f"/images/{body['image_id']}").json()
        assert kept["detection_status"] == "failed"
        assert kept["detection_error"] == "the model crashed"
        assert client.get(kept["content_url"]).content == BUS.read_bytes()


def test_unloadable_model_weights_are_503_and_the_image_is_kept(tmp_path: Path) -> None:
    broken = tmp_path / "broken-weights.onnx"
    broken.write_bytes(b"these are not model weights")
    server, _, secret = start_api(tmp_path, detector="yolo", yolo_model=str(broken))
    with server, authorised_client(server, secret) as client:
        response = client.post("/images", json={"image": b64(BUS), "detect": True})
        body = assert_problem(response, 503, "broken-weights.onnx")
        assert response.headers["retry-after"]
        assert client.get(f"/images/{body['image_id']}").status_code == 200


def test_with_duplicates_reused_the_same_bytes_give_the_same_image(tmp_path: Path) -> None:
    server, _, secret = start_api(tmp_path, duplicates="reuse")
    with server, authorised_client(server, secret) as client:
        first = client.post("/images", json={"image": b64(ZIDANE), "label": "first"})
        again = client.post("/images", json={"image": b64(ZIDANE), "label": "second"})
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert image_count(client) == 1


def test_every_answer_carries_the_security_headers(
    api: httpx.Client, anonymous: httpx.Client
) -> None:
    for response in (api.get("/images"), anonymous.get("/images"), api.get("/images/999999")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    docs = anonymous.get("/schema/swagger")
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in docs.headers, "the docs page runs its scripts"


def test_cross_origin_requests_are_not_allowed_unless_configured(
    api: httpx.Client, tmp_path: Path
) -> None:
    origin = {"Origin": "https://labelling.example.com"}
    assert "access-control-allow-origin" not in api.get("/images", headers=origin).headers
    server, _, secret = start_api(tmp_path, cors_origins="https://labelling.example.com")
    with server, authorised_client(server, secret) as client:
        allowed = client.get("/images", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == origin["Origin"]
        other = client.get("/images", headers={"Origin": "https://evil.example"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_a_caller_over_the_rate_limit_gets_429_with_retry_after(tmp_path: Path) -> None:
    server, container, secret = start_api(tmp_path, rate_limit_per_minute=6, rate_limit_burst=2)
    other = asyncio.run(_create_key_named(container, "other"))
    with server, authorised_client(server, secret) as client:
        assert [client.get("/images").status_code for _ in range(2)] == [200, 200]
        limited = client.get("/images")
        body = assert_problem(limited, 429, "too many requests from tester")
        assert int(limited.headers["retry-after"]) >= 1
        assert body["status"] == 429
        with authorised_client(server, other) as second:
            assert second.get("/images").status_code == 200, "each user has a bucket"


async def _create_key_named(container: Container, name: str) -> str:
    issued = await container.keys().create(name, SYSTEM, role=Role.READER)
    await container.engine().dispose()
    return issued.secret


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims a huge canvas: a decompression bomb's first bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [9_000, 50_000])
def test_an_image_over_the_pixel_limit_is_413_before_it_is_decoded(
    api: httpx.Client, side: int
) -> None:
    before = image_count(api)
    bomb = _png_claiming(side, side)
    assert len(bomb) < 100_000
    response = api.post("/images", json={"image": base64.b64encode(bomb).decode()})
    assert_problem(response, 413, "pixels")
    assert image_count(api) == before


def _trickle(
    port: int,
    secret: str,
    first_part: bytes,
    announced: int,
    content_type: str = "application/json",
) -> tuple[bytes, float]:
    """Send headers announcing ``announced`` body bytes, then only ``first_part``, and
    wait for the answer; returns it and how long it took."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            b"POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {secret}\r\n".encode()
            + f"Content-Type: {content_type}\r\n".encode()
            + f"Content-Length: {announced}\r\n\r\n".encode()
            + first_part
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer, time.monotonic() - began


TRICKLED_BODIES = {
    "json": ("application/json", b'{"image": "aGk'),
    "multipart": (
        "multipart/form-data; boundary=cut",
        b'--cut\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0",
    ),
}


@pytest.mark.parametrize("kind", sorted(TRICKLED_BODIES))
def test_a_body_that_does_not_arrive_in_time_is_408_and_the_server_serves_on(
    tmp_path: Path, kind: str
) -> None:
    content_type, first_part = TRICKLED_BODIES[kind]
    server, _, secret = start_api(tmp_path, body_timeout_seconds=1.0)
    with server, authorised_client(server, secret) as client:
        answer, took = _trickle(server.port, secret, first_part, 5000, content_type)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer
        assert b"did not arrive within 1 s" in body
        # The answer came at the deadline, and the connection was closed after it.
        assert 0.9 < took < 10
        # Other clients were served meanwhile and after.
        response = client.post("/images", json={"image": b64(ZIDANE)})
        assert response.status_code == 200, response.text
        assert image_count(client) == 1

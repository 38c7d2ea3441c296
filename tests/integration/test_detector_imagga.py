"""The Imagga detector against a fake Imagga on loopback: real HTTP, Imagga's contract.

First the adapter on its own (mapping, parameters, clean-up, retries, errors), then the
whole API with ``IMAGETAG_DETECTOR=imagga``: what a client sees for each of Imagga's
answers, and that the image is stored whatever Imagga says.
"""

from __future__ import annotations

import base64
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagetag.adapters.detectors.imagga_http import ImaggaConfig, ImaggaHttpDetector
from imagetag.adapters.detectors.selection import build_detector
from imagetag.domain.detections import Thresholds
from imagetag.domain.errors import (
    DetectionFailed,
    DetectionRejected,
    DetectorUnavailable,
    InvalidInput,
)
from imagetag.entrypoints.container import build_container
from imagetag.entrypoints.settings import Settings, SettingsError
from tests.integration.test_http_api import assert_problem, authorised_client, b64, start_api
from tests.support.assets import BUS
from tests.support.fake_imagga import UNAUTHORISED_TEXT, FakeImagga, running_fake_imagga

BACKOFF = 0.05
PHOTO = BUS.read_bytes()

MakeDetector = Callable[..., ImaggaHttpDetector]


@pytest.fixture
def imagga() -> Iterator[FakeImagga]:
    with running_fake_imagga() as fake:
        yield fake


@pytest.fixture
def make_detector(imagga: FakeImagga) -> Iterator[MakeDetector]:
    """Detectors on the fake, with fast backoff; each closed after the test."""
    made: list[ImaggaHttpDetector] = []

    def make(**overrides: Any) -> ImaggaHttpDetector:
        values: dict[str, Any] = {
            "api_key": imagga.api_key,
            "api_secret": imagga.api_secret,
            "url": imagga.base_url,
            "backoff_seconds": BACKOFF,
            "timeout_seconds": 2.0,
        }
        values.update(overrides)
        detector = ImaggaHttpDetector(ImaggaConfig(**values))
        made.append(detector)
        return detector

    yield make
    for detector in made:
        detector.close()


def credentials_in(text: str, fake: FakeImagga) -> list[str]:
    basic = base64.b64encode(f"{fake.api_key}:{fake.api_secret}".encode()).decode()
    return [secret for secret in (fake.api_key, fake.api_secret, basic) if secret in text]


# --- the adapter ----------------------------------------------------------------------


async def test_tags_become_detections_with_confidence_scaled_to_0_1_and_no_box(
    make_detector: MakeDetector,
) -> None:
    detector = make_detector()

    found = await detector.detect(PHOTO)

    assert [d.name for d in found] == ["bus", "street sign", "vehicle"]
    assert [d.confidence for d in found] == pytest.approx([0.614, 0.45, 0.333])
    assert all(d.box is None and d.detector == detector.info for d in found)


async def test_the_image_is_uploaded_tagged_by_its_upload_id_and_the_upload_deleted(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    await make_detector(threshold=25, limit=2).detect(PHOTO)

    (upload,) = imagga.calls("POST", "/v2/uploads")
    (tagging,) = imagga.calls("GET", "/v2/tags")
    (upload_id,) = imagga.deleted
    assert upload.authorised
    assert tagging.query == {"image_upload_id": upload_id, "threshold": "25", "limit": "2"}
    assert imagga.uploads == {}


async def test_the_limit_caps_the_tags_and_the_threshold_drops_weak_ones(
    make_detector: MakeDetector,
) -> None:
    assert [d.name for d in await make_detector(limit=1).detect(PHOTO)] == ["bus"]
    assert [d.name for d in await make_detector(threshold=10).detect(PHOTO)] == [
        "bus",
        "street sign",
        "vehicle",
        "road",
    ]


async def test_a_confidence_threshold_for_one_call_is_imaggas_threshold_and_the_provenance(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    detector = make_detector()

    found = await detector.detect(PHOTO, Thresholds(confidence=0.5))

    assert [d.name for d in found] == ["bus"]
    assert found[0].detector.confidence_threshold == 0.5
    assert imagga.calls("GET", "/v2/tags")[0].query["threshold"] == "50"
    assert detector.info.confidence_threshold == 0.3


async def test_an_iou_threshold_is_refused_before_anything_is_sent(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    with pytest.raises(InvalidInput, match="IoU") as refused:
        await make_detector().detect(PHOTO, Thresholds(iou=0.5))

    assert refused.value.field == "iou"
    assert imagga.received == []


def test_info_names_imagga_its_threshold_limit_and_url_and_never_the_credentials(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    info = make_detector(threshold=40, limit=7).info

    assert (info.detector, info.model, info.library_version) == (
        "imagga",
        "imagga-tags",
        "imagga v2",
    )
    assert info.confidence_threshold == 0.4
    assert dict(info.parameters) == {"limit": "7", "url": imagga.base_url}
    assert credentials_in(repr(info), imagga) == []


async def test_a_rejected_image_is_the_callers_fault_and_its_upload_is_still_deleted(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.reject_images("Unsupported image format.")

    with pytest.raises(DetectionRejected, match=r"refused the image \(400: Unsupported image"):
        await make_detector().detect(PHOTO)

    assert len(imagga.deleted) == 1
    assert imagga.uploads == {}
    assert len(imagga.calls("GET", "/v2/tags")) == 1  # not retried


async def test_bytes_that_are_no_image_are_rejected_with_imaggas_reason(
    make_detector: MakeDetector,
) -> None:
    with pytest.raises(DetectionRejected, match="not a valid image"):
        await make_detector().detect(b"this is not an image")


async def test_bad_credentials_fail_at_once_and_neither_key_nor_secret_is_logged(
    imagga: FakeImagga, make_detector: MakeDetector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    detector = make_detector(api_secret="not-the-secret-but-also-private")

    with pytest.raises(DetectionFailed) as failed:
        await detector.detect(PHOTO)

    assert not isinstance(failed.value, DetectorUnavailable | DetectionRejected)
    assert "401" in str(failed.value)
    assert UNAUTHORISED_TEXT in str(failed.value)
    assert len(imagga.received) == 1
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("401" in r.getMessage() and UNAUTHORISED_TEXT in r.getMessage() for r in logged)
    for text in (caplog.text, str(failed.value)):
        assert "not-the-secret-but-also-private" not in text
        assert imagga.api_key not in text


async def test_server_errors_are_retried_with_growing_waits_until_one_succeeds(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.fail_next(2, 500, path="/v2/uploads")

    found = await make_detector(retries=2).detect(PHOTO)

    assert [d.name for d in found] == ["bus", "street sign", "vehicle"]
    uploads = imagga.calls("POST", "/v2/uploads")
    assert len(uploads) == 3
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(uploads)]
    assert gaps[0] >= BACKOFF * 0.9
    assert gaps[1] >= 2 * BACKOFF * 0.9


async def test_a_service_that_stays_down_is_unavailable_after_the_retries(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.fail_next(100, 503, text="Service temporarily unavailable")

    with pytest.raises(DetectorUnavailable, match="503: Service temporarily") as down:
        await make_detector(retries=2, default_retry_after=45).detect(PHOTO)

    assert down.value.retry_after == 45
    assert len(imagga.calls("POST", "/v2/uploads")) == 3
    assert "attempt 3 of 3" in str(down.value)


async def test_a_failure_after_the_upload_still_deletes_it(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.fail_next(100, 500, path="/v2/tags")

    with pytest.raises(DetectorUnavailable):
        await make_detector(retries=1).detect(PHOTO)

    assert len(imagga.calls("GET", "/v2/tags")) == 2
    assert len(imagga.deleted) == 1
    assert imagga.uploads == {}


async def test_too_many_requests_waits_as_long_as_imagga_asks_when_that_is_short(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.fail_next(1, 429, text="Too many requests", retry_after="1")
    started = time.monotonic()

    found = await make_detector(retries=1).detect(PHOTO)

    assert found
    assert time.monotonic() - started >= 0.9
    assert len(imagga.calls("POST", "/v2/uploads")) == 2


async def test_too_many_requests_with_a_long_retry_after_gives_up_at_once_and_passes_it_on(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.fail_next(100, 429, text="Too many requests", retry_after="120")

    with pytest.raises(DetectorUnavailable, match="429") as busy:
        await make_detector(retries=3).detect(PHOTO)

    assert busy.value.retry_after == 120
    assert len(imagga.received) == 1


async def test_a_slow_answer_times_out_and_is_retried(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.slow_next(1, 2.0, path="/v2/tags")

    found = await make_detector(timeout_seconds=0.3, retries=1).detect(PHOTO)

    assert found
    assert len(imagga.calls("GET", "/v2/tags")) == 2


async def test_answers_that_never_come_in_time_make_imagga_unavailable(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.slow_next(100, 2.0)

    with pytest.raises(DetectorUnavailable, match=r"no answer within 0\.3 s") as slow:
        await make_detector(timeout_seconds=0.3, retries=1).detect(PHOTO)

    assert slow.value.retry_after == 30
    assert len(imagga.calls("POST", "/v2/uploads")) == 2


async def test_a_dropped_connection_is_retried(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.drop_next(1, path="/v2/uploads")

    assert await make_detector(retries=1).detect(PHOTO)
    assert len(imagga.calls("POST", "/v2/uploads")) == 2


async def test_connections_that_keep_dropping_make_imagga_unavailable(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    imagga.drop_next(100)

    with pytest.raises(DetectorUnavailable, match="RemoteDisconnected"):
        await make_detector(retries=2).detect(PHOTO)

    assert len(imagga.calls("POST", "/v2/uploads")) == 3


async def test_nothing_listening_makes_imagga_unavailable(make_detector: MakeDetector) -> None:
    with running_fake_imagga() as gone:
        url = gone.base_url

    with pytest.raises(DetectorUnavailable, match="connection failed"):
        await make_detector(url=url, retries=0).detect(PHOTO)


async def test_a_tls_failure_is_ours_and_not_retried(
    imagga: FakeImagga, make_detector: MakeDetector
) -> None:
    plain_http_as_https = imagga.base_url.replace("http://", "https://")

    with pytest.raises(DetectionFailed, match="TLS") as failed:
        await make_detector(url=plain_http_as_https, retries=2).detect(PHOTO)

    assert not isinstance(failed.value, DetectorUnavailable)


async def test_a_closed_detector_fails_cleanly(make_detector: MakeDetector) -> None:
    detector = make_detector()
    detector.close()

    with pytest.raises(DetectionFailed, match="closed"):
        await detector.detect(PHOTO)


def test_imagga_is_chosen_by_name_with_its_settings(imagga: FakeImagga, tmp_path: Path) -> None:
    config = ImaggaConfig(api_key="k", api_secret="s", url=imagga.base_url + "/")

    def build(**extra: Any) -> Any:
        return build_detector(
            "imagga",
            yolo_model="yolo11n.pt",
            models_dir=tmp_path,
            config_dir=tmp_path,
            confidence=0.25,
            iou=0.7,
            allow_download=False,
            **extra,
        )

    detector = build(imagga=config)
    assert isinstance(detector, ImaggaHttpDetector)
    try:
        assert dict(detector.info.parameters)["url"] == imagga.base_url
    finally:
        detector.close()
    with pytest.raises(ValueError, match="Imagga settings"):
        build()


def test_the_config_never_shows_its_credentials() -> None:
    config = ImaggaConfig(api_key="acc_visible_key", api_secret="hidden-secret")

    assert "acc_visible_key" not in repr(config)
    assert "hidden-secret" not in repr(config)


# --- settings -------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["IMAGETAG_IMAGGA_KEY", "IMAGETAG_IMAGGA_SECRET"])
def test_imagga_without_a_key_or_secret_fails_at_start_naming_the_variable(
    tmp_path: Path, missing: str
) -> None:
    environ = {
        "IMAGETAG_DATA_DIR": str(tmp_path),
        "IMAGETAG_DETECTOR": "Imagga",
        "IMAGETAG_IMAGGA_KEY": "acc_key",
        "IMAGETAG_IMAGGA_SECRET": "secret",
    }
    del environ[missing]

    with pytest.raises(SettingsError, match=missing):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAGETAG_IMAGGA_URL", "ftp://api.imagga.com"),
        ("IMAGETAG_IMAGGA_THRESHOLD", "101"),
        ("IMAGETAG_IMAGGA_LIMIT", "0"),
        ("IMAGETAG_IMAGGA_TIMEOUT_SECONDS", "0"),
        ("IMAGETAG_IMAGGA_RETRIES", "-1"),
    ],
)
def test_a_bad_imagga_setting_fails_at_start_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({"IMAGETAG_DATA_DIR": str(tmp_path), variable: value})


def test_imagga_settings_are_read_and_reach_the_detector_without_showing_the_secret(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env(
        {
            "IMAGETAG_DATA_DIR": str(tmp_path),
            "IMAGETAG_DETECTOR": "imagga",
            "IMAGETAG_IMAGGA_KEY": "acc_key",
            "IMAGETAG_IMAGGA_SECRET": "the-secret",
            "IMAGETAG_IMAGGA_URL": "http://127.0.0.1:9/",
            "IMAGETAG_IMAGGA_THRESHOLD": "45",
            "IMAGETAG_IMAGGA_LIMIT": "5",
            "IMAGETAG_IMAGGA_RETRIES": "0",
        }
    )

    assert "the-secret" not in repr(settings)
    assert "acc_key" not in repr(settings)
    detector = build_container(settings).detector()
    assert isinstance(detector, ImaggaHttpDetector)
    try:
        assert detector.info.confidence_threshold == 0.45
        assert dict(detector.info.parameters) == {"limit": "5", "url": "http://127.0.0.1:9"}
    finally:
        detector.close()


# --- through the API ------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_imagga(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, FakeImagga]]:
    """The API with IMAGETAG_DETECTOR=imagga over one fake Imagga, reset for each test."""
    with running_fake_imagga() as fake:
        server, _, secret = start_api(
            tmp_path_factory.mktemp("imagga-api"),
            detector="imagga",
            imagga_url=fake.base_url,
            imagga_key=fake.api_key,
            imagga_secret=fake.api_secret,
            imagga_retries=1,
            imagga_backoff_seconds=BACKOFF,
            imagga_timeout_seconds=1.0,
        )
        with server, authorised_client(server, secret) as client:
            yield client, fake


@pytest.fixture
def api(api_imagga: tuple[httpx.Client, FakeImagga]) -> httpx.Client:
    api_imagga[1].reset()
    return api_imagga[0]


@pytest.fixture
def fake(api_imagga: tuple[httpx.Client, FakeImagga], api: httpx.Client) -> FakeImagga:
    return api_imagga[1]


def test_health_shows_the_imagga_detector_and_not_its_credentials(
    api: httpx.Client, fake: FakeImagga
) -> None:
    response = api.get("/health")

    detector = response.json()["detector"]
    assert detector["detector"] == "imagga"
    assert detector["model"] == "imagga-tags"
    assert detector["confidence_threshold"] == 0.3
    assert detector["parameters"] == {"limit": "20", "url": fake.base_url}
    assert credentials_in(response.text, fake) == []


def test_an_image_with_detection_gets_imaggas_tags_as_model_tags(
    api: httpx.Client, fake: FakeImagga
) -> None:
    response = api.post("/images", json={"image": b64(BUS), "detect": True})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["objects"] == ["bus", "street sign", "vehicle"]
    assert body["detection_status"] == "succeeded"
    assert {tag["source"] for tag in body["tags"]} == {"model"}
    assert {tag["model"]["detector"] for tag in body["tags"]} == {"imagga"}
    bus = next(tag for tag in body["tags"] if tag["name"] == "bus")
    assert bus["confidence"] == pytest.approx(0.614)
    assert api.get(f"/images/{body['id']}").json() == body
    assert len(fake.deleted) == 1


def test_detecting_again_with_a_confidence_threshold_asks_imagga_for_it(
    api: httpx.Client, fake: FakeImagga
) -> None:
    stored = api.post("/images", json={"image": b64(BUS)}).json()

    again = api.post(f"/images/{stored['id']}/detections", json={"confidence": 0.5})
    no_iou = api.post(f"/images/{stored['id']}/detections", json={"iou": 0.5})

    assert again.status_code == 200, again.text
    assert again.json()["objects"] == ["bus"]
    assert fake.calls("GET", "/v2/tags")[0].query["threshold"] == "50"
    assert_problem(no_iou, 400, "IoU")


def test_an_image_imagga_rejects_is_422_and_stored_with_detection_failed(
    api: httpx.Client, fake: FakeImagga
) -> None:
    fake.reject_images("Invalid image content.")

    response = api.post("/images", json={"image": b64(BUS), "detect": True})

    body = assert_problem(response, 422, "Invalid image content.")
    assert body["type"].endswith("/detection-rejected")
    kept = api.get(f"/images/{body['image_id']}").json()
    assert kept["detection_status"] == "failed"
    assert "Invalid image content." in kept["detection_error"]
    assert api.get(kept["content_url"]).content == BUS.read_bytes()


def test_credentials_imagga_refuses_are_502_and_never_shown_or_logged(
    api: httpx.Client, fake: FakeImagga, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    configured = (fake.api_key, fake.api_secret)
    fake.api_secret = "rotated-at-imagga"
    try:
        response = api.post("/images", json={"image": b64(BUS), "detect": True})
    finally:
        fake.api_key, fake.api_secret = configured

    body = assert_problem(response, 502, "credentials")
    kept = api.get(f"/images/{body['image_id']}")
    assert kept.json()["detection_status"] == "failed"
    for text in (response.text, kept.text, caplog.text):
        assert credentials_in(text, fake) == []
    assert any(r.levelno >= logging.ERROR and "401" in r.getMessage() for r in caplog.records)


def test_imagga_down_is_503_with_retry_after_and_the_image_is_stored(
    api: httpx.Client, fake: FakeImagga
) -> None:
    fake.fail_next(100, 500)

    response = api.post("/images", json={"image": b64(BUS), "detect": True})

    body = assert_problem(response, 503, "imagga is unavailable")
    assert response.headers["retry-after"] == "30"
    assert len(fake.calls("POST", "/v2/uploads")) == 2
    assert api.get(f"/images/{body['image_id']}").json()["detection_status"] == "failed"


def test_imagga_busy_is_503_with_imaggas_own_retry_after(
    api: httpx.Client, fake: FakeImagga
) -> None:
    fake.fail_next(100, 429, text="Too many requests", retry_after="90")

    response = api.post("/images", json={"image": b64(BUS), "detect": True})

    body = assert_problem(response, 503, "429")
    assert response.headers["retry-after"] == "90"
    assert api.get(f"/images/{body['image_id']}").status_code == 200


def test_imagga_timing_out_is_503_and_the_image_is_stored(
    api: httpx.Client, fake: FakeImagga
) -> None:
    fake.slow_next(100, 3.0)

    response = api.post("/images", json={"image": b64(BUS), "detect": True})

    body = assert_problem(response, 503, "no answer within 1 s")
    assert response.headers["retry-after"] == "30"
    assert api.get(f"/images/{body['image_id']}").status_code == 200

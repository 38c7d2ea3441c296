"""The S3 blob store over real HTTP, on moto's S3 server on loopback: what the blob-store
contract does not say (key layout, uploads, failures), its settings, and the API on it."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import pytest

from imagetag.adapters.blobs_fs import FileSystemBlobStore
from imagetag.adapters.blobs_s3 import MIN_PART_SIZE, S3BlobStore, S3StoreError
from imagetag.entrypoints.container import build_blob_store
from imagetag.entrypoints.settings import S3Location, Settings, SettingsError
from tests.integration.test_http_api import authorised_client, start_api
from tests.support.assets import BUS
from tests.support.postgres import free_port
from tests.support.s3 import S3Server, s3_server

# Imported fixtures are fixtures of this module.
__all__ = ["s3_server"]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys_in(server: S3Server, bucket: str) -> list[str]:
    listing = server.client.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


# --- Layout and uploads -----------------------------------------------------------------


async def test_a_blob_is_keyed_prefix_then_two_levels_of_its_digest(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    store = s3_server.store(bucket, "/team-a/blobs/")
    data = b"some image bytes"
    sha = digest(data)

    await store.put(sha, io.BytesIO(data))

    assert keys_in(s3_server, bucket) == [f"team-a/blobs/{sha[:2]}/{sha[2:4]}/{sha}"]


async def test_without_a_prefix_keys_start_at_the_bucket_root(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    data = b"other image bytes"
    sha = digest(data)

    await s3_server.store(bucket).put(sha, io.BytesIO(data))

    assert keys_in(s3_server, bucket) == [f"{sha[:2]}/{sha[2:4]}/{sha}"]


async def test_a_put_of_content_already_stored_uploads_nothing(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    store = s3_server.store(bucket, "blobs")
    data = b"the same content"
    sha = digest(data)
    await store.put(sha, io.BytesIO(data))
    # Changed behind the store's back: a second upload would put the content back.
    marker = b"not uploaded again"
    s3_server.client.put_object(Bucket=bucket, Key=store.key_for(sha), Body=marker)

    await store.put(sha, io.BytesIO(data))

    stored = s3_server.client.get_object(Bucket=bucket, Key=store.key_for(sha))
    assert stored["Body"].read() == marker


async def test_a_blob_over_the_part_size_goes_up_in_parts_and_round_trips(
    s3_server: S3Server,
) -> None:
    bucket = s3_server.new_bucket()
    store = s3_server.store(bucket, "blobs", part_size=MIN_PART_SIZE)
    data = os.urandom(2 * MIN_PART_SIZE + 12_345)
    sha = digest(data)

    await store.put(sha, io.BytesIO(data))

    head = s3_server.client.head_object(Bucket=bucket, Key=store.key_for(sha))
    # A multipart upload's ETag ends in the number of its parts.
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentLength"] == len(data)
    assert await store.get(sha) == data


async def test_a_blob_under_the_part_size_goes_up_in_one_request(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    store = s3_server.store(bucket, part_size=MIN_PART_SIZE)
    data = os.urandom(MIN_PART_SIZE - 1)

    await store.put(digest(data), io.BytesIO(data))

    head = s3_server.client.head_object(Bucket=bucket, Key=store.key_for(digest(data)))
    assert "-" not in head["ETag"]


def test_a_part_size_under_s3s_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3BlobStore("bucket", part_size=MIN_PART_SIZE - 1)


# --- Failures ---------------------------------------------------------------------------


async def test_an_endpoint_that_does_not_answer_fails_naming_its_setting(
    s3_server: S3Server,  # for its fake credentials: the failure must be the endpoint
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    store = S3BlobStore("bucket", endpoint_url=closed, max_attempts=1)
    sha = digest(b"x")

    unreachable = re.escape(closed)
    for call in (store.exists(sha), store.get(sha), store.put(sha, io.BytesIO(b"x"))):
        with pytest.raises(
            S3StoreError, match=rf"cannot reach {unreachable}.*IMAGETAG_S3_ENDPOINT_URL"
        ):
            await call


async def test_no_credentials_fail_naming_the_aws_variables(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = s3_server.store(s3_server.new_bucket())
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(S3StoreError, match=r"no AWS credentials.*AWS_ACCESS_KEY_ID") as raised:
        await store.exists(digest(b"x"))

    assert isinstance(raised.value, OSError)


async def test_a_missing_bucket_fails_naming_imagetag_blobs(s3_server: S3Server) -> None:
    store = s3_server.store("imagetag-no-such-bucket")

    with pytest.raises(S3StoreError, match=r"does not exist.*IMAGETAG_BLOBS"):
        await store.put(digest(b"x"), io.BytesIO(b"x"))
    with pytest.raises(S3StoreError, match=r"does not exist.*IMAGETAG_BLOBS"):
        await store.get(digest(b"x"))


async def test_an_error_message_never_carries_the_secret(s3_server: S3Server) -> None:
    store = s3_server.store("imagetag-no-such-bucket")

    with pytest.raises(S3StoreError) as raised:
        await store.put(digest(b"x"), io.BytesIO(b"x"))

    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in str(raised.value)
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in repr(store)


# --- Settings and wiring ----------------------------------------------------------------


def test_an_s3_url_selects_the_s3_store_with_its_bucket_and_prefix(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "IMAGETAG_DATA_DIR": str(tmp_path),
            "IMAGETAG_BLOBS": "s3://my-bucket/team-a/blobs/",
            "IMAGETAG_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "IMAGETAG_S3_REGION": "eu-west-1",
        }
    )

    assert settings.blobs_s3 == S3Location("my-bucket", "team-a/blobs")
    store = build_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    assert store.url == "s3://my-bucket/team-a/blobs"


def test_blobs_stay_on_disk_by_default_or_in_the_directory_given(tmp_path: Path) -> None:
    default = Settings.from_env({"IMAGETAG_DATA_DIR": str(tmp_path)})
    elsewhere = Settings.from_env(
        {"IMAGETAG_DATA_DIR": str(tmp_path), "IMAGETAG_BLOBS": str(tmp_path / "shared")}
    )

    assert default.blobs_s3 is None
    assert isinstance(build_blob_store(default), FileSystemBlobStore)
    assert default.blobs_dir == tmp_path / "blobs"
    assert elsewhere.blobs_s3 is None
    assert elsewhere.blobs_dir == tmp_path / "shared"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAGETAG_BLOBS", "gs://bucket/blobs"),
        ("IMAGETAG_BLOBS", "https://bucket.s3.amazonaws.com/blobs"),
        ("IMAGETAG_BLOBS", "s3://"),
        ("IMAGETAG_BLOBS", "s3:///blobs"),
        ("IMAGETAG_BLOBS", "s3://Upper_Case"),
        ("IMAGETAG_BLOBS", "s3://user:secret@bucket/blobs"),
        ("IMAGETAG_BLOBS", "s3://bucket/a//b"),
        ("IMAGETAG_BLOBS", "s3://bucket/../b"),
        ("IMAGETAG_BLOBS", "s3://bucket/blobs?versionId=1"),
        ("IMAGETAG_S3_ENDPOINT_URL", "minio:9000"),
        ("IMAGETAG_S3_ENDPOINT_URL", "ftp://minio:9000"),
        ("IMAGETAG_S3_ENDPOINT_URL", "http://key:secret@minio:9000"),
        ("IMAGETAG_S3_ENDPOINT_URL", "http://minio:port"),
        ("IMAGETAG_S3_REGION", "eu west 1"),
    ],
)
def test_a_bad_blob_setting_fails_at_start_naming_its_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({"IMAGETAG_DATA_DIR": str(tmp_path), variable: value})


# --- The API on S3 ----------------------------------------------------------------------


def test_the_api_stores_an_upload_in_the_bucket_and_serves_its_bytes(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    server, _, secret = start_api(
        tmp_path,
        blobs=f"s3://{bucket}/imagetag",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_region=s3_server.region,
    )
    photo = BUS.read_bytes()
    sha = digest(photo)

    with server, authorised_client(server, secret) as api:
        stored = api.post("/images", files={"file": ("bus.jpg", photo, "image/jpeg")})
        assert stored.status_code == 200, stored.text
        content = api.get(f"/images/{stored.json()['id']}/content")

    assert keys_in(s3_server, bucket) == [f"imagetag/{sha[:2]}/{sha[2:4]}/{sha}"]
    assert content.status_code == 200
    assert content.content == photo
    assert not (tmp_path / "data" / "blobs").exists()

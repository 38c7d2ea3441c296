"""A real S3-compatible server on loopback for the S3 blob store: moto in server mode.

One server per test process, started on first use (by the ``s3_server`` session fixture or
the blob-store contract's S3 builder) and stopped at exit. Each test takes a bucket of its
own. Starting it gives the process fake AWS credentials and hides any real ones (profiles,
``~/.aws``, the instance metadata service), so no test can reach a real account.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from imagetag.adapters.blobs_s3 import S3BlobStore
from tests.support.postgres import free_port

REGION = "us-east-1"
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "imagetag-test-key",
    "AWS_SECRET_ACCESS_KEY": "imagetag-test-secret",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Other ways boto3 would find credentials or an endpoint of a real account.
REAL_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server: its endpoint and region."""

    endpoint_url: str
    region: str = REGION

    @functools.cached_property
    def client(self) -> Any:
        """A plain boto3 client, to arrange and inspect buckets behind the store's back."""
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region
        )

    def new_bucket(self) -> str:
        bucket = f"imagetag-{uuid.uuid4().hex[:20]}"
        self.client.create_bucket(Bucket=bucket)
        return bucket

    def store(self, bucket: str, prefix: str = "", **options: Any) -> S3BlobStore:
        return S3BlobStore(
            bucket, prefix, endpoint_url=self.endpoint_url, region=self.region, **options
        )


_lock = threading.Lock()
_running: list[S3Server] = []


def moto_s3_server() -> S3Server:
    """The process's moto server, started on first call."""
    with _lock:
        if not _running:
            for variable in REAL_AWS_VARIABLES:
                os.environ.pop(variable, None)
            os.environ.update(FAKE_AWS_ENVIRONMENT)
            port = free_port()
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            atexit.register(server.stop)
            _running.append(S3Server(f"http://127.0.0.1:{port}"))
        return _running[0]


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    """The moto server on loopback; import this fixture into the test module that uses it."""
    return moto_s3_server()

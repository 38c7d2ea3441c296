"""Content-addressed blob store in an S3 bucket (AWS S3, MinIO or any S3-compatible server).

Objects are keyed ``<prefix>/ab/cd/<sha256>``, the disk store's layout under a prefix.
Every boto3 call runs in a worker thread, off the event loop.

Memory: ``put`` reads the caller's file object, so an upload holds at most one part in
memory. A blob under ``part_size`` is sent in one PUT; a larger one goes as a multipart
upload, one part at a time (s3transfer reads a part, sends it and drops it before reading
the next).

Failures: a missing object is ``KeyError``, as from the disk store. Anything else that
keeps the store from answering (no or refused credentials, an endpoint that does not
answer, a missing bucket, another region) is :class:`S3StoreError`, an ``OSError`` like the
disk store's I/O failures, whose message names the setting to fix. Credentials come from
boto3's usual chain (``AWS_*`` variables, ``~/.aws``, a task or instance role) and never
appear in a message.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as EndpointUnreachable

_SHA256 = re.compile(r"[0-9a-f]{64}")
MIB = 1024 * 1024
# S3 refuses parts under 5 MiB (except the last one).
MIN_PART_SIZE = 5 * MIB
DEFAULT_PART_SIZE = 8 * MIB
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_CREDENTIALS_REFUSED = frozenset(
    {
        "403",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)
_WRONG_REGION = frozenset(
    {
        "301",
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
    }
)


class S3StoreError(OSError):
    """The S3 store cannot answer: credentials, endpoint, bucket or region; the message
    names the setting to fix."""


class PutOnCommit:
    """A staged blob of a store that writes it all on commit."""

    def __init__(self, store: S3BlobStore, sha256: str, source: IO[bytes]) -> None:
        self._store = store
        self._sha256 = sha256
        self._source: IO[bytes] | None = source

    async def commit(self) -> None:
        if self._source is not None:
            await self._store.put(self._sha256, self._source)
            self._source = None

    async def discard(self) -> None:
        self._source = None


class S3BlobStore:
    """Blobs at ``s3://bucket/prefix/ab/cd/abcd...``; ``put`` of stored content sends nothing.

    ``endpoint_url`` points at an S3-compatible server (MinIO, moto) and switches to
    path-style addressing, which those servers expect; ``region`` defaults to boto3's
    (``AWS_REGION``, ``~/.aws/config``). ``part_size`` bounds both the single-PUT size and
    each multipart part.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_attempts: int = 3,
        connect_timeout_seconds: float = 5.0,
        read_timeout_seconds: float = 60.0,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 blob store needs a bucket")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._endpoint_url = endpoint_url
        self._region = region
        self._config = Config(
            region_name=region,
            connect_timeout=connect_timeout_seconds,
            read_timeout=read_timeout_seconds,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            # As many connections as the default executor has threads to use them.
            max_pool_connections=32,
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        # No threads of its own: the call already runs in a worker thread, and sending one
        # part at a time is what keeps a single part in memory.
        self._transfer = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size, use_threads=False
        )
        self._client_lock = threading.Lock()
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r}, endpoint_url={self._endpoint_url!r})"

    @property
    def url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    def key_for(self, sha256: str) -> str:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        key = f"{sha256[:2]}/{sha256[2:4]}/{sha256}"
        return f"{self._prefix}/{key}" if self._prefix else key

    async def put(self, sha256: str, source: IO[bytes]) -> None:
        key = self.key_for(sha256)
        await asyncio.to_thread(self._put, key, source)

    async def stage(self, sha256: str, source: IO[bytes]) -> PutOnCommit:
        # An object is visible the moment its PUT ends, so nothing is sent until commit.
        self.key_for(sha256)
        return PutOnCommit(self, sha256, source)

    async def get(self, sha256: str) -> bytes:
        key = self.key_for(sha256)
        data = await asyncio.to_thread(self._get, key)
        if data is None:
            raise KeyError(sha256)
        return data

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        key = self.key_for(sha256)
        body = await asyncio.to_thread(self._open, key)
        if body is None:
            raise KeyError(sha256)
        return self._chunks(key, body)

    async def exists(self, sha256: str) -> bool:
        key = self.key_for(sha256)
        return await asyncio.to_thread(self._exists, key)

    # --- in worker threads ------------------------------------------------------------

    def _s3(self) -> Any:
        # Built on first use, in a worker thread: resolving credentials may ask the
        # instance metadata service. A client is thread-safe once built; a session is not.
        with self._client_lock:
            if self._client is None:
                session = boto3.session.Session()
                self._client = session.client(
                    "s3", endpoint_url=self._endpoint_url, config=self._config
                )
            return self._client

    def _exists(self, key: str) -> bool:
        try:
            self._s3().head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise self._failure("HEAD", key, error) from None
        except BotoCoreError as error:
            raise self._failure("HEAD", key, error) from None
        return True

    def _put(self, key: str, source: IO[bytes]) -> None:
        if self._exists(key):
            return
        source.seek(0)
        try:
            self._s3().upload_fileobj(source, self._bucket, key, Config=self._transfer)
        except (ClientError, BotoCoreError) as error:
            raise self._failure("PUT", key, error) from None

    def _get(self, key: str) -> bytes | None:
        body = self._open(key)
        if body is None:
            return None
        with body:
            return self._read(key, body, None)

    def _open(self, key: str) -> Any:
        try:
            return self._s3().get_object(Bucket=self._bucket, Key=key)["Body"]
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise self._failure("GET", key, error) from None
        except BotoCoreError as error:
            raise self._failure("GET", key, error) from None

    async def _chunks(self, key: str, body: Any) -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(self._read, key, body):
                yield chunk
        finally:
            body.close()

    def _read(self, key: str, body: Any, size: int | None = MIB) -> bytes:
        """Up to ``size`` bytes of an object's body (None: the rest of it)."""
        try:
            chunk: bytes = body.read(size)
        except BotoCoreError as error:
            raise self._failure("GET", key, error) from None
        return chunk

    def _failure(self, operation: str, key: str, error: Exception) -> S3StoreError:
        where = f"{operation} s3://{self._bucket}/{key}"
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return S3StoreError(
                f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or give the task a role"
            )
        if isinstance(error, EndpointUnreachable | HTTPClientError):
            endpoint = self._endpoint_url or "AWS S3"
            return S3StoreError(
                f"{where}: cannot reach {endpoint} (IMAGETAG_S3_ENDPOINT_URL, "
                f"IMAGETAG_S3_REGION): {error}"
            )
        if isinstance(error, ClientError):
            code = _code(error)
            if code == "NoSuchBucket":
                return S3StoreError(
                    f"{where}: bucket {self._bucket!r} does not exist (IMAGETAG_BLOBS)"
                )
            if code in _CREDENTIALS_REFUSED:
                return S3StoreError(
                    f"{where}: S3 refused the credentials ({code}); check AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and that they may "
                    "s3:GetObject, s3:PutObject and s3:ListBucket on the bucket"
                )
            if code in _WRONG_REGION:
                return S3StoreError(
                    f"{where}: the bucket is in another region ({code}); "
                    "set IMAGETAG_S3_REGION to the bucket's region"
                )
            message = error.response.get("Error", {}).get("Message", "")
            return S3StoreError(f"{where}: S3 answered {code} {message}".rstrip())
        return S3StoreError(f"{where}: {error}")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))

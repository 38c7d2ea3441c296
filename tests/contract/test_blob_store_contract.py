"""The BlobStore port: content-addressed bytes, the same from every store."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from imagetag.ports.blobs import BlobStore


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_stored_bytes_read_back_and_exist(blob_store: BlobStore) -> None:
    data = b"\x89PNG\r\n\x1a\n some pixels"

    assert not await blob_store.exists(digest(data))
    await blob_store.put(digest(data), io.BytesIO(data))

    assert await blob_store.exists(digest(data))
    assert await blob_store.get(digest(data)) == data


async def test_storing_the_same_digest_again_is_a_no_op(blob_store: BlobStore) -> None:
    data = b"the same content"

    await blob_store.put(digest(data), io.BytesIO(data))
    await blob_store.put(digest(data), io.BytesIO(data))

    assert await blob_store.get(digest(data)) == data


async def test_blobs_are_kept_apart_by_digest(blob_store: BlobStore) -> None:
    first, second = b"first", b"second"
    await blob_store.put(digest(first), io.BytesIO(first))
    await blob_store.put(digest(second), io.BytesIO(second))

    assert await blob_store.get(digest(first)) == first
    assert await blob_store.get(digest(second)) == second


async def test_reading_a_missing_digest_raises_key_error(blob_store: BlobStore) -> None:
    missing = digest(b"never stored")

    assert not await blob_store.exists(missing)
    with pytest.raises(KeyError):
        await blob_store.get(missing)


MALFORMED = {
    "empty": "",
    "short": "abc",
    "upper-case": "A" * 64,
    "not-hex": "g" * 64,
    "63-digits": "0" * 63,
    "65-digits": "0" * 65,
    "parent-path": "../" + "0" * 61,
    "path-separator": "0" * 32 + "/" + "0" * 31,
}


@pytest.mark.parametrize("malformed", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_digest_is_refused(blob_store: BlobStore, malformed: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        await blob_store.put(malformed, io.BytesIO(b"data"))
    with pytest.raises(ValueError, match="sha256"):
        await blob_store.get(malformed)
    with pytest.raises(ValueError, match="sha256"):
        await blob_store.exists(malformed)


async def test_a_large_blob_round_trips_byte_for_byte(blob_store: BlobStore) -> None:
    data = os.urandom(8 * 1024 * 1024 + 7)

    await blob_store.put(digest(data), io.BytesIO(data))

    assert await blob_store.get(digest(data)) == data


async def test_a_blob_opened_streams_its_bytes_in_chunks_of_at_most_a_megabyte(
    blob_store: BlobStore,
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    await blob_store.put(digest(data), io.BytesIO(data))

    chunks = [chunk async for chunk in await blob_store.open(digest(data))]

    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= 1024 * 1024 for chunk in chunks)


async def test_a_small_blob_opened_streams_whole(blob_store: BlobStore) -> None:
    data = b"tiny"
    await blob_store.put(digest(data), io.BytesIO(data))

    assert [chunk async for chunk in await blob_store.open(digest(data))] == [data]


async def test_opening_a_missing_digest_raises_key_error_before_any_chunk(
    blob_store: BlobStore,
) -> None:
    with pytest.raises(KeyError):
        await blob_store.open(digest(b"never stored"))
    with pytest.raises(ValueError, match="sha256"):
        await blob_store.open("not a digest")


# Staging: written ahead of the decision to keep it.


async def test_staged_bytes_are_unseen_until_committed(blob_store: BlobStore) -> None:
    data = b"staged, then kept"
    staged = await blob_store.stage(digest(data), io.BytesIO(data))

    assert not await blob_store.exists(digest(data))
    with pytest.raises(KeyError):
        await blob_store.get(digest(data))

    await staged.commit()

    assert await blob_store.get(digest(data)) == data


async def test_discarded_bytes_are_never_stored(blob_store: BlobStore) -> None:
    data = b"staged, then refused"
    staged = await blob_store.stage(digest(data), io.BytesIO(data))

    await staged.discard()

    assert not await blob_store.exists(digest(data))


async def test_discarding_stored_content_keeps_it(blob_store: BlobStore) -> None:
    data = b"stored before it was staged again"
    await blob_store.put(digest(data), io.BytesIO(data))

    await (await blob_store.stage(digest(data), io.BytesIO(data))).discard()

    assert await blob_store.get(digest(data)) == data


async def test_a_committed_blob_stays_when_committed_again_or_discarded(
    blob_store: BlobStore,
) -> None:
    data = b"committed once"
    staged = await blob_store.stage(digest(data), io.BytesIO(data))

    await staged.commit()
    await staged.commit()
    await staged.discard()

    assert await blob_store.get(digest(data)) == data


async def test_the_same_content_staged_twice_is_stored_once_either_way(
    blob_store: BlobStore,
) -> None:
    # Two requests with the same bytes at once: whichever commits, the content is stored.
    data = b"uploaded twice at once"
    first = await blob_store.stage(digest(data), io.BytesIO(data))
    second = await blob_store.stage(digest(data), io.BytesIO(data))

    await second.commit()
    await first.commit()

    assert await blob_store.get(digest(data)) == data


async def test_staging_refuses_a_malformed_digest(blob_store: BlobStore) -> None:
    with pytest.raises(ValueError, match="sha256"):
        await blob_store.stage("not a digest", io.BytesIO(b"data"))

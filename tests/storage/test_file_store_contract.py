"""The FileStore contract, run against every backend in ``conftest.FILE_STORE_BACKENDS``."""
from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from violet_grpc import errors
from violet_grpc.storage import FileStore, StoredFile
from violet_grpc.storage.files import FILE_ID_LENGTH

from .conftest import FileStoreBackend, OpenedFileStore


async def test_put_then_get_returns_identical_bytes(file_store: FileStore) -> None:
    data = bytes(range(256)) * 4 + b"\x00\xff"
    record = await file_store.put(data, content_type="audio/flac", filename="clip.flac")

    got, body = await file_store.get(record.file_id)

    assert body == data
    assert got == record
    assert await file_store.stat(record.file_id) == record
    assert record.size == len(data)
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert record.create_time.tzinfo is not None


async def test_empty_file_round_trips(file_store: FileStore) -> None:
    record = await file_store.put(b"", content_type="text/plain")
    got, body = await file_store.get(record.file_id)
    assert body == b""
    assert got.size == 0


async def test_file_ids_are_content_addressed(opened_file_store: OpenedFileStore) -> None:
    store = opened_file_store.store
    first = await store.put(b"same bytes", content_type="text/plain", filename="a.txt")
    objects_after_first = await opened_file_store.raw_objects()
    again = await store.put(b"same bytes", content_type="text/plain", filename="a.txt")
    other = await store.put(b"other bytes", content_type="text/plain", filename="a.txt")

    assert again.file_id == first.file_id
    assert again == first  # storing again is a no-op: the first record stands
    assert other.file_id != first.file_id
    assert len(first.file_id) == FILE_ID_LENGTH
    assert first.file_id == hashlib.sha256(b"same bytes").hexdigest()[:FILE_ID_LENGTH]
    # Stored once: the second put of the same bytes added nothing underneath.
    assert objects_after_first
    objects = await opened_file_store.raw_objects()
    assert len(objects) == 2 * len(objects_after_first)


async def test_content_type_and_filename_are_kept(file_store: FileStore) -> None:
    record = await file_store.put(b"RIFF....WAVE", content_type="audio/wav", filename="my talk (final).wav")
    got = await file_store.stat(record.file_id)
    assert got.content_type == "audio/wav"
    assert got.filename == "my talk (final).wav"


async def test_unknown_id_is_not_found(file_store: FileStore) -> None:
    unknown = "0" * FILE_ID_LENGTH
    with pytest.raises(errors.NotFound):
        await file_store.get(unknown)
    with pytest.raises(errors.NotFound):
        await file_store.stat(unknown)


@pytest.mark.parametrize(
    "junk",
    ["../etc/passwd", "", "../../" + "a" * 26, "a" * (FILE_ID_LENGTH - 1), "a" * (FILE_ID_LENGTH + 1), "g" * FILE_ID_LENGTH,
     "ab/" + "c" * (FILE_ID_LENGTH - 3), "\x00" * FILE_ID_LENGTH],
)
async def test_junk_ids_are_not_found(file_store: FileStore, junk: str) -> None:
    await file_store.put(b"something", content_type="text/plain")
    with pytest.raises(errors.NotFound):
        await file_store.get(junk)
    with pytest.raises(errors.NotFound):
        await file_store.stat(junk)


async def test_upper_case_id_of_a_stored_file_is_not_found(file_store: FileStore) -> None:
    record = await file_store.put(b"case matters", content_type="text/plain")
    assert record.file_id != record.file_id.upper()
    with pytest.raises(errors.NotFound):
        await file_store.get(record.file_id.upper())


async def test_large_blob_round_trips(file_store: FileStore) -> None:
    data = os.urandom(5 * 1024 * 1024)
    record = await file_store.put(data, content_type="application/octet-stream", filename="big.bin")
    got, body = await file_store.get(record.file_id)
    assert got.size == len(data)
    assert body == data


async def test_concurrent_puts_of_the_same_bytes_agree(opened_file_store: OpenedFileStore) -> None:
    store = opened_file_store.store
    data = os.urandom(256 * 1024)
    records: list[StoredFile] = await asyncio.gather(
        *(store.put(data, content_type="audio/ogg", filename="race.ogg") for _ in range(16))
    )

    assert {r.file_id for r in records} == {records[0].file_id}
    stored, body = await store.get(records[0].file_id)
    assert body == data
    # Every caller got the record the store kept, not one that lost the race.
    assert all(r == stored for r in records)
    # One object set, no leftovers from the losers (temporary files included): a second,
    # uncontended file adds exactly as many objects as the contended one left.
    objects = await opened_file_store.raw_objects()
    await store.put(b"x", content_type="text/plain")
    assert len(await opened_file_store.raw_objects()) == 2 * len(objects)


async def test_concurrent_puts_of_different_bytes_all_land(file_store: FileStore) -> None:
    blobs = [os.urandom(1024) for _ in range(20)]
    records = await asyncio.gather(*(file_store.put(b, content_type="text/plain") for b in blobs))
    for blob, record in zip(blobs, records):
        assert (await file_store.get(record.file_id))[1] == blob


async def test_unwritable_store_is_unavailable_and_leaves_nothing(file_backend: FileStoreBackend) -> None:
    opened = await file_backend.open(writable=False)
    data = b"cannot land"
    with pytest.raises(errors.Unavailable) as caught:
        await opened.store.put(data, content_type="text/plain", filename="x.txt")
    assert caught.value.reason == "FILE_STORE_UNWRITABLE"

    assert await opened.raw_objects() == []
    file_id = hashlib.sha256(data).hexdigest()[:FILE_ID_LENGTH]
    with pytest.raises(errors.NotFound):
        await opened.store.get(file_id)

"""FileStore on Firebase Cloud Storage (through ``firebase-admin``): the production backend.

URI: ``gs://BUCKET[/PREFIX]``. One object per file, ``PREFIX/ab/<file_id>``: the bytes, with
the content type as the object's content type and the record (file name, SHA-256, creation
time) as custom metadata, so a file is one object and is never half-described.

Writes are content-addressed and idempotent: an upload carries ``ifGenerationMatch=0`` (create
only), so when two proxy replicas store the same bytes exactly one object is written and the
loser reads the winner's record. Within one process, puts of the same id are also serialized,
which saves re-uploading large files and keeps concurrent callers on one record even where the
server ignores preconditions (``gcp-storage-emulator`` does). Uploads are single requests, so
a failed write leaves no partial object.
"""
from __future__ import annotations

import asyncio
import re
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from violet_grpc import errors
from violet_grpc.storage._firebase import STORAGE_EMULATOR_ENV, close_app, open_app
from violet_grpc.storage.files import StoredFile, content_id, is_valid_file_id

#: Uploads up to this size go in one request (larger ones are resumable, chunked by the SDK).
_CHUNK_BYTES = 16 * 1024 * 1024


class FirebaseFileStore:
    """Content-addressed files in one Cloud Storage bucket (under an optional prefix)."""

    backend = "gcs"

    def __init__(self, bucket: str, prefix: str = "", *, credentials: str | None = None, max_workers: int = 8) -> None:
        from firebase_admin import storage

        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self._app = open_app("storage", STORAGE_EMULATOR_ENV, credentials, {"storageBucket": bucket})
        self._bucket = storage.bucket(bucket, app=self._app)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="gcs-files")
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @classmethod
    def from_uri(cls, uri: str, *, credentials: str | None = None) -> FirebaseFileStore:
        """Opens ``gs://BUCKET[/PREFIX]``."""
        parsed = urlparse(uri)
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", parsed.netloc or ""):
            raise errors.InvalidArgument(
                f"bad Cloud Storage URI {uri!r}: expected gs://BUCKET[/PREFIX]",
                reason="BAD_STORE_URI", metadata={"uri": uri},
            )
        return cls(parsed.netloc, parsed.path, credentials=credentials)

    def object_name(self, file_id: str) -> str:
        """Where a file's object lives in the bucket."""
        return f"{self.prefix}/{file_id[:2]}/{file_id}" if self.prefix else f"{file_id[:2]}/{file_id}"

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def put(self, data: bytes, *, content_type: str, filename: str = "") -> StoredFile:
        file_id, digest = content_id(data)
        lock = self._locks.get(file_id)
        if lock is None:
            lock = self._locks[file_id] = asyncio.Lock()
        async with lock:
            return await self._run(self._put, data, file_id, digest, content_type, filename)

    async def get(self, file_id: str) -> tuple[StoredFile, bytes]:
        return await self._run(self._get, file_id)

    async def stat(self, file_id: str) -> StoredFile:
        return await self._run(self._stat, file_id)

    async def close(self) -> None:
        """Releases the SDK's connections."""
        await self._run(close_app, self._app)
        self._executor.shutdown(wait=True)

    def _put(self, data: bytes, file_id: str, digest: str, content_type: str, filename: str) -> StoredFile:
        from google.api_core import exceptions as gexc

        try:
            return self._stat(file_id)
        except errors.NotFound:
            pass
        record = StoredFile(
            file_id=file_id,
            content_type=content_type or "application/octet-stream",
            size=len(data),
            filename=filename,
            sha256=digest,
            create_time=datetime.now(timezone.utc),
        )
        blob = self._bucket.blob(self.object_name(file_id), chunk_size=_CHUNK_BYTES if len(data) > _CHUNK_BYTES else None)
        blob.metadata = {"filename": filename, "sha256": digest, "create_time": record.create_time.isoformat()}
        try:
            blob.upload_from_string(data, content_type=record.content_type, if_generation_match=0)
        except gexc.PreconditionFailed:
            # Another writer stored the same bytes first: its record stands.
            return self._stat(file_id)
        except (gexc.GoogleAPICallError, OSError) as exc:
            raise errors.Unavailable(
                f"the file store gs://{self.bucket_name} cannot write: {exc}",
                reason="FILE_STORE_UNWRITABLE",
                metadata={"bucket": self.bucket_name},
            ) from exc
        return record

    def _get(self, file_id: str) -> tuple[StoredFile, bytes]:
        from google.api_core import exceptions as gexc

        blob = self._blob(file_id)
        try:
            # Pinned to the generation just read, so bytes and record always match.
            data = blob.download_as_bytes(if_generation_match=blob.generation)
        except gexc.NotFound:
            raise _not_found(file_id) from None
        except (gexc.GoogleAPICallError, OSError) as exc:
            raise _unavailable(self.bucket_name, exc) from exc
        return _record(file_id, blob), data

    def _stat(self, file_id: str) -> StoredFile:
        return _record(file_id, self._blob(file_id))

    def _blob(self, file_id: str) -> Any:
        from google.api_core import exceptions as gexc

        if not is_valid_file_id(file_id):
            raise _not_found(file_id)
        try:
            blob = self._bucket.get_blob(self.object_name(file_id))
        except gexc.NotFound:
            blob = None
        except (gexc.GoogleAPICallError, OSError) as exc:
            raise _unavailable(self.bucket_name, exc) from exc
        if blob is None:
            raise _not_found(file_id)
        return blob


def _record(file_id: str, blob: Any) -> StoredFile:
    meta = blob.metadata or {}
    created = meta.get("create_time")
    return StoredFile(
        file_id=file_id,
        content_type=blob.content_type or "application/octet-stream",
        size=int(blob.size or 0),
        filename=meta.get("filename", ""),
        sha256=meta.get("sha256", ""),
        create_time=datetime.fromisoformat(created) if created else blob.time_created,
    )


def _not_found(file_id: str) -> errors.NotFound:
    return errors.NotFound(f"no file {file_id!r}", reason="FILE_NOT_FOUND", metadata={"file_id": file_id})


def _unavailable(bucket: str, exc: Exception) -> errors.Unavailable:
    return errors.Unavailable(f"the file store gs://{bucket} cannot be read: {exc}",
                              reason="FILE_STORE_UNAVAILABLE", metadata={"bucket": bucket})

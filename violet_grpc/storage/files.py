"""The FileStore contract: content-addressed blobs with a content type and a name."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

#: Length of a file id: the first 32 hex digits (128 bits) of the content's SHA-256.
FILE_ID_LENGTH = 32


@dataclass(frozen=True)
class StoredFile:
    """What a store knows about one file besides its bytes."""

    file_id: str
    content_type: str
    size: int
    filename: str
    sha256: str
    create_time: datetime


class FileStore(Protocol):
    """Where uploads and results live. Writes are atomic and idempotent (same bytes, same id)."""

    #: Short backend name shown in status ("local", "gcs").
    backend: str

    async def put(self, data: bytes, *, content_type: str, filename: str = "") -> StoredFile:
        """Stores bytes and returns their record; storing the same bytes again is a no-op."""
        ...

    async def get(self, file_id: str) -> tuple[StoredFile, bytes]:
        """Returns a file's record and bytes; raises NotFound for an unknown id."""
        ...

    async def stat(self, file_id: str) -> StoredFile:
        """Returns a file's record; raises NotFound for an unknown id."""
        ...


def content_id(data: bytes) -> tuple[str, str]:
    """The file id and full SHA-256 hex digest of some bytes."""
    digest = hashlib.sha256(data).hexdigest()
    return digest[:FILE_ID_LENGTH], digest


def is_valid_file_id(file_id: str) -> bool:
    """Whether a string can be a file id (guards paths and queries against junk)."""
    return len(file_id) == FILE_ID_LENGTH and all(c in "0123456789abcdef" for c in file_id)

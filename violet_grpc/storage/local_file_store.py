"""FileStore on a local directory: the embedded default.

Layout: ``ROOT/ab/<file_id>`` for bytes and ``ROOT/ab/<file_id>.json`` for the record.
Writes go to a temporary file that is renamed into place, so a crash or a full disk never
leaves a half-written file under a real id.
"""
from __future__ import annotations

import asyncio
import errno
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from violet_grpc import errors
from violet_grpc.storage.files import StoredFile, content_id, is_valid_file_id


class LocalFileStore:
    """Content-addressed files under one directory."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    async def put(self, data: bytes, *, content_type: str, filename: str = "") -> StoredFile:
        return await asyncio.to_thread(self._put, data, content_type, filename)

    async def get(self, file_id: str) -> tuple[StoredFile, bytes]:
        return await asyncio.to_thread(self._get, file_id)

    async def stat(self, file_id: str) -> StoredFile:
        return await asyncio.to_thread(self._stat, file_id)

    def _paths(self, file_id: str) -> tuple[Path, Path]:
        folder = self.root / file_id[:2]
        return folder / file_id, folder / f"{file_id}.json"

    def _put(self, data: bytes, content_type: str, filename: str) -> StoredFile:
        file_id, digest = content_id(data)
        blob, meta = self._paths(file_id)
        if meta.exists():
            return self._stat(file_id)
        record = StoredFile(
            file_id=file_id,
            content_type=content_type or "application/octet-stream",
            size=len(data),
            filename=filename,
            sha256=digest,
            create_time=datetime.now(timezone.utc),
        )
        try:
            blob.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(blob, data)
            # The record is published without replacing one a concurrent put of the same
            # bytes got in first, so every caller returns the record that stays stored.
            if not _atomic_create(meta, json.dumps(_record_to_json(record)).encode()):
                return self._stat(file_id)
        except OSError as exc:
            raise errors.Unavailable(
                f"the file store at {self.root} cannot write: {exc.strerror or exc}",
                reason="FILE_STORE_UNWRITABLE",
                metadata={"root": str(self.root)},
            ) from exc
        return record

    def _get(self, file_id: str) -> tuple[StoredFile, bytes]:
        record = self._stat(file_id)
        blob, _ = self._paths(file_id)
        return record, blob.read_bytes()

    def _stat(self, file_id: str) -> StoredFile:
        if not is_valid_file_id(file_id):
            raise errors.NotFound(f"no file {file_id!r}", reason="FILE_NOT_FOUND", metadata={"file_id": file_id})
        blob, meta = self._paths(file_id)
        if not (meta.exists() and blob.exists()):
            raise errors.NotFound(f"no file {file_id!r}", reason="FILE_NOT_FOUND", metadata={"file_id": file_id})
        return _record_from_json(json.loads(meta.read_text()))


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_create(path: Path, data: bytes) -> bool:
    """Writes ``path`` atomically unless it exists; False when another writer got there first."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # No hard links on this file system: fall back to last-writer-wins.
            os.replace(tmp, path)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _record_to_json(record: StoredFile) -> dict[str, object]:
    return {
        "file_id": record.file_id,
        "content_type": record.content_type,
        "size": record.size,
        "filename": record.filename,
        "sha256": record.sha256,
        "create_time": record.create_time.isoformat(),
    }


def _record_from_json(data: dict[str, object]) -> StoredFile:
    return StoredFile(
        file_id=str(data["file_id"]),
        content_type=str(data["content_type"]),
        size=int(data["size"]),  # type: ignore[arg-type]
        filename=str(data.get("filename", "")),
        sha256=str(data["sha256"]),
        create_time=datetime.fromisoformat(str(data["create_time"])),
    )

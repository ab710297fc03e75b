"""Storage backends, chosen by URI.

``file:///path`` (or a plain path) → :class:`LocalFileStore`;
``sqlite:///path`` (or a path ending in ``.db``) → :class:`SqliteTaskStore`.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from violet_grpc import errors
from violet_grpc.storage.files import FileStore, StoredFile
from violet_grpc.storage.local_file_store import LocalFileStore
from violet_grpc.storage.sqlite_task_store import SqliteTaskStore
from violet_grpc.storage.task_store import RetryPolicy, SubmitOutcome, TaskStore

__all__ = [
    "FileStore",
    "LocalFileStore",
    "RetryPolicy",
    "SqliteTaskStore",
    "StoredFile",
    "SubmitOutcome",
    "TaskStore",
    "file_store_from_uri",
    "task_store_from_uri",
]


def file_store_from_uri(uri: str) -> FileStore:
    """Opens the file store a URI names."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return LocalFileStore(Path(parsed.path if parsed.scheme else uri))
    raise errors.InvalidArgument(
        f"unknown file store {uri!r}; supported: file:///PATH",
        reason="UNKNOWN_STORE_SCHEME",
        metadata={"uri": uri},
    )


def task_store_from_uri(uri: str) -> TaskStore:
    """Opens the task store a URI names."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        return SqliteTaskStore(Path(parsed.path))
    if parsed.scheme == "" and uri.endswith((".db", ".sqlite", ".sqlite3")):
        return SqliteTaskStore(Path(uri))
    raise errors.InvalidArgument(
        f"unknown task store {uri!r}; supported: sqlite:///PATH",
        reason="UNKNOWN_STORE_SCHEME",
        metadata={"uri": uri},
    )

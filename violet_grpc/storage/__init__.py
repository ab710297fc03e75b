"""Storage backends, chosen by URI.

``file:///path`` (or a plain path) → :class:`LocalFileStore`;
``gs://bucket[/prefix]`` → :class:`FirebaseFileStore` (Firebase Cloud Storage);
``sqlite:///path`` (or a path ending in ``.db``) → :class:`SqliteTaskStore`;
``firestore://project[/collection-prefix]`` → :class:`FirestoreTaskStore`.

The Firebase backends import ``firebase-admin`` only when chosen; ``credentials`` names a
service-account file (default: ``VIOLET_FIREBASE_CREDENTIALS``, then ``db/violet.json``,
then application default credentials; see ``storage/_firebase.py``).
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


def file_store_from_uri(uri: str, *, credentials: str | None = None) -> FileStore:
    """Opens the file store a URI names."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return LocalFileStore(Path(parsed.path if parsed.scheme else uri))
    if parsed.scheme == "gs":
        from violet_grpc.storage.firebase_file_store import FirebaseFileStore

        return FirebaseFileStore.from_uri(uri, credentials=credentials)
    raise errors.InvalidArgument(
        f"unknown file store {uri!r}; supported: file:///PATH, gs://BUCKET[/PREFIX]",
        reason="UNKNOWN_STORE_SCHEME",
        metadata={"uri": uri},
    )


def task_store_from_uri(uri: str, *, credentials: str | None = None) -> TaskStore:
    """Opens the task store a URI names."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        return SqliteTaskStore(Path(parsed.path))
    if parsed.scheme == "firestore":
        from violet_grpc.storage.firestore_task_store import FirestoreTaskStore

        return FirestoreTaskStore.from_uri(uri, credentials=credentials)
    if parsed.scheme == "" and uri.endswith((".db", ".sqlite", ".sqlite3")):
        return SqliteTaskStore(Path(uri))
    raise errors.InvalidArgument(
        f"unknown task store {uri!r}; supported: sqlite:///PATH, firestore://PROJECT[/PREFIX]",
        reason="UNKNOWN_STORE_SCHEME",
        metadata={"uri": uri},
    )

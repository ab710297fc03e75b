"""Backends the storage contract tests run against.

Each backend is one factory function registered in ``FILE_STORE_BACKENDS`` or
``TASK_STORE_BACKENDS``; every contract test then runs against it. A factory gets a
``location`` (a fresh ``tmp_path`` folder per test) and opens a store there; opening the same
location twice must give two handles on the same data, as two proxy replicas would have.
That is how the persistence and replica-race tests work for any backend.

Cloud Storage and Firestore run on the emulators of DESIGN.md §5 (``tests/emulators.py``),
one of each per session; each test gets its own object prefix / collection prefix named
after its ``location``. A factory that needs an emulator takes it as a keyword argument
named as in ``BACKEND_EMULATORS``.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.emulators import TEST_BUCKET, TEST_PROJECT, Emulators
from violet_grpc.storage import FileStore, TaskStore, file_store_from_uri, task_store_from_uri


@dataclass
class OpenedFileStore:
    """A file store plus a backend-specific view of what it holds underneath."""

    store: FileStore
    #: Names of every raw object the backend holds (files on disk, blobs in a bucket),
    #: temporary ones included: lets tests check "stored once" and "nothing half-written".
    raw_objects: Callable[[], Awaitable[list[str]]]


#: ``factory(location, writable=...)``; ``writable=False`` must give a store whose writes
#: fail (the backend's storage refuses them), or call ``pytest.skip`` if it cannot.
FileStoreFactory = Callable[..., Awaitable[OpenedFileStore]]
TaskStoreFactory = Callable[[Path], Awaitable[TaskStore]]


# -- local directory ------------------------------------------------------------------------


def _privileged() -> bool:
    """Whether permission bits fail to stop this process from writing (root, CAP_DAC_OVERRIDE)."""
    return os.geteuid() == 0


async def open_local_file_store(location: Path, *, writable: bool = True) -> OpenedFileStore:
    """A LocalFileStore under ``location/files``, opened through the URI factory."""
    root = location / "files"
    watch = location
    if not writable:
        if _privileged():
            # chmod does not stop root: put the root under a regular file so mkdir fails.
            blocker = location / "not-a-dir"
            blocker.write_bytes(b"")
            root = blocker / "files"
        else:
            root.mkdir(parents=True)
            root.chmod(0o500)
    store = file_store_from_uri(f"file://{root}")

    async def raw_objects() -> list[str]:
        return sorted(
            str(p.relative_to(watch)) for p in watch.rglob("*") if p.is_file() and p.name != "not-a-dir"
        )

    return OpenedFileStore(store=store, raw_objects=raw_objects)


# -- SQLite ---------------------------------------------------------------------------------


async def open_sqlite_task_store(location: Path) -> TaskStore:
    """A SqliteTaskStore on ``location/tasks.db``, opened through the URI factory."""
    return task_store_from_uri(f"sqlite:///{location / 'tasks.db'}")


# -- Cloud Storage (gcp-storage-emulator) and Firestore (Google's emulator) -------------------


def _prefix_of(location: Path) -> str:
    """A prefix unique to this test, the same each time the location is opened."""
    return "t" + hashlib.sha256(str(location).encode()).hexdigest()[:20]


async def open_gcs_file_store(location: Path, *, writable: bool = True, emulators: Emulators) -> OpenedFileStore:
    """A FirebaseFileStore on the emulator's test bucket under a per-test prefix.

    Unwritable: a bucket that does not exist, so the service refuses every write.
    """
    emulators.storage()
    bucket = TEST_BUCKET if writable else "violet-no-such-bucket"
    prefix = _prefix_of(location)
    store = file_store_from_uri(f"gs://{bucket}/{prefix}")

    async def raw_objects() -> list[str]:
        from google.api_core import exceptions as gexc

        def names() -> list[str]:
            try:
                return sorted(b.name for b in store._bucket.client.list_blobs(bucket, prefix=f"{prefix}/"))  # type: ignore[attr-defined]
            except gexc.NotFound:
                return []

        return await asyncio.to_thread(names)

    return OpenedFileStore(store=store, raw_objects=raw_objects)


async def open_firestore_task_store(location: Path, *, emulators: Emulators) -> TaskStore:
    """A FirestoreTaskStore on the emulator under a per-test collection prefix."""
    emulators.firestore()
    return task_store_from_uri(f"firestore://{TEST_PROJECT}/{_prefix_of(location)}")


FILE_STORE_BACKENDS: dict[str, FileStoreFactory] = {
    "local": open_local_file_store,
    "gcs": open_gcs_file_store,
}

TASK_STORE_BACKENDS: dict[str, TaskStoreFactory] = {
    "sqlite": open_sqlite_task_store,
    "firestore": open_firestore_task_store,
}

#: Backends whose factory needs the session's emulators (passed as ``emulators=``).
BACKEND_EMULATORS = {"gcs", "firestore"}


# -- fixtures -------------------------------------------------------------------------------


@dataclass
class FileStoreBackend:
    """One file-store backend bound to this test's location."""

    name: str
    location: Path
    factory: FileStoreFactory

    async def open(self, *, writable: bool = True) -> OpenedFileStore:
        return await self.factory(self.location, writable=writable)


@dataclass
class TaskStoreBackend:
    """One task-store backend bound to this test's location; closes what it opened."""

    name: str
    location: Path
    factory: TaskStoreFactory
    _open: list[TaskStore] = field(default_factory=list)

    async def open(self) -> TaskStore:
        """Another handle on the same data (a restart, or a second proxy replica)."""
        store = await self.factory(self.location)
        self._open.append(store)
        return store

    async def close(self, store: TaskStore) -> None:
        self._open.remove(store)
        await store.close()

    async def close_all(self) -> None:
        while self._open:
            await self.close(self._open[-1])


def _factory(name: str, factories: dict[str, Any], emulators: Emulators) -> Any:
    factory = factories[name]
    return functools.partial(factory, emulators=emulators) if name in BACKEND_EMULATORS else factory


@pytest.fixture(params=sorted(FILE_STORE_BACKENDS))
def file_backend(request: pytest.FixtureRequest, tmp_path: Path, emulators: Emulators) -> FileStoreBackend:
    location = tmp_path / "file-store"
    location.mkdir()
    return FileStoreBackend(request.param, location, _factory(request.param, FILE_STORE_BACKENDS, emulators))


@pytest.fixture
async def opened_file_store(file_backend: FileStoreBackend) -> OpenedFileStore:
    return await file_backend.open()


@pytest.fixture
async def file_store(opened_file_store: OpenedFileStore) -> FileStore:
    return opened_file_store.store


@pytest.fixture(params=sorted(TASK_STORE_BACKENDS))
async def task_backend(
    request: pytest.FixtureRequest, tmp_path: Path, emulators: Emulators
) -> AsyncIterator[TaskStoreBackend]:
    location = tmp_path / "task-store"
    location.mkdir()
    backend = TaskStoreBackend(request.param, location, _factory(request.param, TASK_STORE_BACKENDS, emulators))
    try:
        yield backend
    finally:
        await backend.close_all()


@pytest.fixture
async def task_store(task_backend: TaskStoreBackend) -> TaskStore:
    return await task_backend.open()

"""TaskStore on Cloud Firestore (through ``firebase-admin``): the production backend.

URI: ``firestore://PROJECT[/COLLECTION_PREFIX][?database=DB]``.

Layout: one document per task in ``PREFIX_tasks`` (id = task id) that holds the task *and*
its assignments (leases) as an array of maps, so every transition is a read-modify-write of
one document, committed only if the document is still the version that was read (its update
time is the precondition). That compare-and-swap serializes transitions per task exactly as
SQLite's ``BEGIN IMMEDIATE`` does, across any number of proxy replicas. Other documents are
written in the same atomic batch:

- ``PREFIX_idempotency/<sha256(key)>`` → task id, created (fails if it exists) together with
  the task, so one key makes one task across every replica;
- ``PREFIX_payloads/<task>.a<attempt>`` and ``<task>.result``: miners' answers and the final
  transcript, zlib-compressed JSON, kept out of the task document so it stays small (Firestore
  caps a document at 1 MiB) and written once, in the batch that accepts them;
- ``PREFIX_evaluations/<task>.<validator hash>``: validators' verdicts (``_firestore_evaluations``).

Derived fields on the task document make the sweeps indexable: ``min_lease_expire_us``
(earliest running lease, for ``expire_leases``), ``leased_miners`` (for ``miner_leases``),
``seq`` (creation order: microseconds, a per-process counter, the task id) and
``complete_key`` (completion order). Production Firestore needs the composite indexes in
``deploy/firestore.indexes.json`` (written for the prefix ``violet``; deploy them with
``firebase deploy --only firestore:indexes``); the emulator needs none.

Every blocking SDK call runs on a worker thread; a write that lost a race is re-decided on
fresh data after a short jittered backoff.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import random
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from violet_grpc import errors
from violet_grpc.storage._firebase import FIRESTORE_EMULATOR_ENV, close_app, open_app
from violet_grpc.storage._firestore_evaluations import FirestoreEvaluations
from violet_grpc.storage.task_store import RetryPolicy, SubmitOutcome
from violet_grpc.tasks import (
    Assignment,
    AssignmentState,
    AudioFormat,
    Page,
    Task,
    TaskResult,
    TaskSpec,
    TaskState,
    TaskType,
)
from violet_grpc.transcripts import transcript_from_json, transcript_to_json

T = TypeVar("T")
Doc = dict[str, Any]
# Aliases because the class defines a method named `list`, which shadows the builtin there.
TaskList = list[Task]
IdList = list[str]

_OPEN_STATES = (TaskState.QUEUED, TaskState.ASSIGNED, TaskState.PROCESSING)
_FINAL_STATES = (TaskState.COMPLETED, TaskState.FAILED)
_DEFAULT_PAGE_SIZE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Largest compressed payload kept in one document (Firestore's limit is 1 MiB per document).
_MAX_PAYLOAD_BYTES = 1_000_000
#: How long a transition keeps retrying lost races before reporting contention.
_TX_DEADLINE_SECONDS = 30.0
_ORDER_KEY = re.compile(r"^(\d{20}\|)?\d{20}\|\d{12}\|[0-9a-f]{32}$")
_counter = itertools.count()
_counter_lock = threading.Lock()


class FirestoreTaskStore(FirestoreEvaluations):
    """Tasks and leases in Cloud Firestore, shared by every proxy replica (validators'
    evaluations too: see ``_firestore_evaluations``)."""

    backend = "firestore"

    def __init__(
        self,
        project: str,
        prefix: str = "",
        *,
        database: str | None = None,
        credentials: str | None = None,
        max_workers: int = 16,
    ) -> None:
        from firebase_admin import firestore

        self.project = project
        self.prefix = prefix
        self._app = open_app("firestore", FIRESTORE_EMULATOR_ENV, credentials, {"projectId": project} if project else {})
        self._db = firestore.client(self._app, database_id=database) if database else firestore.client(self._app)
        self._tasks = self._db.collection(_collection(prefix, "tasks"))
        self._payloads = self._db.collection(_collection(prefix, "payloads"))
        self._keys = self._db.collection(_collection(prefix, "idempotency"))
        self._evaluations = self._db.collection(_collection(prefix, "evaluations"))
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="firestore-tasks")

    @classmethod
    def from_uri(cls, uri: str, *, credentials: str | None = None) -> FirestoreTaskStore:
        """Opens ``firestore://PROJECT[/PREFIX][?database=DB]``."""
        parsed = urlparse(uri)
        project = parsed.netloc
        prefix = parsed.path.strip("/").replace("/", "_")
        if not project or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", project) or (prefix and not re.fullmatch(r"[\w-]{1,100}", prefix)):
            raise errors.InvalidArgument(
                f"bad Firestore URI {uri!r}: expected firestore://PROJECT[/COLLECTION_PREFIX]",
                reason="BAD_STORE_URI", metadata={"uri": uri},
            )
        database = parse_qs(parsed.query).get("database", [None])[0]
        return cls(project, prefix, database=database, credentials=credentials)

    # -- plumbing -----------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _guarded, fn, *args)

    def _transact(self, fn: Callable[[_Transaction], T]) -> T:
        """Runs ``fn(tx)`` as an optimistic transaction, retrying when another writer won.

        ``fn`` reads through ``tx.get`` and writes through ``tx.set`` / ``tx.create``; the
        writes commit in one atomic batch, each conditional on its document being unchanged
        since ``fn`` read it (same update time, or still missing). A lost race re-runs ``fn``
        on fresh data, so ``fn`` must only decide from what it read.

        Why not Firestore's own (pessimistic) transactions: two of them reading the same
        document both take shared locks and then wait for each other to commit; the emulator
        settles that deadlock only by a 2 s lock timeout. Compare-and-swap on the update time
        never blocks, gives the same serializability per document, and costs one retry.
        """
        from google.api_core import exceptions as gexc

        deadline = time.monotonic() + _TX_DEADLINE_SECONDS
        delay = 0.002
        while True:
            tx = _Transaction(self._db)
            result = fn(tx)
            try:
                tx.commit()
                return result
            except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Aborted) as exc:
                if time.monotonic() > deadline:
                    raise errors.Unavailable(
                        "the task store is too contended right now; try again",
                        reason="TASK_STORE_CONTENDED", metadata={"backend": self.backend},
                    ) from exc
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 0.1)

    def _task_ref(self, task_id: str) -> Any:
        return self._tasks.document(task_id)

    def _payload_ref(self, task_id: str, name: str) -> Any:
        return self._payloads.document(f"{task_id}.{name}")

    async def close(self) -> None:
        def _close() -> None:
            self._db.close()
            close_app(self._app)

        await asyncio.get_running_loop().run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)

    # -- creation and reads -------------------------------------------------------------

    async def create(
        self, spec: TaskSpec, *, now: datetime, leased_to: str = "", lease_seconds: float = 60.0
    ) -> tuple[Task, bool]:
        return await self._run(self._create, spec, now, leased_to, lease_seconds)

    def _create(self, spec: TaskSpec, now: datetime, leased_to: str, lease_seconds: float) -> tuple[Task, bool]:
        from google.api_core import exceptions as gexc

        ts = _us(now)
        task_id = uuid.uuid4().hex
        key_ref = self._keys.document(hashlib.sha256(spec.idempotency_key.encode()).hexdigest()) if spec.idempotency_key else None
        doc: Doc = {
            "task_id": task_id,
            "type": int(spec.type),
            "state": int(TaskState.QUEUED),
            "spec": _spec_json(spec),
            "idempotency_key": spec.idempotency_key,
            "redundancy": max(1, spec.redundancy),
            "create_us": ts,
            "update_us": ts,
            "complete_us": None,
            "complete_key": None,
            "not_before_us": 0,
            "attempts": 0,
            "result_file_id": "",
            "result_content_type": "",
            "has_transcript": False,
            "failure_reason": "",
            "seq": _seq(ts, task_id),
            "assignments": [],
        }
        if leased_to:
            doc["assignments"].append(_new_assignment(leased_to, 1, ts, lease_seconds))
            doc["state"] = int(TaskState.PROCESSING)
            doc["attempts"] = 1

        def tx_fn(tx: _Transaction) -> tuple[str, bool]:
            if key_ref is not None:
                existing = tx.get(key_ref)
                if existing.exists:
                    return str(existing.get("task_id")), False
                tx.create(key_ref, {"task_id": task_id, "create_us": ts})
            tx.create(self._task_ref(task_id), _derive(doc))
            return task_id, True

        for _ in range(10):
            try:
                found, created = self._transact(tx_fn)
                return self._load(found), created
            except gexc.AlreadyExists:
                # Another replica committed the same idempotency key between our read and
                # our commit; the next round reads its task.
                continue
        raise errors.Unavailable("could not create the task; try again", reason="TASK_STORE_CONTENDED")

    async def get(self, task_id: str) -> Task:
        return await self._run(self._load, task_id)

    def _load(self, task_id: str) -> Task:
        snap = self._task_ref(task_id).get() if _valid_doc_id(task_id) else None
        if snap is None or not snap.exists:
            raise errors.NotFound(f"no task {task_id!r}", reason="TASK_NOT_FOUND", metadata={"task_id": task_id})
        return self._tasks_from_docs([snap.to_dict()])[0]

    def _tasks_from_docs(self, docs: list[Doc]) -> list[Task]:
        """Builds tasks, fetching every answer and transcript they reference in one batch."""
        refs = []
        for doc in docs:
            refs += [self._payload_ref(doc["task_id"], f"a{a['attempt']}") for a in doc["assignments"] if a["response_sha"]]
            if doc["has_transcript"]:
                refs.append(self._payload_ref(doc["task_id"], "result"))
        payloads: dict[str, Any] = {}
        if refs:
            payloads = {snap.id: _unpack(snap.get("data")) for snap in self._db.get_all(refs) if snap.exists}
        return [_task_from_doc(doc, payloads) for doc in docs]

    async def list(
        self,
        *,
        state: TaskState | None = None,
        type: TaskType | None = None,
        page_size: int = 50,
        page_token: str = "",
        completed_only: bool = False,
    ) -> Page:
        return await self._run(self._list, state, type, page_size, page_token, completed_only)

    def _list(
        self, state: TaskState | None, type: TaskType | None, page_size: int, page_token: str, completed_only: bool
    ) -> Page:
        from google.cloud.firestore_v1.base_query import FieldFilter

        if page_size < 0:
            raise errors.InvalidArgument(
                "page_size must not be negative", reason="INVALID_PAGE_SIZE", metadata={"page_size": str(page_size)}
            )
        page_size = page_size or _DEFAULT_PAGE_SIZE
        if completed_only:
            state = TaskState.COMPLETED
        filter_key = f"{int(state or 0)}:{int(type or 0)}:{int(completed_only)}"
        order_field = "complete_key" if completed_only else "seq"
        query: Any = self._tasks
        if state is not None:
            query = query.where(filter=FieldFilter("state", "==", int(state)))
        if type is not None:
            query = query.where(filter=FieldFilter("type", "==", int(type)))
        query = query.order_by(order_field, direction="DESCENDING")
        if page_token:
            query = query.start_after({order_field: _decode_token(page_token, filter_key)})
        docs = [snap.to_dict() for snap in query.limit(page_size + 1).stream()]
        token = _encode_token(docs[page_size - 1][order_field], filter_key) if len(docs) > page_size else ""
        return Page(tasks=self._tasks_from_docs(docs[:page_size]), next_page_token=token)

    async def count_by_state(self) -> dict[TaskState, int]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        def _count() -> dict[TaskState, int]:
            counts = {}
            for state in TaskState:
                n = _count_of(self._tasks.where(filter=FieldFilter("state", "==", int(state))))
                if n:
                    counts[state] = n
            return counts

        return await self._run(_count)

    async def completed_since(self, since: datetime) -> int:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._tasks.where(filter=FieldFilter("state", "==", int(TaskState.COMPLETED))).where(
            filter=FieldFilter("complete_us", ">=", _us(since))
        )
        return await self._run(_count_of, query)

    # -- leases -------------------------------------------------------------------------

    async def dispatchable(self, *, now: datetime, limit: int) -> TaskList:
        return await self._run(self._dispatchable, now, limit)

    def _dispatchable(self, now: datetime, limit: int) -> TaskList:
        from google.cloud.firestore_v1.base_query import FieldFilter

        # Whether a task needs a lease depends on `now` (leases run out), which no index can
        # hold: scan open tasks oldest first and decide here, a batch at a time.
        ts = _us(now)
        found: list[Doc] = []
        query = self._tasks.where(filter=FieldFilter("state", "in", [int(s) for s in _OPEN_STATES])).order_by("seq")
        batch = max(limit * 2, 100)
        cursor = None
        while len(found) < limit:
            page = query.start_after({"seq": cursor}) if cursor else query
            docs = [snap.to_dict() for snap in page.limit(batch).stream()]
            for doc in docs:
                if (
                    doc["type"] != int(TaskType.STREAMING_TRANSCRIPTION)
                    and doc["not_before_us"] <= ts
                    and len(_live(doc, ts)) < doc["redundancy"]
                ):
                    found.append(doc)
            if len(docs) < batch:
                break
            cursor = docs[-1]["seq"]
        return self._tasks_from_docs(found[:limit])

    async def lease(self, task_id: str, miner_id: str, *, now: datetime, lease_seconds: float) -> Assignment | None:
        return await self._run(self._lease, task_id, miner_id, now, lease_seconds)

    def _lease(self, task_id: str, miner_id: str, now: datetime, lease_seconds: float) -> Assignment | None:
        if not _valid_doc_id(task_id):
            return None
        ts = _us(now)
        ref = self._task_ref(task_id)

        def tx_fn(tx: _Transaction) -> Doc | None:
            snap = tx.get(ref)
            if not snap.exists:
                return None
            doc = snap.to_dict()
            if TaskState(doc["state"]) not in _OPEN_STATES:
                return None
            live = _live(doc, ts)
            if len(live) >= doc["redundancy"] or any(a["miner_id"] == miner_id for a in live):
                return None
            attempt = doc["attempts"] + 1
            assignment = _new_assignment(miner_id, attempt, ts, lease_seconds)
            doc["assignments"].append(assignment)
            doc["attempts"] = attempt
            if doc["state"] == TaskState.QUEUED:
                doc["state"] = int(TaskState.ASSIGNED)
            doc["update_us"] = ts
            tx.set(ref, _derive(doc))
            return assignment

        granted = self._transact(tx_fn)
        return None if granted is None else _assignment_from_map(granted, None)

    async def start(self, task_id: str, miner_id: str, *, now: datetime) -> None:
        if not _valid_doc_id(task_id):
            return
        ts = _us(now)
        ref = self._task_ref(task_id)

        def tx_fn(tx: _Transaction) -> None:
            snap = tx.get(ref)
            if not snap.exists:
                return
            doc = snap.to_dict()
            if doc["state"] not in (TaskState.QUEUED, TaskState.ASSIGNED):
                return
            if any(a["miner_id"] == miner_id and a["state"] == AssignmentState.LEASED and a["lease_expire_us"] > ts
                   for a in doc["assignments"]):
                doc["state"] = int(TaskState.PROCESSING)
                doc["update_us"] = ts
                tx.set(ref, _derive(doc))

        await self._run(self._transact, tx_fn)

    async def submit(
        self, task_id: str, miner_id: str, response: dict[str, Any], *, processing_seconds: float, now: datetime
    ) -> SubmitOutcome:
        return await self._run(self._submit, task_id, miner_id, response, processing_seconds, now)

    def _submit(
        self, task_id: str, miner_id: str, response: dict[str, Any], processing_seconds: float, now: datetime
    ) -> SubmitOutcome:
        ts = _us(now)
        encoded = json.dumps(response, sort_keys=True)
        digest = hashlib.sha256(encoded.encode()).hexdigest()
        packed = _pack(encoded)
        not_assigned = errors.PermissionDenied(
            f"task {task_id!r} is not assigned to miner {miner_id!r}",
            reason="TASK_NOT_ASSIGNED", metadata={"task_id": task_id, "miner_id": miner_id},
        )
        if not _valid_doc_id(task_id):
            raise not_assigned
        ref = self._task_ref(task_id)

        def tx_fn(tx: _Transaction) -> SubmitOutcome:
            snap = tx.get(ref)
            doc = snap.to_dict() if snap.exists else None
            held = _latest_of(doc, miner_id) if doc else None
            if doc is None or held is None:
                # One answer for both cases, so a miner cannot probe which task ids exist.
                raise not_assigned
            state = TaskState(doc["state"])
            if held["state"] == AssignmentState.SUBMITTED:
                if held["response_sha"] == digest:
                    return SubmitOutcome(duplicate=True, state=state, ready=False)
                raise errors.FailedPrecondition(
                    "this miner already answered the task with a different answer",
                    reason="ALREADY_ANSWERED", metadata={"task_id": task_id},
                )
            if state in _FINAL_STATES:
                raise errors.FailedPrecondition(
                    f"task {task_id!r} is already {state.name}", reason="TASK_FINISHED", metadata={"task_id": task_id}
                )
            if held["state"] != AssignmentState.LEASED or held["lease_expire_us"] <= ts:
                raise errors.FailedPrecondition(
                    "the lease on this task has ended; the task was offered to another miner",
                    reason="LEASE_EXPIRED", metadata={"task_id": task_id},
                )
            held.update(state=int(AssignmentState.SUBMITTED), submit_us=ts,
                        processing_seconds=float(processing_seconds), response_sha=digest)
            answered = sum(a["state"] == AssignmentState.SUBMITTED for a in doc["assignments"])
            ready = answered >= doc["redundancy"]
            new_state = TaskState.AGGREGATING if ready else TaskState.PROCESSING
            doc["state"] = int(new_state)
            doc["update_us"] = ts
            tx.set(self._payload_ref(task_id, f"a{held['attempt']}"), {"data": packed})
            tx.set(ref, _derive(doc))
            return SubmitOutcome(duplicate=False, state=new_state, ready=ready)

        return self._transact(tx_fn)

    async def fail_assignment(
        self, task_id: str, miner_id: str, error: str, *, now: datetime, policy: RetryPolicy
    ) -> TaskState:
        not_assigned = errors.PermissionDenied(
            f"task {task_id!r} is not assigned to miner {miner_id!r}",
            reason="TASK_NOT_ASSIGNED", metadata={"task_id": task_id, "miner_id": miner_id},
        )
        if not _valid_doc_id(task_id):
            raise not_assigned
        ref = self._task_ref(task_id)

        def tx_fn(tx: _Transaction) -> TaskState:
            snap = tx.get(ref)
            doc = snap.to_dict() if snap.exists else None
            held = _latest_of(doc, miner_id) if doc else None
            if doc is None or held is None:
                # Same answer as submit, so a miner cannot probe which task ids exist.
                raise not_assigned
            if held["state"] != AssignmentState.LEASED:
                # Its lease already ended (answered, expired or failed): nothing to record.
                return TaskState(doc["state"])
            held.update(state=int(AssignmentState.FAILED), error=error[:500])
            state = _settle(doc, now, policy, error)
            tx.set(ref, _derive(doc))
            return state

        return await self._run(self._transact, tx_fn)

    async def expire_leases(self, *, now: datetime, policy: RetryPolicy) -> IdList:
        return await self._run(self._expire_leases, now, policy)

    def _expire_leases(self, now: datetime, policy: RetryPolicy) -> IdList:
        from google.cloud.firestore_v1.base_query import FieldFilter

        ts = _us(now)
        overdue = self._tasks.where(filter=FieldFilter("min_lease_expire_us", "<=", ts)).select(["task_id"])
        candidates = sorted(str(snap.get("task_id")) for snap in overdue.stream())
        ready: list[str] = []
        for task_id in candidates:
            ref = self._task_ref(task_id)

            def tx_fn(tx: _Transaction, ref: Any = ref) -> bool:
                snap = tx.get(ref)
                if not snap.exists:
                    return False
                doc = snap.to_dict()
                expired = [a for a in doc["assignments"] if a["state"] == AssignmentState.LEASED and a["lease_expire_us"] <= ts]
                if not expired:
                    return False  # another replica's sweep (or an answer) got there first
                for a in expired:
                    a.update(state=int(AssignmentState.EXPIRED), error="lease expired")
                before = TaskState(doc["state"])
                after = _settle(doc, now, policy, "lease expired")
                tx.set(ref, _derive(doc))
                # Only tasks this sweep made ready: one already AGGREGATING was reported before.
                return after == TaskState.AGGREGATING and before != TaskState.AGGREGATING

            if self._transact(tx_fn):
                ready.append(task_id)
        return ready

    # -- endings ------------------------------------------------------------------------

    async def complete(self, task_id: str, result: TaskResult, *, now: datetime) -> bool:
        if not _valid_doc_id(task_id):
            return False
        ts = _us(now)
        ref = self._task_ref(task_id)
        packed = _pack(json.dumps(transcript_to_json(result.transcript))) if result.transcript else None

        def tx_fn(tx: _Transaction) -> bool:
            snap = tx.get(ref)
            if not snap.exists:
                return False
            doc = snap.to_dict()
            if TaskState(doc["state"]) in _FINAL_STATES:
                return False
            doc.update(state=int(TaskState.COMPLETED), complete_us=ts, update_us=ts,
                       complete_key=f"{max(ts, 0):020d}|{doc['seq']}", result_file_id=result.result_file_id,
                       result_content_type=result.result_content_type, has_transcript=packed is not None)
            for a in doc["assignments"]:
                if a["state"] == AssignmentState.SUBMITTED and a["miner_id"] in result.agreements:
                    a["agreement"] = float(result.agreements[a["miner_id"]])
            if packed is not None:
                tx.set(self._payload_ref(task_id, "result"), {"data": packed})
            tx.set(ref, _derive(doc))
            return True

        return await self._run(self._transact, tx_fn)

    async def fail(self, task_id: str, reason: str, *, now: datetime) -> bool:
        if not _valid_doc_id(task_id):
            return False
        ts = _us(now)
        ref = self._task_ref(task_id)

        def tx_fn(tx: _Transaction) -> bool:
            snap = tx.get(ref)
            if not snap.exists:
                return False
            doc = snap.to_dict()
            if TaskState(doc["state"]) in _FINAL_STATES:
                return False
            doc.update(state=int(TaskState.FAILED), failure_reason=reason[:1000], complete_us=ts, update_us=ts)
            tx.set(ref, _derive(doc))
            return True

        return await self._run(self._transact, tx_fn)

    async def miner_leases(self, miner_id: str, *, now: datetime, limit: int) -> TaskList:
        from google.cloud.firestore_v1.base_query import FieldFilter

        def _leases() -> list[Task]:
            ts = _us(now)
            held: list[tuple[int, str, Doc]] = []
            for snap in self._tasks.where(filter=FieldFilter("leased_miners", "array_contains", miner_id)).stream():
                doc = snap.to_dict()
                if TaskState(doc["state"]) in _FINAL_STATES:
                    continue
                starts = [a["create_us"] for a in doc["assignments"]
                          if a["miner_id"] == miner_id and a["state"] == AssignmentState.LEASED and a["lease_expire_us"] > ts]
                if starts:
                    held.append((min(starts), doc["seq"], doc))
            held.sort(key=lambda item: item[:2])
            return self._tasks_from_docs([doc for _, _, doc in held[:limit]])

        return await self._run(_leases)

    async def aggregating(self, *, limit: int) -> TaskList:
        from google.cloud.firestore_v1.base_query import FieldFilter

        def _ready() -> list[Task]:
            query = self._tasks.where(filter=FieldFilter("state", "==", int(TaskState.AGGREGATING))).order_by("seq")
            return self._tasks_from_docs([snap.to_dict() for snap in query.limit(limit).stream()])

        return await self._run(_ready)


class _Transaction:
    """Reads now, writes later in one batch conditional on what was read (see ``_transact``)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._read: dict[str, Any] = {}
        self._writes: list[tuple[str, Any, Doc]] = []

    def get(self, ref: Any) -> Any:
        snap = ref.get()
        self._read[ref.path] = snap
        return snap

    def set(self, ref: Any, data: Doc) -> None:
        self._writes.append(("set", ref, data))

    def create(self, ref: Any, data: Doc) -> None:
        self._writes.append(("create", ref, data))

    def commit(self) -> None:
        if not self._writes:
            return
        batch = self._db.batch()
        for kind, ref, data in self._writes:
            snap = self._read.get(ref.path)
            if kind == "create" or (snap is not None and not snap.exists):
                batch.create(ref, data)  # fails if someone created it meanwhile
            elif snap is not None:
                # Every field is written, so this replaces the document, but only if it is
                # still the version that was read.
                batch.update(ref, data, option=self._db.write_option(last_update_time=snap.update_time))
            else:
                batch.set(ref, data)  # a document nobody else writes (an answer's payload)
        batch.commit()


# -- state rules (mirror SqliteTaskStore) -------------------------------------------------


def _live(doc: Doc, ts: int) -> list[Doc]:
    """Assignments that count against redundancy: answered, or leased and not yet expired."""
    return [
        a for a in doc["assignments"]
        if a["state"] == AssignmentState.SUBMITTED or (a["state"] == AssignmentState.LEASED and a["lease_expire_us"] > ts)
    ]


def _latest_of(doc: Doc, miner_id: str) -> Doc | None:
    mine = [a for a in doc["assignments"] if a["miner_id"] == miner_id]
    return max(mine, key=lambda a: a["attempt"]) if mine else None


def _settle(doc: Doc, now: datetime, policy: RetryPolicy, error: str) -> TaskState:
    """Decides a task's state after one of its leases ended without an answer (edits ``doc``)."""
    state = TaskState(doc["state"])
    if state in _FINAL_STATES or state == TaskState.AGGREGATING:
        return state
    ts = _us(now)
    live = _live(doc, ts)
    answered = sum(a["state"] == AssignmentState.SUBMITTED for a in live)
    leased = len(live) - answered
    failures = doc["attempts"] - answered - leased
    if failures < policy.max_attempts:
        new_state = TaskState.PROCESSING if leased or answered else TaskState.QUEUED
        delay = policy.backoff_seconds * (2 ** max(0, failures - 1))
        doc.update(state=int(new_state), not_before_us=ts + round(delay * 1e6), update_us=ts)
        return new_state
    if leased:
        return state
    if answered:
        doc.update(state=int(TaskState.AGGREGATING), update_us=ts)
        return TaskState.AGGREGATING
    reason = f"gave up after {failures} failed attempts; last error: {error}"
    doc.update(state=int(TaskState.FAILED), failure_reason=reason[:1000], complete_us=ts, update_us=ts)
    return TaskState.FAILED


def _derive(doc: Doc) -> Doc:
    """Refreshes the indexed fields that summarise the assignments."""
    running = [a for a in doc["assignments"] if a["state"] == AssignmentState.LEASED]
    doc["min_lease_expire_us"] = min((a["lease_expire_us"] for a in running), default=None)
    doc["leased_miners"] = sorted({a["miner_id"] for a in running})
    return doc


def _new_assignment(miner_id: str, attempt: int, ts: int, lease_seconds: float) -> Doc:
    return {
        "miner_id": miner_id,
        "attempt": attempt,
        "state": int(AssignmentState.LEASED),
        "create_us": ts,
        "lease_expire_us": ts + round(lease_seconds * 1e6),
        "submit_us": None,
        "processing_seconds": 0.0,
        "agreement": 0.0,
        "error": "",
        "response_sha": "",
    }


# -- conversion ---------------------------------------------------------------------------


def _guarded(fn: Callable[..., T], *args: Any) -> T:
    """Runs an SDK call, turning transport failures into Unavailable (VioletErrors pass through)."""
    from google.api_core import exceptions as gexc

    try:
        return fn(*args)
    except errors.VioletError:
        raise
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.RetryError) as exc:
        raise errors.Unavailable(f"the Firestore task store cannot be reached: {exc}",
                                 reason="TASK_STORE_UNAVAILABLE") from exc
    except (gexc.PermissionDenied, gexc.Unauthenticated) as exc:
        raise errors.Unavailable(f"the Firestore task store refused our credentials: {exc}",
                                 reason="TASK_STORE_UNAUTHORIZED") from exc


def _count_of(query: Any) -> int:
    result = query.count(alias="n").get()
    return int(result[0][0].value)


def _collection(prefix: str, name: str) -> str:
    return f"{prefix}_{name}" if prefix else name


def _valid_doc_id(task_id: str) -> bool:
    # Firestore ids cannot contain "/" nor be "." / ".."; anything we never issue is unknown.
    return bool(re.fullmatch(r"[0-9a-f]{32}", task_id))


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _dt(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _order_key(ts: int) -> str:
    """Sorts by time, then by this process's order of calls (ties in tests and bursts)."""
    with _counter_lock:
        n = next(_counter)
    return f"{max(ts, 0):020d}|{n % 10**12:012d}"


def _seq(ts: int, task_id: str) -> str:
    """Creation order: time, then this process's creation order, then the id (unique)."""
    return f"{_order_key(ts)}|{task_id}"


def _pack(text: str) -> bytes:
    data = zlib.compress(text.encode(), 6)
    if len(data) > _MAX_PAYLOAD_BYTES:
        raise errors.ResourceExhausted(
            f"the answer is too large for the Firestore task store ({len(data)} bytes compressed)",
            reason="PAYLOAD_TOO_LARGE", metadata={"limit": str(_MAX_PAYLOAD_BYTES)},
        )
    return data


def _unpack(data: bytes) -> Any:
    return json.loads(zlib.decompress(data))


def _spec_json(spec: TaskSpec) -> str:
    data = asdict(spec)
    data["type"] = int(spec.type)
    data["audio_format"] = int(spec.audio_format)
    return json.dumps(data, sort_keys=True)


def _spec_from_json(text: str) -> TaskSpec:
    data = json.loads(text)
    data["type"] = TaskType(data["type"])
    data["audio_format"] = AudioFormat(data["audio_format"])
    return TaskSpec(**data)


def _task_from_doc(doc: Doc, payloads: dict[str, Any]) -> Task:
    task_id = doc["task_id"]
    transcript = payloads.get(f"{task_id}.result") if doc["has_transcript"] else None
    return Task(
        task_id=task_id,
        spec=_spec_from_json(doc["spec"]),
        state=TaskState(doc["state"]),
        create_time=_dt(doc["create_us"]),  # type: ignore[arg-type]
        update_time=_dt(doc["update_us"]),  # type: ignore[arg-type]
        complete_time=_dt(doc["complete_us"]),
        result_file_id=doc["result_file_id"],
        result_content_type=doc["result_content_type"],
        transcript=transcript_from_json(transcript) if transcript else None,
        failure_reason=doc["failure_reason"],
        attempts=doc["attempts"],
        assignments=tuple(
            _assignment_from_map(a, payloads.get(f"{task_id}.a{a['attempt']}") if a["response_sha"] else None)
            for a in sorted(doc["assignments"], key=lambda a: a["attempt"])
        ),
    )


def _assignment_from_map(a: Doc, response: dict | None) -> Assignment:
    return Assignment(
        miner_id=a["miner_id"],
        attempt=a["attempt"],
        state=AssignmentState(a["state"]),
        create_time=_dt(a["create_us"]),  # type: ignore[arg-type]
        lease_expire_time=_dt(a["lease_expire_us"]),  # type: ignore[arg-type]
        submit_time=_dt(a["submit_us"]),
        processing_seconds=float(a["processing_seconds"]),
        agreement=float(a["agreement"]),
        error=a["error"],
        response=response,
    )


def _encode_token(order_key: str, filter_key: str) -> str:
    raw = json.dumps([order_key, filter_key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, filter_key: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        order_key, key = json.loads(base64.urlsafe_b64decode(padded))
        if key != filter_key or not isinstance(order_key, str) or not _ORDER_KEY.fullmatch(order_key):
            raise ValueError("not a token of this listing")
        return order_key
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise errors.InvalidArgument(
            "page_token is not valid for this listing (it must come from the previous page with the same filters)",
            reason="INVALID_PAGE_TOKEN",
            metadata={"field": "page_token"},
        ) from exc

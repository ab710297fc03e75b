"""TaskStore on SQLite (WAL): the embedded default.

Every transition is one ``BEGIN IMMEDIATE`` transaction, so several proxy processes on the
same file still never double-lease or double-complete. Calls run on one worker thread per
store, keeping blocking I/O off the event loop.
"""
from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from violet_grpc import errors
from violet_grpc.storage._sqlite_evaluations import SCHEMA as EVALUATION_SCHEMA
from violet_grpc.storage._sqlite_evaluations import SqliteEvaluations
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL UNIQUE,
  type INTEGER NOT NULL,
  state INTEGER NOT NULL,
  spec TEXT NOT NULL,
  idempotency_key TEXT UNIQUE,
  redundancy INTEGER NOT NULL,
  create_time REAL NOT NULL,
  update_time REAL NOT NULL,
  complete_time REAL,
  not_before REAL NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  result_file_id TEXT NOT NULL DEFAULT '',
  result_content_type TEXT NOT NULL DEFAULT '',
  transcript TEXT,
  failure_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks(state, seq);
CREATE INDEX IF NOT EXISTS tasks_by_completion ON tasks(complete_time);
CREATE TABLE IF NOT EXISTS assignments (
  task_id TEXT NOT NULL REFERENCES tasks(task_id),
  miner_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  state INTEGER NOT NULL,
  create_time REAL NOT NULL,
  lease_expire_time REAL NOT NULL,
  submit_time REAL,
  processing_seconds REAL NOT NULL DEFAULT 0,
  agreement REAL NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  response TEXT,
  PRIMARY KEY (task_id, attempt)
);
CREATE INDEX IF NOT EXISTS assignments_by_miner ON assignments(miner_id, state);
"""

_OPEN_STATES = (TaskState.QUEUED, TaskState.ASSIGNED, TaskState.PROCESSING)
_FINAL_STATES = (TaskState.COMPLETED, TaskState.FAILED)
_DEFAULT_PAGE_SIZE = 50


class SqliteTaskStore(SqliteEvaluations):
    """Tasks and leases in one SQLite file (validators' evaluations too: see ``_sqlite_evaluations``)."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-tasks")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.executescript(EVALUATION_SCHEMA)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            # A full disk, a read-only file or a lock held too long: the store, not the
            # request, is at fault, and retrying later may well succeed.
            raise errors.Unavailable(
                f"the task store at {self.path} cannot be used: {exc}",
                reason="TASK_STORE_UNAVAILABLE",
                metadata={"path": str(self.path)},
            ) from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    async def close(self) -> None:
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)

    # -- creation and reads -------------------------------------------------------------

    async def create(
        self, spec: TaskSpec, *, now: datetime, leased_to: str = "", lease_seconds: float = 60.0
    ) -> tuple[Task, bool]:
        return await self._run(self._create, spec, now, leased_to, lease_seconds)

    def _create(self, spec: TaskSpec, now: datetime, leased_to: str, lease_seconds: float) -> tuple[Task, bool]:
        with self._tx() as db:
            if spec.idempotency_key:
                row = db.execute("SELECT task_id FROM tasks WHERE idempotency_key=?", (spec.idempotency_key,)).fetchone()
                if row:
                    return self._load(row["task_id"]), False
            task_id = uuid.uuid4().hex
            ts = _ts(now)
            db.execute(
                "INSERT INTO tasks(task_id,type,state,spec,idempotency_key,redundancy,create_time,update_time)"
                " VALUES(?,?,?,?,?,?,?,?)",
                (task_id, int(spec.type), int(TaskState.QUEUED), _spec_json(spec),
                 spec.idempotency_key or None, max(1, spec.redundancy), ts, ts),
            )
            if leased_to:
                db.execute(
                    "INSERT INTO assignments(task_id,miner_id,attempt,state,create_time,lease_expire_time)"
                    " VALUES(?,?,1,?,?,?)",
                    (task_id, leased_to, int(AssignmentState.LEASED), ts, ts + lease_seconds),
                )
                db.execute("UPDATE tasks SET state=?, attempts=1 WHERE task_id=?", (int(TaskState.PROCESSING), task_id))
        return self._load(task_id), True

    async def get(self, task_id: str) -> Task:
        return await self._run(self._load, task_id)

    def _load(self, task_id: str) -> Task:
        row = self._db.execute("SELECT * FROM tasks WHERE task_id=?", (task_id,)).fetchone()
        if row is None:
            raise errors.NotFound(f"no task {task_id!r}", reason="TASK_NOT_FOUND", metadata={"task_id": task_id})
        rows = self._db.execute("SELECT * FROM assignments WHERE task_id=? ORDER BY attempt", (task_id,)).fetchall()
        return _task_from_row(row, [_assignment_from_row(r) for r in rows])

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
        if page_size < 0:
            raise errors.InvalidArgument(
                "page_size must not be negative", reason="INVALID_PAGE_SIZE", metadata={"page_size": str(page_size)}
            )
        # 0 means the default; without this, LIMIT 1 and rows[-1] made a token that skipped a task.
        page_size = page_size or _DEFAULT_PAGE_SIZE
        where, args = [], []
        if completed_only:
            state = TaskState.COMPLETED
        if state is not None:
            where.append("state=?")
            args.append(int(state))
        if type is not None:
            where.append("type=?")
            args.append(int(type))
        filter_key = f"{int(state or 0)}:{int(type or 0)}:{int(completed_only)}"
        order_col = "complete_time" if completed_only else "seq"
        if page_token:
            cursor = _decode_token(page_token, filter_key)
            where.append(f"({order_col}, seq) < (?, ?)")
            args.extend([cursor[0], cursor[1]])
        sql = "SELECT task_id, seq, complete_time FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order_col} DESC, seq DESC LIMIT ?"
        rows = self._db.execute(sql, (*args, page_size + 1)).fetchall()
        tasks = [self._load(r["task_id"]) for r in rows[:page_size]]
        token = ""
        if len(rows) > page_size:
            last = rows[page_size - 1]
            token = _encode_token(last[order_col], last["seq"], filter_key)
        return Page(tasks=tasks, next_page_token=token)

    async def count_by_state(self) -> dict[TaskState, int]:
        rows = await self._run(lambda: self._db.execute("SELECT state, COUNT(*) n FROM tasks GROUP BY state").fetchall())
        return {TaskState(r["state"]): r["n"] for r in rows}

    async def completed_since(self, since: datetime) -> int:
        sql = "SELECT COUNT(*) FROM tasks WHERE state=? AND complete_time>=?"
        return await self._run(lambda: self._db.execute(sql, (int(TaskState.COMPLETED), _ts(since))).fetchone()[0])

    # -- leases -------------------------------------------------------------------------

    async def dispatchable(self, *, now: datetime, limit: int) -> list[Task]:
        return await self._run(self._dispatchable, now, limit)

    def _dispatchable(self, now: datetime, limit: int) -> list[Task]:
        placeholders = ",".join("?" * len(_OPEN_STATES))
        sql = (
            f"SELECT t.task_id FROM tasks t WHERE t.state IN ({placeholders}) AND t.type != ?"
            " AND t.not_before <= ? AND (SELECT COUNT(*) FROM assignments a WHERE a.task_id=t.task_id"
            " AND (a.state=? OR (a.state=? AND a.lease_expire_time>?))) < t.redundancy"
            " ORDER BY t.seq LIMIT ?"
        )
        ts = _ts(now)
        rows = self._db.execute(
            sql,
            (*map(int, _OPEN_STATES), int(TaskType.STREAMING_TRANSCRIPTION), ts,
             int(AssignmentState.SUBMITTED), int(AssignmentState.LEASED), ts, limit),
        ).fetchall()
        return [self._load(r["task_id"]) for r in rows]

    async def lease(self, task_id: str, miner_id: str, *, now: datetime, lease_seconds: float) -> Assignment | None:
        return await self._run(self._lease, task_id, miner_id, now, lease_seconds)

    def _lease(self, task_id: str, miner_id: str, now: datetime, lease_seconds: float) -> Assignment | None:
        ts = _ts(now)
        with self._tx() as db:
            row = db.execute("SELECT state, redundancy, attempts FROM tasks WHERE task_id=?", (task_id,)).fetchone()
            if row is None or TaskState(row["state"]) not in _OPEN_STATES:
                return None
            live = db.execute(
                "SELECT miner_id FROM assignments WHERE task_id=? AND (state=? OR (state=? AND lease_expire_time>?))",
                (task_id, int(AssignmentState.SUBMITTED), int(AssignmentState.LEASED), ts),
            ).fetchall()
            if len(live) >= row["redundancy"] or any(r["miner_id"] == miner_id for r in live):
                return None
            attempt = row["attempts"] + 1
            db.execute(
                "INSERT INTO assignments(task_id,miner_id,attempt,state,create_time,lease_expire_time)"
                " VALUES(?,?,?,?,?,?)",
                (task_id, miner_id, attempt, int(AssignmentState.LEASED), ts, ts + lease_seconds),
            )
            new_state = TaskState.ASSIGNED if row["state"] == TaskState.QUEUED else TaskState(row["state"])
            db.execute(
                "UPDATE tasks SET attempts=?, state=?, update_time=? WHERE task_id=?",
                (attempt, int(new_state), ts, task_id),
            )
        return self._assignment(task_id, attempt)

    def _assignment(self, task_id: str, attempt: int) -> Assignment:
        row = self._db.execute("SELECT * FROM assignments WHERE task_id=? AND attempt=?", (task_id, attempt)).fetchone()
        return _assignment_from_row(row)

    async def start(self, task_id: str, miner_id: str, *, now: datetime) -> None:
        def _start() -> None:
            with self._tx() as db:
                ts = _ts(now)
                db.execute(
                    "UPDATE tasks SET state=?, update_time=? WHERE task_id=? AND state IN (?,?)"
                    " AND EXISTS (SELECT 1 FROM assignments a WHERE a.task_id=tasks.task_id AND a.miner_id=?"
                    " AND a.state=? AND a.lease_expire_time>?)",
                    (int(TaskState.PROCESSING), ts, task_id, int(TaskState.QUEUED), int(TaskState.ASSIGNED),
                     miner_id, int(AssignmentState.LEASED), ts),
                )

        await self._run(_start)

    async def submit(
        self, task_id: str, miner_id: str, response: dict[str, Any], *, processing_seconds: float, now: datetime
    ) -> SubmitOutcome:
        return await self._run(self._submit, task_id, miner_id, response, processing_seconds, now)

    def _submit(
        self, task_id: str, miner_id: str, response: dict[str, Any], processing_seconds: float, now: datetime
    ) -> SubmitOutcome:
        ts = _ts(now)
        encoded = json.dumps(response, sort_keys=True)
        with self._tx() as db:
            task = db.execute("SELECT state, redundancy FROM tasks WHERE task_id=?", (task_id,)).fetchone()
            held = db.execute(
                "SELECT * FROM assignments WHERE task_id=? AND miner_id=? ORDER BY attempt DESC LIMIT 1",
                (task_id, miner_id),
            ).fetchone()
            if task is None or held is None:
                # One answer for both cases, so a miner cannot probe which task ids exist.
                raise errors.PermissionDenied(
                    f"task {task_id!r} is not assigned to miner {miner_id!r}",
                    reason="TASK_NOT_ASSIGNED",
                    metadata={"task_id": task_id, "miner_id": miner_id},
                )
            state = TaskState(task["state"])
            if held["state"] == AssignmentState.SUBMITTED:
                if held["response"] == encoded:
                    return SubmitOutcome(duplicate=True, state=state, ready=False)
                raise errors.FailedPrecondition(
                    "this miner already answered the task with a different answer",
                    reason="ALREADY_ANSWERED", metadata={"task_id": task_id},
                )
            if state in _FINAL_STATES:
                raise errors.FailedPrecondition(
                    f"task {task_id!r} is already {state.name}", reason="TASK_FINISHED", metadata={"task_id": task_id}
                )
            if held["state"] != AssignmentState.LEASED or held["lease_expire_time"] <= ts:
                raise errors.FailedPrecondition(
                    "the lease on this task has ended; the task was offered to another miner",
                    reason="LEASE_EXPIRED", metadata={"task_id": task_id},
                )
            db.execute(
                "UPDATE assignments SET state=?, submit_time=?, processing_seconds=?, response=?"
                " WHERE task_id=? AND attempt=?",
                (int(AssignmentState.SUBMITTED), ts, processing_seconds, encoded, task_id, held["attempt"]),
            )
            answered = db.execute(
                "SELECT COUNT(*) FROM assignments WHERE task_id=? AND state=?", (task_id, int(AssignmentState.SUBMITTED))
            ).fetchone()[0]
            ready = answered >= task["redundancy"]
            new_state = TaskState.AGGREGATING if ready else TaskState.PROCESSING
            db.execute("UPDATE tasks SET state=?, update_time=? WHERE task_id=?", (int(new_state), ts, task_id))
        return SubmitOutcome(duplicate=False, state=new_state, ready=ready)

    async def fail_assignment(
        self, task_id: str, miner_id: str, error: str, *, now: datetime, policy: RetryPolicy
    ) -> TaskState:
        def _fail() -> TaskState:
            with self._tx() as db:
                held = db.execute(
                    "SELECT attempt, state FROM assignments WHERE task_id=? AND miner_id=?"
                    " ORDER BY attempt DESC LIMIT 1",
                    (task_id, miner_id),
                ).fetchone()
                if held is None:
                    # Same answer as submit, so a miner cannot probe which task ids exist.
                    raise errors.PermissionDenied(
                        f"task {task_id!r} is not assigned to miner {miner_id!r}",
                        reason="TASK_NOT_ASSIGNED",
                        metadata={"task_id": task_id, "miner_id": miner_id},
                    )
                if held["state"] != AssignmentState.LEASED:
                    # Its lease already ended (answered, expired or failed): nothing to record.
                    return TaskState(db.execute("SELECT state FROM tasks WHERE task_id=?", (task_id,)).fetchone()[0])
                db.execute(
                    "UPDATE assignments SET state=?, error=? WHERE task_id=? AND attempt=?",
                    (int(AssignmentState.FAILED), error[:500], task_id, held["attempt"]),
                )
                return self._settle(db, task_id, now, policy, error)

        return await self._run(_fail)

    async def expire_leases(self, *, now: datetime, policy: RetryPolicy) -> list[str]:
        def _expire() -> list[str]:
            ready: list[str] = []
            with self._tx() as db:
                rows = db.execute(
                    "SELECT task_id, attempt FROM assignments WHERE state=? AND lease_expire_time<=?",
                    (int(AssignmentState.LEASED), _ts(now)),
                ).fetchall()
                for r in rows:
                    db.execute(
                        "UPDATE assignments SET state=?, error=? WHERE task_id=? AND attempt=?",
                        (int(AssignmentState.EXPIRED), "lease expired", r["task_id"], r["attempt"]),
                    )
                for task_id in sorted({r["task_id"] for r in rows}):
                    before = db.execute("SELECT state FROM tasks WHERE task_id=?", (task_id,)).fetchone()[0]
                    after = self._settle(db, task_id, now, policy, "lease expired")
                    # Only tasks this sweep made ready: one already AGGREGATING was reported before.
                    if after == TaskState.AGGREGATING and before != TaskState.AGGREGATING:
                        ready.append(task_id)
            return ready

        return await self._run(_expire)

    def _settle(self, db: sqlite3.Connection, task_id: str, now: datetime, policy: RetryPolicy, error: str) -> TaskState:
        """Decides a task's state after one of its leases ended without an answer."""
        task = db.execute("SELECT state, attempts, redundancy FROM tasks WHERE task_id=?", (task_id,)).fetchone()
        state = TaskState(task["state"])
        if state in _FINAL_STATES or state == TaskState.AGGREGATING:
            return state
        ts = _ts(now)
        counts = dict(
            db.execute(
                "SELECT state, COUNT(*) FROM assignments WHERE task_id=? AND (state=? OR (state=? AND lease_expire_time>?))"
                " GROUP BY state",
                (task_id, int(AssignmentState.SUBMITTED), int(AssignmentState.LEASED), ts),
            ).fetchall()
        )
        answered, leased = counts.get(int(AssignmentState.SUBMITTED), 0), counts.get(int(AssignmentState.LEASED), 0)
        failures = task["attempts"] - answered - leased
        if failures < policy.max_attempts:
            new_state = TaskState.PROCESSING if leased or answered else TaskState.QUEUED
            delay = policy.backoff_seconds * (2 ** max(0, failures - 1))
            db.execute(
                "UPDATE tasks SET state=?, not_before=?, update_time=? WHERE task_id=?",
                (int(new_state), ts + delay, ts, task_id),
            )
            return new_state
        if leased:
            return state
        if answered:
            db.execute("UPDATE tasks SET state=?, update_time=? WHERE task_id=?", (int(TaskState.AGGREGATING), ts, task_id))
            return TaskState.AGGREGATING
        reason = f"gave up after {failures} failed attempts; last error: {error}"
        db.execute(
            "UPDATE tasks SET state=?, failure_reason=?, complete_time=?, update_time=? WHERE task_id=?",
            (int(TaskState.FAILED), reason[:1000], ts, ts, task_id),
        )
        return TaskState.FAILED

    # -- endings ------------------------------------------------------------------------

    async def complete(self, task_id: str, result: TaskResult, *, now: datetime) -> bool:
        def _complete() -> bool:
            ts = _ts(now)
            transcript = json.dumps(transcript_to_json(result.transcript)) if result.transcript else None
            with self._tx() as db:
                cur = db.execute(
                    "UPDATE tasks SET state=?, complete_time=?, update_time=?, result_file_id=?,"
                    " result_content_type=?, transcript=? WHERE task_id=? AND state NOT IN (?,?)",
                    (int(TaskState.COMPLETED), ts, ts, result.result_file_id, result.result_content_type,
                     transcript, task_id, *map(int, _FINAL_STATES)),
                )
                if cur.rowcount == 0:
                    return False
                for miner_id, agreement in result.agreements.items():
                    db.execute(
                        "UPDATE assignments SET agreement=? WHERE task_id=? AND miner_id=? AND state=?",
                        (float(agreement), task_id, miner_id, int(AssignmentState.SUBMITTED)),
                    )
                return True

        return await self._run(_complete)

    async def fail(self, task_id: str, reason: str, *, now: datetime) -> bool:
        def _fail() -> bool:
            ts = _ts(now)
            with self._tx() as db:
                cur = db.execute(
                    "UPDATE tasks SET state=?, failure_reason=?, complete_time=?, update_time=?"
                    " WHERE task_id=? AND state NOT IN (?,?)",
                    (int(TaskState.FAILED), reason[:1000], ts, ts, task_id, *map(int, _FINAL_STATES)),
                )
                return cur.rowcount > 0

        return await self._run(_fail)

    async def miner_leases(self, miner_id: str, *, now: datetime, limit: int) -> list[Task]:
        def _leases() -> list[Task]:
            rows = self._db.execute(
                "SELECT DISTINCT a.task_id FROM assignments a JOIN tasks t ON t.task_id=a.task_id"
                " WHERE a.miner_id=? AND a.state=? AND a.lease_expire_time>? AND t.state NOT IN (?,?)"
                " ORDER BY a.create_time LIMIT ?",
                (miner_id, int(AssignmentState.LEASED), _ts(now), *map(int, _FINAL_STATES), limit),
            ).fetchall()
            return [self._load(r["task_id"]) for r in rows]

        return await self._run(_leases)

    async def aggregating(self, *, limit: int) -> list[Task]:
        def _ready() -> list[Task]:
            rows = self._db.execute(
                "SELECT task_id FROM tasks WHERE state=? ORDER BY seq LIMIT ?", (int(TaskState.AGGREGATING), limit)
            ).fetchall()
            return [self._load(r["task_id"]) for r in rows]

        return await self._run(_ready)


# -- row conversion ---------------------------------------------------------------------


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


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


def _task_from_row(row: sqlite3.Row, assignments: list[Assignment]) -> Task:
    return Task(
        task_id=row["task_id"],
        spec=_spec_from_json(row["spec"]),
        state=TaskState(row["state"]),
        create_time=_dt(row["create_time"]),  # type: ignore[arg-type]
        update_time=_dt(row["update_time"]),  # type: ignore[arg-type]
        complete_time=_dt(row["complete_time"]),
        result_file_id=row["result_file_id"],
        result_content_type=row["result_content_type"],
        transcript=transcript_from_json(json.loads(row["transcript"])) if row["transcript"] else None,
        failure_reason=row["failure_reason"],
        attempts=row["attempts"],
        assignments=tuple(assignments),
    )


def _assignment_from_row(row: sqlite3.Row) -> Assignment:
    return Assignment(
        miner_id=row["miner_id"],
        attempt=row["attempt"],
        state=AssignmentState(row["state"]),
        create_time=_dt(row["create_time"]),  # type: ignore[arg-type]
        lease_expire_time=_dt(row["lease_expire_time"]),  # type: ignore[arg-type]
        submit_time=_dt(row["submit_time"]),
        processing_seconds=row["processing_seconds"],
        agreement=row["agreement"],
        error=row["error"],
        response=json.loads(row["response"]) if row["response"] else None,
    )


def _encode_token(order_value: float, seq: int, filter_key: str) -> str:
    raw = json.dumps([order_value, seq, filter_key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, filter_key: str) -> tuple[float, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        order_value, seq, key = json.loads(base64.urlsafe_b64decode(padded))
        if key != filter_key:
            raise ValueError("filter changed")
        return float(order_value), int(seq)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise errors.InvalidArgument(
            "page_token is not valid for this listing (it must come from the previous page with the same filters)",
            reason="INVALID_PAGE_TOKEN",
            metadata={"field": "page_token"},
        ) from exc

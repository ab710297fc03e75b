"""The evaluation part of the SQLite task store (mixed into SqliteTaskStore)."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from violet_grpc import errors
from violet_grpc.evaluations import Evaluation, MinerScore
from violet_grpc.tasks import AssignmentState, Page, TaskState, TaskType

SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
  task_id TEXT NOT NULL REFERENCES tasks(task_id),
  validator_id TEXT NOT NULL,
  validator_stake REAL NOT NULL,
  create_time REAL NOT NULL,
  scores TEXT NOT NULL,
  PRIMARY KEY (task_id, validator_id)
);
CREATE TABLE IF NOT EXISTS evaluation_scores (
  task_id TEXT NOT NULL,
  validator_id TEXT NOT NULL,
  miner_id TEXT NOT NULL,
  create_time REAL NOT NULL,
  PRIMARY KEY (task_id, validator_id, miner_id)
);
CREATE INDEX IF NOT EXISTS evaluation_scores_by_miner ON evaluation_scores(miner_id, create_time);
"""

_DEFAULT_PAGE_SIZE = 20


class SqliteEvaluations:
    """Evaluation methods of the TaskStore contract; needs ``_db``, ``_run``, ``_tx`` and ``_load``."""

    _db: sqlite3.Connection

    async def record_evaluation(self, evaluation: Evaluation, *, now: datetime) -> bool:
        return await self._run(self._record_evaluation, evaluation, now)  # type: ignore[attr-defined]

    def _record_evaluation(self, evaluation: Evaluation, now: datetime) -> bool:
        from violet_grpc.storage.sqlite_task_store import _ts

        with self._tx() as db:  # type: ignore[attr-defined]
            row = db.execute("SELECT state FROM tasks WHERE task_id=?", (evaluation.task_id,)).fetchone()
            if row is None:
                raise errors.NotFound(f"no task {evaluation.task_id!r}", reason="TASK_NOT_FOUND",
                                      metadata={"task_id": evaluation.task_id})
            if row["state"] != int(TaskState.COMPLETED):
                raise errors.FailedPrecondition(f"task {evaluation.task_id} is not completed; only completed tasks "
                                                "are evaluated", reason="TASK_NOT_COMPLETED",
                                                metadata={"task_id": evaluation.task_id})
            answered = {r["miner_id"] for r in db.execute(
                "SELECT miner_id FROM assignments WHERE task_id=? AND state=?",
                (evaluation.task_id, int(AssignmentState.SUBMITTED)))}
            strangers = sorted({s.miner_id for s in evaluation.scores} - answered)
            if strangers:
                raise errors.InvalidArgument(f"miners {strangers} did not answer task {evaluation.task_id}",
                                             reason="MINER_DID_NOT_ANSWER",
                                             metadata={"task_id": evaluation.task_id, "miner_id": strangers[0]})
            ts = _ts(now)
            inserted = db.execute(
                "INSERT OR IGNORE INTO evaluations(task_id,validator_id,validator_stake,create_time,scores)"
                " VALUES(?,?,?,?,?)",
                (evaluation.task_id, evaluation.validator_id, float(evaluation.validator_stake), ts,
                 json.dumps([_score_json(s) for s in evaluation.scores])),
            ).rowcount == 1
            if inserted:
                db.executemany(
                    "INSERT OR IGNORE INTO evaluation_scores(task_id,validator_id,miner_id,create_time) VALUES(?,?,?,?)",
                    [(evaluation.task_id, evaluation.validator_id, s.miner_id, ts) for s in evaluation.scores],
                )
        return inserted

    async def unevaluated(
        self, validator_id: str, *, type: TaskType | None = None, page_size: int = 0, page_token: str = "",
        since: datetime | None = None,
    ) -> Page:
        return await self._run(self._unevaluated, validator_id, type, page_size, page_token, since)  # type: ignore[attr-defined]

    def _unevaluated(self, validator_id: str, type: TaskType | None, page_size: int, page_token: str,
                     since: datetime | None) -> Page:
        from violet_grpc.storage.sqlite_task_store import _decode_token, _encode_token, _ts

        if page_size < 0:
            raise errors.InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE",
                                         metadata={"page_size": str(page_size)})
        page_size = page_size or _DEFAULT_PAGE_SIZE
        filter_key = f"eval:{validator_id}:{int(type or 0)}:{_ts(since) if since else 0}"
        where = ["t.state=?", "NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.task_id=t.task_id AND e.validator_id=?)",
                 "EXISTS (SELECT 1 FROM assignments a WHERE a.task_id=t.task_id AND a.state=?)"]
        args: list[Any] = [int(TaskState.COMPLETED), validator_id, int(AssignmentState.SUBMITTED)]
        if type is not None:
            where.append("t.type=?")
            args.append(int(type))
        if since is not None:
            where.append("t.complete_time>=?")
            args.append(_ts(since))
        if page_token:
            after = _decode_token(page_token, filter_key)
            where.append("(t.complete_time, t.seq) > (?, ?)")
            args.extend(after)
        sql = ("SELECT t.task_id, t.seq, t.complete_time FROM tasks t WHERE " + " AND ".join(where)
               + " ORDER BY t.complete_time, t.seq LIMIT ?")
        rows = self._db.execute(sql, (*args, page_size + 1)).fetchall()
        tasks = [self._load(r["task_id"]) for r in rows[:page_size]]  # type: ignore[attr-defined]
        token = ""
        if len(rows) > page_size:
            last = rows[page_size - 1]
            token = _encode_token(last["complete_time"], last["seq"], filter_key)
        return Page(tasks=tasks, next_page_token=token)

    async def miner_evaluations(self, miner_id: str, *, limit: int = 50) -> list[Evaluation]:
        return await self._run(self._miner_evaluations, miner_id, limit)  # type: ignore[attr-defined]

    def _miner_evaluations(self, miner_id: str, limit: int) -> list[Evaluation]:
        rows = self._db.execute(
            "SELECT e.* FROM evaluation_scores s JOIN evaluations e"
            " ON e.task_id=s.task_id AND e.validator_id=s.validator_id"
            " WHERE s.miner_id=? ORDER BY s.create_time DESC, e.rowid DESC LIMIT ?",
            (miner_id, max(0, limit)),
        ).fetchall()
        return [_evaluation_from_row(r) for r in rows]


def _score_json(score: MinerScore) -> dict[str, Any]:
    return {"miner_id": score.miner_id, "score": score.score, "word_error_rate": score.word_error_rate,
            "latency_seconds": score.latency_seconds}


def _evaluation_from_row(row: sqlite3.Row) -> Evaluation:
    from violet_grpc.storage.sqlite_task_store import _dt

    return Evaluation(
        task_id=row["task_id"], validator_id=row["validator_id"], validator_stake=row["validator_stake"],
        scores=tuple(MinerScore(**s) for s in json.loads(row["scores"])), create_time=_dt(row["create_time"]),
    )

"""The evaluation part of the Firestore task store (mixed into FirestoreTaskStore).

A verdict is one document in ``PREFIX_evaluations`` whose id is derived from (task,
validator), created only if absent: a validator judges a task once, whichever replica it
reaches. The same atomic batch adds the validator to the task's ``evaluated_by`` list
(conditional on the task document being unchanged), which ``unevaluated`` filters on.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from violet_grpc import errors
from violet_grpc.evaluations import Evaluation, MinerScore
from violet_grpc.tasks import AssignmentState, Page, TaskState, TaskType

_DEFAULT_PAGE_SIZE = 20


class FirestoreEvaluations:
    """Evaluation methods of the TaskStore contract; needs the store's ``_run``, ``_transact``,
    ``_task_ref``, ``_tasks``, ``_evaluations`` and ``_tasks_from_docs``."""

    _tasks: Any
    _evaluations: Any

    def _evaluation_ref(self, task_id: str, validator_id: str) -> Any:
        return self._evaluations.document(f"{task_id}.{hashlib.sha256(validator_id.encode()).hexdigest()[:40]}")

    async def record_evaluation(self, evaluation: Evaluation, *, now: datetime) -> bool:
        return await self._run(self._record_evaluation, evaluation, now)  # type: ignore[attr-defined]

    def _record_evaluation(self, evaluation: Evaluation, now: datetime) -> bool:
        from violet_grpc.storage.firestore_task_store import _derive, _order_key, _us, _valid_doc_id

        task_id = evaluation.task_id
        not_found = errors.NotFound(f"no task {task_id!r}", reason="TASK_NOT_FOUND", metadata={"task_id": task_id})
        if not _valid_doc_id(task_id):
            raise not_found
        ts = _us(now)
        task_ref = self._task_ref(task_id)  # type: ignore[attr-defined]
        eval_ref = self._evaluation_ref(task_id, evaluation.validator_id)
        order_key = _order_key(ts)

        def tx_fn(tx: Any) -> bool:
            snap = tx.get(task_ref)
            if not snap.exists:
                raise not_found
            doc = snap.to_dict()
            if doc["state"] != TaskState.COMPLETED:
                raise errors.FailedPrecondition(
                    f"task {task_id} is not completed; only completed tasks are evaluated",
                    reason="TASK_NOT_COMPLETED", metadata={"task_id": task_id},
                )
            answered = {a["miner_id"] for a in doc["assignments"] if a["state"] == AssignmentState.SUBMITTED}
            strangers = sorted({s.miner_id for s in evaluation.scores} - answered)
            if strangers:
                raise errors.InvalidArgument(
                    f"miners {strangers} did not answer task {task_id}", reason="MINER_DID_NOT_ANSWER",
                    metadata={"task_id": task_id, "miner_id": strangers[0]},
                )
            if tx.get(eval_ref).exists:
                return False
            tx.create(eval_ref, {
                "task_id": task_id,
                "validator_id": evaluation.validator_id,
                "validator_stake": float(evaluation.validator_stake),
                "create_us": ts,
                "order_key": order_key,
                "scores": [_score_map(s) for s in evaluation.scores],
                "miner_ids": sorted({s.miner_id for s in evaluation.scores}),
            })
            doc["evaluated_by"] = sorted({*doc.get("evaluated_by", []), evaluation.validator_id})
            tx.set(task_ref, _derive(doc))
            return True

        return self._transact(tx_fn)  # type: ignore[attr-defined]

    async def unevaluated(
        self, validator_id: str, *, type: TaskType | None = None, page_size: int = 0, page_token: str = "",
        since: datetime | None = None,
    ) -> Page:
        return await self._run(self._unevaluated, validator_id, type, page_size, page_token, since)  # type: ignore[attr-defined]

    def _unevaluated(
        self, validator_id: str, type: TaskType | None, page_size: int, page_token: str, since: datetime | None
    ) -> Page:
        from google.cloud.firestore_v1.base_query import FieldFilter

        from violet_grpc.storage.firestore_task_store import _decode_token, _encode_token, _us

        if page_size < 0:
            raise errors.InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE",
                                         metadata={"page_size": str(page_size)})
        page_size = page_size or _DEFAULT_PAGE_SIZE
        since_us = max(_us(since), 0) if since is not None else 0
        filter_key = f"eval:{validator_id}:{int(type or 0)}:{since_us}"
        # "Not judged by this validator" has no index: scan completions in order from `since`
        # (validators ask for a recent window) and filter here, a batch at a time.
        query = self._tasks.where(filter=FieldFilter("state", "==", int(TaskState.COMPLETED)))
        if type is not None:
            query = query.where(filter=FieldFilter("type", "==", int(type)))
        query = query.where(filter=FieldFilter("complete_key", ">=", f"{since_us:020d}")).order_by("complete_key")
        cursor = _decode_token(page_token, filter_key) if page_token else None
        found: list[dict[str, Any]] = []
        batch = max(2 * page_size, 100)
        while len(found) <= page_size:
            page = query.start_after({"complete_key": cursor}) if cursor else query
            docs = [snap.to_dict() for snap in page.limit(batch).stream()]
            for doc in docs:
                if validator_id not in doc.get("evaluated_by", []) and any(
                    a["state"] == AssignmentState.SUBMITTED for a in doc["assignments"]
                ):
                    found.append(doc)
            if len(docs) < batch:
                break
            cursor = docs[-1]["complete_key"]
        token = _encode_token(found[page_size - 1]["complete_key"], filter_key) if len(found) > page_size else ""
        return Page(tasks=self._tasks_from_docs(found[:page_size]), next_page_token=token)  # type: ignore[attr-defined]

    async def miner_evaluations(self, miner_id: str, *, limit: int = 50) -> list[Evaluation]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        def _newest() -> list[Evaluation]:
            if limit <= 0:
                return []
            query = (self._evaluations.where(filter=FieldFilter("miner_ids", "array_contains", miner_id))
                     .order_by("order_key", direction="DESCENDING").limit(limit))
            return [_evaluation_from_doc(snap.to_dict()) for snap in query.stream()]

        return await self._run(_newest)  # type: ignore[attr-defined]


def _score_map(score: MinerScore) -> dict[str, Any]:
    return {"miner_id": score.miner_id, "score": float(score.score), "word_error_rate": float(score.word_error_rate),
            "latency_seconds": float(score.latency_seconds)}


def _evaluation_from_doc(doc: dict[str, Any]) -> Evaluation:
    from violet_grpc.storage.firestore_task_store import _dt

    return Evaluation(
        task_id=doc["task_id"], validator_id=doc["validator_id"], validator_stake=float(doc["validator_stake"]),
        scores=tuple(MinerScore(**s) for s in doc["scores"]), create_time=_dt(doc["create_us"]),
    )

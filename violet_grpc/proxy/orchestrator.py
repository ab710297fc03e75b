"""The task lifecycle as the proxy drives it: accept, record answers, aggregate, complete.

Every step is a transactional call on the task store, so the proxy itself holds no state
that a crash could lose: a restarted proxy picks up queued, leased and aggregating tasks
from the store.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from violet_grpc import errors
from violet_grpc.proxy.aggregator import Answer, aggregate
from violet_grpc.proxy.jobs import transcript_file
from violet_grpc.proxy.task_events import TaskEvents
from violet_grpc.storage import FileStore, RetryPolicy, SubmitOutcome, TaskStore
from violet_grpc.tasks import Task, TaskSpec, TaskState
from violet_grpc.transcripts import transcript_to_json

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The current time, timezone-aware (all stores take aware datetimes)."""
    return datetime.now(timezone.utc)


class Orchestrator:
    """Creates tasks, takes answers and completes tasks exactly once."""

    def __init__(self, store: TaskStore, files: FileStore, events: TaskEvents, policy: RetryPolicy) -> None:
        self.store = store
        self.files = files
        self.events = events
        self.policy = policy
        self._on_created: list[Any] = []

    def on_created(self, callback: Any) -> None:
        """Registers a callback run after a new task is stored (the dispatcher's wake-up)."""
        self._on_created.append(callback)

    async def create_task(self, spec: TaskSpec, *, payload: bytes | None = None, content_type: str = "", filename: str = "") -> Task:
        """Stores the input (if any) and creates the task; a repeated idempotency key returns the first task."""
        if payload is not None:
            stored = await self.files.put(payload, content_type=content_type, filename=filename)
            spec = replace(spec, input_file_id=stored.file_id, input_content_type=stored.content_type,
                           filename=filename or spec.filename)
        task, created = await self.store.create(spec, now=utcnow())
        if created:
            for callback in self._on_created:
                callback()
        return task

    async def record_live(
        self, spec: TaskSpec, miner_id: str, response: dict[str, Any], *, payload: bytes | None = None,
        content_type: str = "", filename: str = "", failed: list[tuple[str, str]] = (),
    ) -> Task:
        """Stores work a live call (a stream) already did as a completed task.

        The task is created already leased to the miner that served it, so the dispatcher
        never hands it out again; miners that failed during the call are recorded first.
        """
        if payload is not None:
            stored = await self.files.put(payload, content_type=content_type, filename=filename)
            spec = replace(spec, input_file_id=stored.file_id, input_content_type=stored.content_type, filename=filename)
        holder = failed[0][0] if failed else miner_id
        task, _ = await self.store.create(spec, now=utcnow(), leased_to=holder)
        policy = RetryPolicy(max_attempts=len(failed) + 1)
        for index, (failed_id, reason) in enumerate(failed):
            if index:
                await self.store.lease(task.task_id, failed_id, now=utcnow(), lease_seconds=60)
            await self.store.fail_assignment(task.task_id, failed_id, reason, now=utcnow(), policy=policy)
        if failed:
            await self.store.lease(task.task_id, miner_id, now=utcnow(), lease_seconds=60)
        await self.submit_answer(task.task_id, miner_id, response, 0.0)
        return await self.store.get(task.task_id)

    async def wait_final(self, task_id: str, timeout: float) -> Task:
        """Returns the task once COMPLETED or FAILED, or as it is when ``timeout`` runs out."""
        deadline = utcnow().timestamp() + timeout
        while True:
            task = await self.store.get(task_id)
            remaining = deadline - utcnow().timestamp()
            if task.state.is_final or remaining <= 0:
                return task
            await self.events.wait(task_id, timeout=remaining)

    async def submit_answer(
        self, task_id: str, miner_id: str, response: dict[str, Any], processing_seconds: float
    ) -> SubmitOutcome:
        """Buffers a miner's answer; completes the task when it was the last one needed."""
        outcome = await self.store.submit(task_id, miner_id, response, processing_seconds=processing_seconds, now=utcnow())
        self.events.changed(task_id)
        if outcome.ready:
            await self.finish(task_id)
            outcome = replace(outcome, state=(await self.store.get(task_id)).state)
        return outcome

    async def fail_answer(self, task_id: str, miner_id: str, error: str) -> TaskState:
        """Records a miner's failure; the store requeues the task or gives up on it."""
        state = await self.store.fail_assignment(task_id, miner_id, error, now=utcnow(), policy=self.policy)
        self.events.changed(task_id)
        if state == TaskState.AGGREGATING:
            await self.finish(task_id)
        return state

    async def fail_task(self, task_id: str, reason: str) -> None:
        """Fails a task for good (its input cannot be processed by anyone)."""
        await self.store.fail(task_id, reason, now=utcnow())
        self.events.changed(task_id)

    async def finish(self, task_id: str) -> bool:
        """Aggregates the buffered answers and completes the task; False if already final."""
        task = await self.store.get(task_id)
        if task.state != TaskState.AGGREGATING:
            return False
        answers = [Answer(a.miner_id, a.response or {}) for a in task.submitted()]
        if not answers:
            raise errors.Internal(f"task {task_id} is AGGREGATING with no answers")
        result = aggregate(task, answers)
        if result.transcript is not None:
            data, content_type, name = transcript_file(task_id, transcript_to_json(result.transcript))
            stored = await self.files.put(data, content_type=content_type, filename=name)
            result = replace(result, result_file_id=stored.file_id, result_content_type=content_type)
        done = await self.store.complete(task_id, result, now=utcnow())
        self.events.changed(task_id)
        if done:
            log.info("task %s completed (%d answers)", task_id, len(answers))
        return done

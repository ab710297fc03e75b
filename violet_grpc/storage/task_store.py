"""The TaskStore contract: tasks, leases and answers, with every transition transactional.

Exactly-once rests here: idempotency keys make creation repeatable, a lease is granted only
while the task needs more answers, an answer is taken only from the miner holding an
unexpired lease, and completion happens in one conditional write. Backends (SQLite,
Firestore) implement the same contract and pass the same test suite.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from violet_grpc.evaluations import Evaluation
from violet_grpc.tasks import Assignment, Page, Task, TaskResult, TaskSpec, TaskState, TaskType


@dataclass(frozen=True)
class SubmitOutcome:
    """What became of a miner's answer."""

    duplicate: bool
    state: TaskState
    #: True when this answer brought in the last one needed: aggregate now.
    ready: bool


@dataclass(frozen=True)
class RetryPolicy:
    """How failed or expired leases are retried."""

    max_attempts: int = 3
    backoff_seconds: float = 1.0


class TaskStore(Protocol):
    """Persistent task state shared by every proxy replica."""

    #: Short backend name shown in status ("sqlite", "firestore").
    backend: str

    async def create(
        self, spec: TaskSpec, *, now: datetime, leased_to: str = "", lease_seconds: float = 60.0
    ) -> tuple[Task, bool]:
        """Creates a QUEUED task; with a known idempotency key returns the existing one (False).

        With ``leased_to``, the task is created PROCESSING and already leased to that miner in
        the same transaction: the record of work a live call is doing, which the dispatcher
        must never hand out again.
        """
        ...

    async def get(self, task_id: str) -> Task:
        """Returns a task; raises NotFound."""
        ...

    async def list(
        self,
        *,
        state: TaskState | None = None,
        type: TaskType | None = None,
        page_size: int = 50,
        page_token: str = "",
        completed_only: bool = False,
    ) -> Page:
        """Newest first (most recently completed first with ``completed_only``).

        ``page_size`` 0 means the default (50); a negative one, or a token from another
        listing, raises InvalidArgument."""
        ...

    async def count_by_state(self) -> dict[TaskState, int]:
        """Number of tasks in each state that has any."""
        ...

    async def completed_since(self, since: datetime) -> int:
        """Tasks completed at or after ``since``."""
        ...

    async def dispatchable(self, *, now: datetime, limit: int) -> list[Task]:
        """Non-streaming tasks that need more leases and are past their backoff, oldest first."""
        ...

    async def lease(self, task_id: str, miner_id: str, *, now: datetime, lease_seconds: float) -> Assignment | None:
        """Leases a task to a miner if it still needs answers and the miner holds none."""
        ...

    async def start(self, task_id: str, miner_id: str, *, now: datetime) -> None:
        """Marks a leased task PROCESSING (a miner began work); a no-op unless the miner holds a live lease."""
        ...

    async def submit(
        self,
        task_id: str,
        miner_id: str,
        response: dict[str, Any],
        *,
        processing_seconds: float,
        now: datetime,
    ) -> SubmitOutcome:
        """Buffers a miner's answer. Raises PermissionDenied for a task the miner does not
        hold and FailedPrecondition for an expired lease or a different repeat answer."""
        ...

    async def fail_assignment(
        self, task_id: str, miner_id: str, error: str, *, now: datetime, policy: RetryPolicy
    ) -> TaskState:
        """Records a miner's failure and requeues (with backoff), aggregates what is in, or fails the task.

        Raises PermissionDenied when the miner never held a lease on the task; when its lease
        already ended (answered, expired, failed) nothing changes and the state is returned."""
        ...

    async def expire_leases(self, *, now: datetime, policy: RetryPolicy) -> list[str]:
        """Expires overdue leases as :meth:`fail_assignment` would; returns tasks now ready to aggregate."""
        ...

    async def complete(self, task_id: str, result: TaskResult, *, now: datetime) -> bool:
        """Completes a task once; False when it was already final."""
        ...

    async def fail(self, task_id: str, reason: str, *, now: datetime) -> bool:
        """Fails a task once; False when it was already final."""
        ...

    async def miner_leases(self, miner_id: str, *, now: datetime, limit: int) -> list[Task]:
        """Unfinished tasks with an unexpired lease held by the miner and no answer from it yet."""
        ...

    async def aggregating(self, *, limit: int) -> list[Task]:
        """Tasks whose answers are all in but which are not completed yet (crash recovery)."""
        ...

    # -- validators' evaluations of organic tasks -------------------------------------------

    async def record_evaluation(self, evaluation: Evaluation, *, now: datetime) -> bool:
        """Keeps a validator's verdict on a COMPLETED task, once per (task, validator).

        Returns False (and changes nothing) when this validator had judged the task before.
        Raises NotFound for an unknown task, FailedPrecondition (``TASK_NOT_COMPLETED``) for
        a task that is not completed, InvalidArgument (``MINER_DID_NOT_ANSWER``) for a score
        of a miner without a submitted answer to the task."""
        ...

    async def unevaluated(
        self, validator_id: str, *, type: TaskType | None = None, page_size: int = 0, page_token: str = "",
        since: datetime | None = None,
    ) -> Page:
        """Completed tasks with at least one submitted answer that ``validator_id`` has not
        evaluated, oldest completion first (completed at or after ``since`` when given).
        ``page_size`` 0 means 20; a negative one or a foreign token raises InvalidArgument."""
        ...

    async def miner_evaluations(self, miner_id: str, *, limit: int = 50) -> list[Evaluation]:
        """The newest verdicts that scored ``miner_id`` (whole verdicts), newest first."""
        ...

    async def close(self) -> None:
        """Releases connections."""
        ...

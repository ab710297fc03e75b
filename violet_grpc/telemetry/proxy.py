"""Proxy metrics, observed at the task store: every transition the orchestrator, dispatcher,
stream relay and gateways make goes through it, so nothing has to call telemetry by hand.

Logged (``proxy/`` prefix): ``tasks_created`` (also by type), ``tasks_completed``,
``tasks_failed``, ``error_rate`` (failed / finished), ``task_seconds`` (creation to
completion, mean/p50/p95/max), ``answers`` and ``miner_failures`` with ``miner_error_rate``,
``miner_processing_seconds``, per-miner ``miner_agreement/<id>`` (agreement with the
consensus, the proxy's own score of each answer), ``miner_score/<id>`` (the validators' score
the registry weights selection by), ``miners_online`` and ``tasks/<STATE>`` / ``queue_depth``.
Each comes with the ``_per_min`` rate and ``_total`` the sink derives.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from violet_grpc.storage.task_store import RetryPolicy, SubmitOutcome, TaskStore
from violet_grpc.tasks import TaskResult, TaskSpec, TaskState
from violet_grpc.telemetry.sink import Telemetry

log = logging.getLogger(__name__)


def instrument_proxy(store: TaskStore, registry: Any, telemetry: Telemetry) -> TaskStore:
    """Returns ``store`` reporting to ``telemetry`` (``store`` itself when telemetry is off)."""
    if not telemetry.enabled:
        return store
    telemetry.role("proxy")
    telemetry.ratio("proxy/error_rate", "proxy/tasks_failed", "proxy/tasks_completed", "proxy/tasks_failed")
    telemetry.ratio("proxy/miner_error_rate", "proxy/miner_failures", "proxy/answers", "proxy/miner_failures")
    telemetry.sampler(lambda: _registry_sample(registry))
    return ObservedTaskStore(store, telemetry)


def _registry_sample(registry: Any) -> dict[str, float]:
    miners = list(registry.all())
    sample = {"proxy/miners_online": float(sum(registry.is_online(m) for m in miners))}
    for miner in miners:
        sample[f"proxy/miner_score/{miner.miner_id}"] = float(miner.score)
    return sample


class ObservedTaskStore:
    """A TaskStore that reports what happens to telemetry; the wrapped store does the work.

    Methods it does not observe (including any added to the TaskStore protocol later) pass
    straight through. Reports never wait on telemetry; the one extra read a completion
    needs (for its duration and agreements) runs in the background.
    """

    def __init__(self, inner: TaskStore, telemetry: Telemetry) -> None:
        self._inner = inner
        self._telemetry = telemetry
        self._background: set[asyncio.Task[None]] = set()
        self._sampling: asyncio.Task[None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def inner(self) -> TaskStore:
        """The store doing the work."""
        return self._inner

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _ensure_sampling(self) -> None:
        if self._sampling is None:
            self._sampling = asyncio.get_running_loop().create_task(self._sample_states())

    async def _sample_states(self) -> None:
        """Queue depth and tasks by state, refreshed once per telemetry window."""
        while True:
            try:
                counts = await self._inner.count_by_state()
                for state in TaskState:
                    self._telemetry.gauge(f"proxy/tasks/{state.name}", counts.get(state, 0))
                self._telemetry.gauge("proxy/queue_depth", counts.get(TaskState.QUEUED, 0))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.debug("telemetry could not count tasks", exc_info=True)
            await asyncio.sleep(self._telemetry.settings.flush_seconds)

    # -- observed transitions -------------------------------------------------------------

    async def create(self, spec: TaskSpec, **kwargs: Any) -> Any:
        self._ensure_sampling()
        task, created = await self._inner.create(spec, **kwargs)
        if created:
            self._telemetry.count("proxy/tasks_created")
            self._telemetry.count(f"proxy/tasks_created/{spec.type.name}")
        return task, created

    async def submit(self, task_id: str, miner_id: str, response: dict[str, Any], **kwargs: Any) -> SubmitOutcome:
        outcome = await self._inner.submit(task_id, miner_id, response, **kwargs)
        if not outcome.duplicate:
            self._telemetry.count("proxy/answers")
            self._telemetry.observe("proxy/miner_processing_seconds", kwargs.get("processing_seconds", 0.0))
        return outcome

    async def fail_assignment(
        self, task_id: str, miner_id: str, error: str, *, now: datetime, policy: RetryPolicy
    ) -> TaskState:
        state = await self._inner.fail_assignment(task_id, miner_id, error, now=now, policy=policy)
        self._telemetry.count("proxy/miner_failures")
        self._telemetry.count(f"proxy/miner_failures/{miner_id}")
        if state == TaskState.FAILED:
            self._later(self._failed_now(task_id, now))
        return state

    async def complete(self, task_id: str, result: TaskResult, *, now: datetime) -> bool:
        done = await self._inner.complete(task_id, result, now=now)
        if done:
            self._telemetry.count("proxy/tasks_completed")
            self._later(self._completed(task_id))
        return done

    async def fail(self, task_id: str, reason: str, *, now: datetime) -> bool:
        failed = await self._inner.fail(task_id, reason, now=now)
        if failed:
            self._telemetry.count("proxy/tasks_failed")
        return failed

    async def close(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)
        with contextlib.suppress(asyncio.CancelledError):
            if self._sampling is not None:
                await self._sampling
        await self._inner.close()

    # -- background reads -----------------------------------------------------------------

    async def _completed(self, task_id: str) -> None:
        try:
            task = await self._inner.get(task_id)
        except Exception:
            return
        if task.complete_time is not None:
            seconds = (task.complete_time - task.create_time).total_seconds()
            self._telemetry.observe("proxy/task_seconds", seconds)
            self._telemetry.observe(f"proxy/task_seconds/{task.type.name}", seconds)
        for answer in task.submitted():
            self._telemetry.observe(f"proxy/miner_agreement/{answer.miner_id}", answer.agreement)

    async def _failed_now(self, task_id: str, now: datetime) -> None:
        """Counts a task the retry policy gave up on, once: only the call that failed it matches."""
        try:
            task = await self._inner.get(task_id)
        except Exception:
            return
        if task.state == TaskState.FAILED and task.complete_time == now:
            self._telemetry.count("proxy/tasks_failed")

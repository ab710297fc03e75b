"""Hands queued tasks to miners over push delivery, with leases, retries and failover.

The dispatcher owns no task state: it asks the store which tasks need miners, leases them
transactionally, runs each job with the lease as its deadline and records the outcome. A
failed or expired lease goes back to the store, which requeues the task with backoff or
fails it after the retry limit. Tasks no push miner can take stay queued for pull miners.
"""
from __future__ import annotations

import asyncio
import logging

import grpc

from violet_grpc import errors
from violet_grpc.proxy.jobs import JOBS
from violet_grpc.proxy.miner_registry import MinerHandle, MinerRegistry
from violet_grpc.proxy.orchestrator import Orchestrator, utcnow
from violet_grpc.rpc_errors import from_rpc_error
from violet_grpc.tasks import Task

log = logging.getLogger(__name__)

#: Miner errors that mean the input itself is bad: retrying elsewhere cannot help.
_INPUT_ERRORS = ("INVALID_ARGUMENT",)


class Dispatcher:
    """Background loop that leases work to miners and runs it."""

    def __init__(self, orchestrator: Orchestrator, registry: MinerRegistry, *, lease_seconds: float, tick_seconds: float = 0.5) -> None:
        self.orchestrator = orchestrator
        self.store = orchestrator.store
        self.registry = registry
        self.lease_seconds = lease_seconds
        self.tick_seconds = tick_seconds
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Runs a dispatch round now rather than at the next tick."""
        self._wake.set()

    async def start(self) -> None:
        """Finishes tasks a previous run left aggregating, then starts the loop."""
        for task in await self.store.aggregating(limit=1000):
            await self.orchestrator.finish(task.task_id)
        self._loop_task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stops dispatching; running jobs are cancelled (their leases expire and are retried)."""
        if self._loop_task:
            self._loop_task.cancel()
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.tick_seconds)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.dispatch_round()
            except Exception:
                log.exception("dispatch round failed; retrying at the next tick")

    async def dispatch_round(self) -> None:
        """Expires overdue leases, then leases dispatchable tasks to miners with room."""
        now = utcnow()
        for task_id in await self.store.expire_leases(now=now, policy=self.orchestrator.policy):
            await self.orchestrator.finish(task_id)
        for task in await self.store.dispatchable(now=now, limit=256):
            if not await self._assign(task):
                continue
        # A task whose completion failed after its last answer came in (the store refused a
        # write) would otherwise stay AGGREGATING until the proxy restarts; finish is idempotent.
        for task in await self.store.aggregating(limit=64):
            try:
                await self.orchestrator.finish(task.task_id)
            except errors.VioletError as exc:
                log.warning("task %s is still aggregating: %s", task.task_id, exc.message)

    async def _assign(self, task: Task) -> bool:
        now = utcnow()
        busy = {a.miner_id for a in task.assignments if a in task.active_leases(now) or a in task.submitted()}
        needed = task.spec.redundancy - len(busy)
        # A miner whose lease on this task failed or expired (it hung, or crashed) gets the task
        # back only when no other miner can take it; otherwise a retry may land on it again.
        tried = {a.miner_id for a in task.assignments} - busy
        assigned = False
        for _ in range(needed):
            miner = self.registry.pick(task.type, exclude=busy | tried) or self.registry.pick(task.type, exclude=busy)
            if miner is None:
                break
            assignment = await self.store.lease(task.task_id, miner.miner_id, now=now, lease_seconds=self.lease_seconds)
            if assignment is None:
                break
            busy.add(miner.miner_id)
            miner.in_flight += 1
            job = asyncio.create_task(self._run_job(task, miner))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
            assigned = True
        if assigned:
            self.orchestrator.events.changed(task.task_id)
        return assigned

    async def _run_job(self, task: Task, miner: MinerHandle) -> None:
        try:
            await self.store.start(task.task_id, miner.miner_id, now=utcnow())
            self.orchestrator.events.changed(task.task_id)
            response, seconds = await JOBS[task.type](task, miner, self.orchestrator.files, self.lease_seconds)
            await self.orchestrator.submit_answer(task.task_id, miner.miner_id, response, seconds)
        except asyncio.CancelledError:
            raise
        except grpc.RpcError as exc:
            await self._job_failed(task, miner, from_rpc_error(exc))
        except errors.VioletError as exc:
            await self._job_failed(task, miner, exc)
        except Exception as exc:
            log.exception("job for task %s on %s failed", task.task_id, miner.miner_id)
            await self.orchestrator.fail_answer(task.task_id, miner.miner_id, f"proxy error: {exc}")
        finally:
            miner.in_flight -= 1
            self.wake()

    async def _job_failed(self, task: Task, miner: MinerHandle, error: errors.VioletError) -> None:
        log.info("task %s on miner %s failed: %s %s", task.task_id, miner.miner_id, error.code_name, error.message)
        if error.code_name in _INPUT_ERRORS:
            await self.orchestrator.fail_task(task.task_id, f"the input cannot be processed: {error.message}")
            return
        if error.code_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN"):
            self.registry.mark_unreachable(miner)
        await self.orchestrator.fail_answer(task.task_id, miner.miner_id, f"{error.code_name}: {error.message}")

"""The evaluation part of the TaskStore contract, run against every task-store backend."""
from __future__ import annotations

import asyncio

import pytest

from violet_grpc import errors
from violet_grpc.evaluations import Evaluation, MinerScore
from violet_grpc.storage import TaskStore
from violet_grpc.tasks import Task, TaskResult, TaskType

from .conftest import TaskStoreBackend
from .test_task_store_contract import answer, at, ids, lease, new_task


async def completed(store: TaskStore, when: float, *, miners: tuple[str, ...] = ("m1",), **kw: object) -> Task:
    """A task answered by ``miners`` and completed at ``when``."""
    task = await new_task(store, when=when - 2, redundancy=len(miners), **kw)
    for miner in miners:
        assert await lease(store, task, miner, when=when - 2)
        await answer(store, task, miner, when=when - 1)
    assert await store.complete(task.task_id, TaskResult(), now=at(when))
    return task


def verdict(task: Task, validator: str = "v1", **scores: float) -> Evaluation:
    return Evaluation(task.task_id, validator, 10.0, tuple(MinerScore(m, s) for m, s in (scores or {"m1": 0.9}).items()))


async def test_a_verdict_is_kept_once_per_task_and_validator(task_store: TaskStore) -> None:
    task = await completed(task_store, 10, miners=("m1", "m2"))
    assert await task_store.record_evaluation(verdict(task, m1=0.9, m2=0.4), now=at(20))
    assert not await task_store.record_evaluation(verdict(task, m1=0.1), now=at(21))
    assert await task_store.record_evaluation(verdict(task, "v2", m2=0.5), now=at(22))

    [newest, oldest] = await task_store.miner_evaluations("m2", limit=10)
    assert (newest.validator_id, oldest.validator_id) == ("v2", "v1")
    assert oldest.scores == (MinerScore("m1", 0.9), MinerScore("m2", 0.4))
    assert oldest.create_time == at(20) and oldest.validator_stake == 10.0
    assert [e.validator_id for e in await task_store.miner_evaluations("m1", limit=10)] == ["v1"]
    assert len(await task_store.miner_evaluations("m2", limit=1)) == 1
    assert await task_store.miner_evaluations("nobody", limit=10) == []


async def test_bad_verdicts_are_refused_and_change_nothing(task_store: TaskStore) -> None:
    done = await completed(task_store, 10)
    running = await new_task(task_store, when=11)
    with pytest.raises(errors.NotFound):
        await task_store.record_evaluation(Evaluation("f" * 32, "v1", 1.0, (MinerScore("m1", 1.0),)), now=at(20))
    with pytest.raises(errors.FailedPrecondition) as caught:
        await task_store.record_evaluation(verdict(running), now=at(20))
    assert caught.value.reason == "TASK_NOT_COMPLETED"
    with pytest.raises(errors.InvalidArgument) as caught:
        await task_store.record_evaluation(verdict(done, m1=0.5, stranger=1.0), now=at(20))
    assert caught.value.reason == "MINER_DID_NOT_ANSWER"
    assert ids((await task_store.unevaluated("v1")).tasks) == [done.task_id]
    assert await task_store.miner_evaluations("m1", limit=10) == []


async def test_unevaluated_lists_answered_completions_oldest_first(task_store: TaskStore) -> None:
    late = await completed(task_store, 30)
    early = await completed(task_store, 10)
    tts = await completed(task_store, 20, type=TaskType.SPEECH_SYNTHESIS)
    judged = await completed(task_store, 25)
    unanswered = await new_task(task_store, when=5)
    assert await task_store.complete(unanswered.task_id, TaskResult(), now=at(15))
    await new_task(task_store, when=40)  # not completed
    assert await task_store.record_evaluation(verdict(judged), now=at(50))

    assert ids((await task_store.unevaluated("v1")).tasks) == [early.task_id, tts.task_id, late.task_id]
    assert ids((await task_store.unevaluated("v2")).tasks) == [early.task_id, tts.task_id, judged.task_id, late.task_id]
    assert ids((await task_store.unevaluated("v1", type=TaskType.TRANSCRIPTION)).tasks) == [early.task_id, late.task_id]
    assert ids((await task_store.unevaluated("v1", since=at(20))).tasks) == [tts.task_id, late.task_id]

    seen, token = [], ""
    for _ in range(10):
        page = await task_store.unevaluated("v2", page_size=1, page_token=token)
        seen += ids(page.tasks)
        token = page.next_page_token
        if not token:
            break
    assert seen == [early.task_id, tts.task_id, judged.task_id, late.task_id]
    with pytest.raises(errors.InvalidArgument):
        await task_store.unevaluated("v1", page_size=-1)
    first = await task_store.unevaluated("v2", page_size=1)
    with pytest.raises(errors.InvalidArgument):
        await task_store.unevaluated("v1", page_size=1, page_token=first.next_page_token)


async def test_two_replicas_keep_one_verdict(task_backend: TaskStoreBackend) -> None:
    one = await task_backend.open()
    two = await task_backend.open()
    task = await completed(one, 10)
    fresh = await asyncio.gather(*(
        replica.record_evaluation(verdict(task, m1=0.1 * i), now=at(20 + i)) for i, replica in enumerate([one, two] * 4)
    ))
    assert sorted(fresh) == [False] * 7 + [True]
    assert len(await two.miner_evaluations("m1", limit=10)) == 1
    assert (await one.unevaluated("v1")).tasks == []

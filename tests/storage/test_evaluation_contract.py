"""The evaluation part of the TaskStore contract, run against every backend.

Kept apart from test_task_store_contract.py (same fixtures, same backends). A backend that
has not implemented evaluations yet is skipped here, not failed, until it does.
"""
from __future__ import annotations

import pytest

from violet_grpc import errors
from violet_grpc.evaluations import Evaluation, MinerScore, combine
from violet_grpc.storage import TaskStore
from violet_grpc.tasks import TaskResult, TaskType

from .test_task_store_contract import ANSWER, answer, at, lease, new_task


@pytest.fixture
def store(task_store: TaskStore) -> TaskStore:
    if not hasattr(task_store, "record_evaluation"):
        pytest.skip(f"{task_store.backend} does not implement evaluations yet")
    return task_store


async def completed(store: TaskStore, miners: tuple[str, ...] = ("m1", "m2"), when: float = 0.0, **kw: object):
    task = await new_task(store, when, redundancy=len(miners), **kw)
    for miner in miners:
        await lease(store, task, miner, when)
        await answer(store, task, miner, when + 1)
    await store.complete(task.task_id, TaskResult(transcript=None), now=at(when + 2))
    return await store.get(task.task_id)


def verdict(task_id: str, validator: str = "v1", stake: float = 10.0, **scores: float) -> Evaluation:
    return Evaluation(task_id=task_id, validator_id=validator, validator_stake=stake,
                      scores=tuple(MinerScore(m, s) for m, s in (scores or {"m1": 0.9, "m2": 0.2}).items()))


async def test_verdict_is_kept_once_per_task_and_validator(store):
    task = await completed(store)
    assert await store.record_evaluation(verdict(task.task_id), now=at(10)) is True
    assert await store.record_evaluation(verdict(task.task_id, m1=0.0, m2=0.0), now=at(11)) is False
    [kept] = await store.miner_evaluations("m1")
    assert kept.score_of("m1").score == pytest.approx(0.9)
    assert await store.record_evaluation(verdict(task.task_id, "v2", 30.0), now=at(12)) is True
    assert len(await store.miner_evaluations("m2")) == 2


async def test_only_completed_tasks_and_their_own_miners(store):
    open_task = await new_task(store)
    with pytest.raises(errors.FailedPrecondition):
        await store.record_evaluation(verdict(open_task.task_id), now=at(5))
    with pytest.raises(errors.NotFound):
        await store.record_evaluation(verdict("f" * 32), now=at(5))
    task = await completed(store)
    with pytest.raises(errors.InvalidArgument) as caught:
        await store.record_evaluation(verdict(task.task_id, m1=1.0, intruder=1.0), now=at(5))
    assert caught.value.reason == "MINER_DID_NOT_ANSWER"
    assert await store.miner_evaluations("m1") == []


async def test_unevaluated_lists_oldest_first_pages_and_skips_judged(store):
    tasks = [await completed(store, when=i * 10.0) for i in range(5)]
    await completed(store, when=60.0, type=TaskType.SPEECH_SYNTHESIS)
    await store.record_evaluation(verdict(tasks[1].task_id), now=at(100))
    first = await store.unevaluated("v1", type=TaskType.TRANSCRIPTION, page_size=2)
    second = await store.unevaluated("v1", type=TaskType.TRANSCRIPTION, page_size=2, page_token=first.next_page_token)
    ids = [t.task_id for t in first.tasks + second.tasks]
    assert ids == [tasks[0].task_id, tasks[2].task_id, tasks[3].task_id, tasks[4].task_id]
    assert second.next_page_token == ""
    assert len((await store.unevaluated("v2", page_size=10)).tasks) == 6
    assert [t.task_id for t in (await store.unevaluated("v2", since=at(42))).tasks][:1] == [tasks[4].task_id]
    with pytest.raises(errors.InvalidArgument):
        await store.unevaluated("v1", page_size=-1)
    with pytest.raises(errors.InvalidArgument):
        await store.unevaluated("v2", page_token=first.next_page_token)
    assert ANSWER  # the shared answer every miner gave


def test_consensus_is_stake_weighted_per_validator():
    verdicts = [
        Evaluation("t1", "big", 300.0, (MinerScore("m", 0.8),)),
        Evaluation("t2", "big", 300.0, (MinerScore("m", 0.6),)),   # big's mean: 0.7
        Evaluation("t1", "small", 100.0, (MinerScore("m", 0.1),)),
        Evaluation("t1", "other", 50.0, (MinerScore("x", 1.0),)),  # says nothing about m
    ]
    assert combine("m", verdicts) == pytest.approx((300 * 0.7 + 100 * 0.1) / 400)
    assert combine("nobody", verdicts) is None
    no_stake = [Evaluation("t", "a", 0.0, (MinerScore("m", 1.0),)), Evaluation("t", "b", 0.0, (MinerScore("m", 0.0),))]
    assert combine("m", no_stake) == pytest.approx(0.5)
    with pytest.raises(errors.InvalidArgument):
        MinerScore("m", 1.5)

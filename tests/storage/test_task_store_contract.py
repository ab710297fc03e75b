"""The TaskStore contract, run against every backend in ``conftest.TASK_STORE_BACKENDS``.

Time is always passed in explicitly (``at(seconds)``), so lease expiry and backoff are
tested deterministically, without sleeping.
"""
from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from violet_grpc import errors
from violet_grpc.storage import RetryPolicy, TaskStore
from violet_grpc.tasks import (
    AssignmentState,
    AudioFormat,
    Task,
    TaskResult,
    TaskSpec,
    TaskState,
    TaskType,
)
from violet_grpc.transcripts import Segment, Transcript, Word

from .conftest import TaskStoreBackend

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)
LEASE = 30.0
POLICY = RetryPolicy(max_attempts=3, backoff_seconds=10.0)
ANSWER = {"transcript": {"text": "ask not what your country can do for you"}}
OTHER_ANSWER = {"transcript": {"text": "ask what you can do for your country"}}


def at(seconds: float) -> datetime:
    """A moment ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def spec(type: TaskType = TaskType.TRANSCRIPTION, *, redundancy: int = 1, key: str = "", **kw: object) -> TaskSpec:
    return TaskSpec(type=type, input_file_id="a" * 32, redundancy=redundancy, idempotency_key=key, **kw)  # type: ignore[arg-type]


async def new_task(store: TaskStore, when: float = 0.0, **kw: object) -> Task:
    task, created = await store.create(spec(**kw), now=at(when))  # type: ignore[arg-type]
    assert created
    return task


async def lease(store: TaskStore, task: Task, miner: str, when: float = 0.0, seconds: float = LEASE):
    return await store.lease(task.task_id, miner, now=at(when), lease_seconds=seconds)


async def answer(store: TaskStore, task: Task, miner: str, when: float = 1.0, response: dict | None = None):
    return await store.submit(task.task_id, miner, response or ANSWER, processing_seconds=0.5, now=at(when))


async def list_all(store: TaskStore, page_size: int, **filters: object) -> list[Task]:
    seen: list[Task] = []
    token = ""
    for _ in range(100):
        page = await store.list(page_size=page_size, page_token=token, **filters)  # type: ignore[arg-type]
        assert len(page.tasks) <= page_size
        seen.extend(page.tasks)
        token = page.next_page_token
        if not token:
            return seen
    raise AssertionError("pagination never ended")


async def list_all_from(store: TaskStore, token: str, *, page_size: int) -> list[Task]:
    seen: list[Task] = []
    while token:
        page = await store.list(page_size=page_size, page_token=token)
        seen.extend(page.tasks)
        token = page.next_page_token
    return seen


def ids(tasks: list[Task]) -> list[str]:
    return [t.task_id for t in tasks]


TRANSCRIPT = Transcript(
    text="ask not",
    language="en",
    language_probability=0.98,
    duration=1.5,
    segments=(Segment("ask not", 0.0, 1.5, (Word("ask", 0.0, 0.6, 0.9), Word("not", 0.7, 1.5, 0.8))),),
)


# -- creation and reads -----------------------------------------------------------------


async def test_create_makes_a_queued_task_that_get_returns(task_store: TaskStore) -> None:
    wanted = TaskSpec(
        type=TaskType.SPEECH_SYNTHESIS,
        input_file_id="b" * 32,
        input_content_type="text/plain",
        filename="speech.txt",
        source_language="en",
        target_language="es",
        text="hello there",
        voice="joe",
        audio_format=AudioFormat.OGG_OPUS,
        speed=1.25,
        word_timestamps=False,
        initial_prompt="names: Violet",
        redundancy=2,
        idempotency_key="",
    )
    task, created = await task_store.create(wanted, now=at(0))

    assert created
    assert task.state == TaskState.QUEUED
    assert task.spec == wanted
    assert task.type == TaskType.SPEECH_SYNTHESIS
    assert task.create_time == T0 and task.update_time == T0
    assert task.complete_time is None
    assert task.attempts == 0 and task.assignments == ()
    assert await task_store.get(task.task_id) == task


async def test_idempotency_key_returns_the_same_task(task_store: TaskStore) -> None:
    first, created = await task_store.create(spec(key="upload-1"), now=at(0))
    again, created_again = await task_store.create(spec(key="upload-1"), now=at(5))
    other, created_other = await task_store.create(spec(key="upload-2"), now=at(6))

    assert created and not created_again and created_other
    assert again == first
    assert other.task_id != first.task_id
    assert sum((await task_store.count_by_state()).values()) == 2


async def test_tasks_without_idempotency_key_are_always_new(task_store: TaskStore) -> None:
    a = await new_task(task_store)
    b = await new_task(task_store)
    assert a.task_id != b.task_id


async def test_concurrent_creates_with_one_key_make_one_task(task_store: TaskStore) -> None:
    results = await asyncio.gather(*(task_store.create(spec(key="dup"), now=at(0)) for _ in range(10)))
    assert [created for _, created in results].count(True) == 1
    assert len({task.task_id for task, _ in results}) == 1


async def test_get_unknown_task_is_not_found(task_store: TaskStore) -> None:
    with pytest.raises(errors.NotFound):
        await task_store.get("no-such-task")


# -- listing ----------------------------------------------------------------------------


async def test_list_is_newest_first(task_store: TaskStore) -> None:
    made = [await new_task(task_store, when=i) for i in range(4)]
    page = await task_store.list()
    assert [t.task_id for t in page.tasks] == [t.task_id for t in reversed(made)]
    assert page.next_page_token == ""


@pytest.mark.parametrize("page_size", [1, 2, 3, 6, 7, 8])
async def test_pagination_visits_every_task_once(task_store: TaskStore, page_size: int) -> None:
    made = [await new_task(task_store, when=i) for i in range(7)]
    seen = await list_all(task_store, page_size)
    assert [t.task_id for t in seen] == [t.task_id for t in reversed(made)]


async def test_page_size_zero_means_default(task_store: TaskStore) -> None:
    made = [await new_task(task_store, when=i) for i in range(3)]
    page = await task_store.list(page_size=0)
    assert [t.task_id for t in page.tasks] == [t.task_id for t in reversed(made)]
    assert page.next_page_token == ""


async def test_negative_page_size_is_invalid(task_store: TaskStore) -> None:
    with pytest.raises(errors.InvalidArgument):
        await task_store.list(page_size=-1)


async def test_pagination_is_stable_while_tasks_are_added(task_store: TaskStore) -> None:
    made = [await new_task(task_store, when=i) for i in range(5)]
    first = await task_store.list(page_size=2)
    await new_task(task_store, when=10)  # newer than all: must not shift later pages
    rest = await list_all_from(task_store, first.next_page_token, page_size=2)
    assert [t.task_id for t in first.tasks + rest] == [t.task_id for t in reversed(made)]


async def test_list_filters_by_state_and_type(task_store: TaskStore) -> None:
    tts = await new_task(task_store, when=0, type=TaskType.SPEECH_SYNTHESIS)
    asr_queued = await new_task(task_store, when=1)
    asr_failed = await new_task(task_store, when=2)
    doc = await new_task(task_store, when=3, type=TaskType.DOCUMENT_TRANSLATION)
    assert await task_store.fail(asr_failed.task_id, "broken input", now=at(4))

    async def listed(**filters: object) -> list[str]:
        return ids((await task_store.list(**filters)).tasks)  # type: ignore[arg-type]

    assert await listed(type=TaskType.TRANSCRIPTION) == [asr_failed.task_id, asr_queued.task_id]
    assert await listed(state=TaskState.QUEUED) == [doc.task_id, asr_queued.task_id, tts.task_id]
    assert await listed(state=TaskState.FAILED) == [asr_failed.task_id]
    assert await listed(state=TaskState.QUEUED, type=TaskType.TRANSCRIPTION) == [asr_queued.task_id]
    assert await listed(state=TaskState.COMPLETED) == []
    assert ids(await list_all(task_store, 1, state=TaskState.QUEUED)) == [doc.task_id, asr_queued.task_id, tts.task_id]


async def test_page_token_from_another_filter_is_invalid(task_store: TaskStore) -> None:
    for i in range(3):
        await new_task(task_store, when=i)
    token = (await task_store.list(page_size=1)).next_page_token
    assert token
    assert (await task_store.list(page_size=1, page_token=token)).tasks  # valid where it came from
    for other in (
        {"state": TaskState.QUEUED},
        {"type": TaskType.TRANSCRIPTION},
        {"completed_only": True},
    ):
        with pytest.raises(errors.InvalidArgument):
            await task_store.list(page_size=1, page_token=token, **other)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "!!!not base64!!!",
        "a",
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
        base64.urlsafe_b64encode(json.dumps({"a": 1}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["x", "y", "0:0:0"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(42).encode()).decode(),
    ],
)
async def test_garbage_page_token_is_invalid(task_store: TaskStore, token: str) -> None:
    await new_task(task_store)
    with pytest.raises(errors.InvalidArgument):
        await task_store.list(page_token=token)


async def test_completed_only_orders_by_completion_time(task_store: TaskStore) -> None:
    a = await new_task(task_store, when=0)
    b = await new_task(task_store, when=1)
    c = await new_task(task_store, when=2)
    await new_task(task_store, when=3)  # never completes
    failed = await new_task(task_store, when=4)
    assert await task_store.complete(c.task_id, TaskResult(), now=at(10))
    assert await task_store.complete(a.task_id, TaskResult(), now=at(20))
    assert await task_store.complete(b.task_id, TaskResult(), now=at(30))
    assert await task_store.fail(failed.task_id, "nope", now=at(40))

    expected = [b.task_id, a.task_id, c.task_id]
    page = await task_store.list(completed_only=True)
    assert [t.task_id for t in page.tasks] == expected
    assert [t.task_id for t in await list_all(task_store, 1, completed_only=True)] == expected
    assert [t.task_id for t in await list_all(task_store, 2, completed_only=True)] == expected


async def test_count_by_state_and_completed_since(task_store: TaskStore) -> None:
    assert await task_store.count_by_state() == {}
    tasks = [await new_task(task_store, when=i) for i in range(5)]
    await lease(task_store, tasks[0], "m1")
    assert await task_store.complete(tasks[1].task_id, TaskResult(), now=at(10))
    assert await task_store.complete(tasks[2].task_id, TaskResult(), now=at(20))
    assert await task_store.fail(tasks[3].task_id, "bad", now=at(30))

    assert await task_store.count_by_state() == {
        TaskState.ASSIGNED: 1,
        TaskState.COMPLETED: 2,
        TaskState.FAILED: 1,
        TaskState.QUEUED: 1,
    }
    assert await task_store.completed_since(at(0)) == 2
    assert await task_store.completed_since(at(20)) == 1  # "at or after"
    assert await task_store.completed_since(at(21)) == 0


# -- leases -----------------------------------------------------------------------------


async def test_lease_grants_at_most_redundancy_leases_to_distinct_miners(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=2)

    first = await lease(task_store, task, "m1", when=1)
    assert first is not None
    assert first.miner_id == "m1" and first.state == AssignmentState.LEASED
    assert first.create_time == at(1) and first.lease_expire_time == at(1 + LEASE)
    assert await lease(task_store, task, "m1", when=2) is None  # never two to one miner
    assert await lease(task_store, task, "m2", when=3) is not None
    assert await lease(task_store, task, "m3", when=4) is None  # N live leases already

    got = await task_store.get(task.task_id)
    assert got.state == TaskState.ASSIGNED
    assert sorted(a.miner_id for a in got.active_leases(at(5))) == ["m1", "m2"]
    assert got.attempts == 2


async def test_a_miner_that_answered_cannot_lease_again(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1")
    await answer(task_store, task, "m1")
    assert await lease(task_store, task, "m1", when=2) is None
    assert await lease(task_store, task, "m2", when=2) is not None


async def test_an_expired_lease_frees_its_slot(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    assert await lease(task_store, task, "m1", when=0) is not None
    assert await lease(task_store, task, "m2", when=LEASE - 1) is None
    assert await lease(task_store, task, "m2", when=LEASE + 1) is not None


async def test_final_or_unknown_tasks_cannot_be_leased(task_store: TaskStore) -> None:
    done = await new_task(task_store)
    failed = await new_task(task_store)
    assert await task_store.complete(done.task_id, TaskResult(), now=at(1))
    assert await task_store.fail(failed.task_id, "no", now=at(1))
    assert await lease(task_store, done, "m1", when=2) is None
    assert await lease(task_store, failed, "m1", when=2) is None
    assert await task_store.lease("no-such-task", "m1", now=at(2), lease_seconds=LEASE) is None


async def test_aggregating_task_cannot_be_leased(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    await lease(task_store, task, "m1")
    assert (await answer(task_store, task, "m1")).ready
    assert await lease(task_store, task, "m2", when=2) is None


async def test_start_marks_a_leased_task_processing(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    await lease(task_store, task, "m1")
    await task_store.start(task.task_id, "m1", now=at(1))
    assert (await task_store.get(task.task_id)).state == TaskState.PROCESSING


async def test_start_by_a_miner_without_a_lease_changes_nothing(task_store: TaskStore) -> None:
    queued = await new_task(task_store)
    leased = await new_task(task_store)
    await lease(task_store, leased, "m1")
    await task_store.start(queued.task_id, "intruder", now=at(1))
    await task_store.start(leased.task_id, "intruder", now=at(1))
    assert (await task_store.get(queued.task_id)).state == TaskState.QUEUED
    assert (await task_store.get(leased.task_id)).state == TaskState.ASSIGNED


async def test_dispatchable_lists_tasks_needing_leases_oldest_first(task_store: TaskStore) -> None:
    old = await new_task(task_store, when=0)
    stream = await new_task(task_store, when=1, type=TaskType.STREAMING_TRANSCRIPTION)
    full = await new_task(task_store, when=2)
    partly = await new_task(task_store, when=3, redundancy=2)
    answered = await new_task(task_store, when=4)
    done = await new_task(task_store, when=5)
    new = await new_task(task_store, when=6, type=TaskType.SPEECH_SYNTHESIS)
    assert await lease(task_store, full, "m1", when=7)
    assert await lease(task_store, partly, "m1", when=7)
    assert await lease(task_store, answered, "m1", when=7)
    await answer(task_store, answered, "m1", when=8)
    assert await task_store.complete(done.task_id, TaskResult(), now=at(8))

    ids = [t.task_id for t in await task_store.dispatchable(now=at(9), limit=10)]
    assert ids == [old.task_id, partly.task_id, new.task_id]
    assert stream.task_id not in ids
    assert [t.task_id for t in await task_store.dispatchable(now=at(9), limit=2)] == [old.task_id, partly.task_id]
    # Once the lease on `full` runs out it needs a miner again.
    later = [t.task_id for t in await task_store.dispatchable(now=at(7 + LEASE + 1), limit=10)]
    assert full.task_id in later


async def test_dispatchable_respects_backoff(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    await lease(task_store, task, "m1", when=0)
    assert await task_store.expire_leases(now=at(LEASE), policy=POLICY) == []
    assert (await task_store.get(task.task_id)).state == TaskState.QUEUED

    assert ids(await task_store.dispatchable(now=at(LEASE + POLICY.backoff_seconds - 1), limit=10)) == []
    assert ids(await task_store.dispatchable(now=at(LEASE + POLICY.backoff_seconds), limit=10)) == [task.task_id]


# -- answers ----------------------------------------------------------------------------


async def test_submit_without_a_lease_is_permission_denied(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    await lease(task_store, task, "m1")
    before = await task_store.get(task.task_id)

    with pytest.raises(errors.PermissionDenied):
        await answer(task_store, task, "m2")
    with pytest.raises(errors.PermissionDenied):
        await task_store.submit("no-such-task", "m1", ANSWER, processing_seconds=1, now=at(1))
    assert await task_store.get(task.task_id) == before


async def test_same_answer_twice_is_a_duplicate(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1")
    first = await answer(task_store, task, "m1", when=1)
    again = await answer(task_store, task, "m1", when=2)
    assert not first.duplicate and first.state == TaskState.PROCESSING and not first.ready
    assert again.duplicate and not again.ready
    submitted = (await task_store.get(task.task_id)).submitted()
    assert len(submitted) == 1
    assert submitted[0].response == ANSWER
    assert submitted[0].submit_time == at(1)
    assert submitted[0].processing_seconds == 0.5


async def test_answer_repeated_with_keys_in_another_order_is_a_duplicate(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1")
    await answer(task_store, task, "m1", when=1, response={"text": "hi", "language": "en"})
    again = await answer(task_store, task, "m1", when=2, response={"language": "en", "text": "hi"})
    assert again.duplicate


async def test_a_different_second_answer_is_refused(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1")
    await answer(task_store, task, "m1", when=1)
    with pytest.raises(errors.FailedPrecondition):
        await answer(task_store, task, "m1", when=2, response=OTHER_ANSWER)
    assert (await task_store.get(task.task_id)).submitted()[0].response == ANSWER


async def test_answer_after_lease_expiry_is_refused(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1", when=0)
    await lease(task_store, task, "m2", when=0)
    # Expired by the clock, before anything swept it ...
    with pytest.raises(errors.FailedPrecondition) as caught:
        await answer(task_store, task, "m1", when=LEASE)
    assert caught.value.reason == "LEASE_EXPIRED"
    # ... and after the sweep marked it.
    await task_store.expire_leases(now=at(LEASE + 1), policy=POLICY)
    with pytest.raises(errors.FailedPrecondition) as caught:
        await answer(task_store, task, "m2", when=LEASE + 2)
    assert caught.value.reason == "LEASE_EXPIRED"
    assert (await task_store.get(task.task_id)).submitted() == []


async def test_answer_to_a_finished_task_is_refused(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    await lease(task_store, task, "m1")
    assert await task_store.fail(task.task_id, "cancelled", now=at(1))
    with pytest.raises(errors.FailedPrecondition):
        await answer(task_store, task, "m1", when=2)


async def test_redundancy_three_is_ready_on_the_third_answer(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=3)
    for miner in ("m1", "m2", "m3"):
        assert await lease(task_store, task, miner, when=0)
    await task_store.start(task.task_id, "m1", now=at(1))

    one = await answer(task_store, task, "m1", when=2)
    two = await answer(task_store, task, "m2", when=3, response=OTHER_ANSWER)
    assert not one.ready and not two.ready
    assert (await task_store.get(task.task_id)).state == TaskState.PROCESSING
    assert await task_store.aggregating(limit=10) == []

    three = await answer(task_store, task, "m3", when=4)
    assert three.ready and three.state == TaskState.AGGREGATING
    got = await task_store.get(task.task_id)
    assert got.state == TaskState.AGGREGATING
    assert {a.miner_id: a.response for a in got.submitted()} == {"m1": ANSWER, "m2": OTHER_ANSWER, "m3": ANSWER}
    assert [t.task_id for t in await task_store.aggregating(limit=10)] == [task.task_id]
    # A late repeat of the deciding answer does not make it ready twice.
    repeat = await answer(task_store, task, "m3", when=5)
    assert repeat.duplicate and not repeat.ready


# -- retries ----------------------------------------------------------------------------


async def test_expired_leases_requeue_with_backoff_then_fail(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    now = 0.0
    for attempt in range(1, POLICY.max_attempts + 1):
        assert await lease(task_store, task, f"m{attempt}", when=now)
        now += LEASE
        assert await task_store.expire_leases(now=at(now), policy=POLICY) == []
        got = await task_store.get(task.task_id)
        assert got.assignments[-1].state == AssignmentState.EXPIRED
        if attempt < POLICY.max_attempts:
            assert got.state == TaskState.QUEUED
            # Backoff grows with each failure; the task is offered again only after it.
            ready_at = await first_dispatch_time(task_store, task, start=now)
            assert ready_at >= now + POLICY.backoff_seconds * attempt
            now = ready_at

    got = await task_store.get(task.task_id)
    assert got.state == TaskState.FAILED
    assert got.failure_reason
    assert got.complete_time == at(now)
    assert await task_store.dispatchable(now=at(now + 1000), limit=10) == []
    assert await lease(task_store, task, "m9", when=now + 1000) is None


async def first_dispatch_time(store: TaskStore, task: Task, *, start: float) -> float:
    """The first whole second from ``start`` at which the task is dispatchable again."""
    for second in range(int(start), int(start) + 1000):
        if any(t.task_id == task.task_id for t in await store.dispatchable(now=at(second), limit=100)):
            return float(second)
    raise AssertionError("task never became dispatchable")


async def test_expire_leases_leaves_live_leases_alone(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    await lease(task_store, task, "m1", when=0)
    assert await task_store.expire_leases(now=at(LEASE - 1), policy=POLICY) == []
    got = await task_store.get(task.task_id)
    assert got.state == TaskState.ASSIGNED
    assert got.assignments[0].state == AssignmentState.LEASED


async def test_expiry_with_answers_in_moves_to_aggregating(task_store: TaskStore) -> None:
    policy = RetryPolicy(max_attempts=1, backoff_seconds=1)
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1", when=0)
    await lease(task_store, task, "m2", when=0)
    await answer(task_store, task, "m1", when=1)

    assert await task_store.expire_leases(now=at(LEASE), policy=policy) == [task.task_id]
    got = await task_store.get(task.task_id)
    assert got.state == TaskState.AGGREGATING
    assert [t.task_id for t in await task_store.aggregating(limit=10)] == [task.task_id]


async def test_expiry_with_answers_in_and_attempts_left_requeues(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1", when=0)
    await lease(task_store, task, "m2", when=0)
    await answer(task_store, task, "m1", when=1)
    assert await task_store.expire_leases(now=at(LEASE), policy=POLICY) == []
    assert (await task_store.get(task.task_id)).state == TaskState.PROCESSING
    assert await lease(task_store, task, "m3", when=LEASE + POLICY.backoff_seconds)


async def test_expire_leases_reports_a_task_ready_only_once(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    await lease(task_store, task, "m1", when=0)
    # m1's lease ran out before any sweep; m2 takes the slot and answers.
    await lease(task_store, task, "m2", when=LEASE + 1)
    assert (await answer(task_store, task, "m2", when=LEASE + 2)).ready
    # The sweep now expires m1's lease, but the task was already reported ready by submit.
    assert await task_store.expire_leases(now=at(LEASE + 3), policy=POLICY) == []
    got = await task_store.get(task.task_id)
    assert got.state == TaskState.AGGREGATING
    assert [a.state for a in got.assignments] == [AssignmentState.EXPIRED, AssignmentState.SUBMITTED]


async def test_fail_assignment_requeues_then_fails(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    now = 0.0
    for attempt in range(1, POLICY.max_attempts + 1):
        assert await lease(task_store, task, f"m{attempt}", when=now)
        state = await task_store.fail_assignment(task.task_id, f"m{attempt}", "out of memory", now=at(now + 1), policy=POLICY)
        got = await task_store.get(task.task_id)
        assert state == got.state
        failed = got.assignments[-1]
        assert failed.state == AssignmentState.FAILED and "out of memory" in failed.error
        if attempt < POLICY.max_attempts:
            assert state == TaskState.QUEUED
            assert await task_store.dispatchable(now=at(now + 1), limit=10) == []
            now += 1 + POLICY.backoff_seconds * 2 ** (attempt - 1)
            assert [t.task_id for t in await task_store.dispatchable(now=at(now), limit=10)] == [task.task_id]
    assert state == TaskState.FAILED
    assert "out of memory" in got.failure_reason


async def test_fail_assignment_with_answers_in_moves_to_aggregating(task_store: TaskStore) -> None:
    policy = RetryPolicy(max_attempts=1, backoff_seconds=1)
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1")
    await lease(task_store, task, "m2")
    await answer(task_store, task, "m1", when=1)
    state = await task_store.fail_assignment(task.task_id, "m2", "crashed", now=at(2), policy=policy)
    assert state == TaskState.AGGREGATING
    assert [t.task_id for t in await task_store.aggregating(limit=10)] == [task.task_id]


async def test_fail_assignment_waits_for_live_leases(task_store: TaskStore) -> None:
    policy = RetryPolicy(max_attempts=1, backoff_seconds=1)
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1")
    await lease(task_store, task, "m2")
    state = await task_store.fail_assignment(task.task_id, "m1", "crashed", now=at(2), policy=policy)
    assert state not in (TaskState.FAILED, TaskState.AGGREGATING)
    assert (await answer(task_store, task, "m2", when=3)).state != TaskState.FAILED


async def test_fail_assignment_by_a_miner_without_a_lease_is_denied(task_store: TaskStore) -> None:
    queued = await new_task(task_store)
    leased = await new_task(task_store)
    await lease(task_store, leased, "m1")
    before = [await task_store.get(queued.task_id), await task_store.get(leased.task_id)]

    for task in before:
        with pytest.raises(errors.PermissionDenied):
            await task_store.fail_assignment(task.task_id, "intruder", "nope", now=at(1), policy=POLICY)
    with pytest.raises(errors.PermissionDenied):
        await task_store.fail_assignment("no-such-task", "m1", "nope", now=at(1), policy=POLICY)

    # No state change and no backoff: the queued task is still offered right away.
    assert [await task_store.get(t.task_id) for t in before] == before
    assert [t.task_id for t in await task_store.dispatchable(now=at(1), limit=10)] == [queued.task_id]


async def test_fail_assignment_after_the_lease_ended_changes_nothing(task_store: TaskStore) -> None:
    answered = await new_task(task_store, redundancy=2)
    expired = await new_task(task_store)
    await lease(task_store, answered, "m1")
    await answer(task_store, answered, "m1", when=1)
    await lease(task_store, expired, "m1")
    await task_store.expire_leases(now=at(LEASE), policy=POLICY)
    before = [await task_store.get(answered.task_id), await task_store.get(expired.task_id)]

    for task in before:
        state = await task_store.fail_assignment(task.task_id, "m1", "late report", now=at(LEASE + 1), policy=POLICY)
        assert state == task.state

    assert [await task_store.get(t.task_id) for t in before] == before


# -- endings ----------------------------------------------------------------------------


async def test_complete_stores_the_result_once(task_store: TaskStore) -> None:
    task = await new_task(task_store, redundancy=2)
    await lease(task_store, task, "m1")
    await lease(task_store, task, "m2")
    await answer(task_store, task, "m1", when=1)
    await answer(task_store, task, "m2", when=2, response=OTHER_ANSWER)
    result = TaskResult(
        result_file_id="c" * 32,
        result_content_type="application/json",
        transcript=TRANSCRIPT,
        agreements={"m1": 1.0, "m2": 0.25},
    )

    assert await task_store.complete(task.task_id, result, now=at(3))
    assert not await task_store.complete(task.task_id, TaskResult(result_file_id="d" * 32), now=at(4))
    assert not await task_store.fail(task.task_id, "too late", now=at(5))

    got = await task_store.get(task.task_id)
    assert got.state == TaskState.COMPLETED
    assert got.complete_time == at(3)
    assert got.result_file_id == "c" * 32
    assert got.result_content_type == "application/json"
    assert got.transcript == TRANSCRIPT
    assert got.failure_reason == ""
    assert {a.miner_id: a.agreement for a in got.assignments} == {"m1": 1.0, "m2": 0.25}
    assert await task_store.aggregating(limit=10) == []


async def test_concurrent_completes_succeed_exactly_once(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    outcomes = await asyncio.gather(
        *(task_store.complete(task.task_id, TaskResult(result_file_id=f"{i:032x}"), now=at(i)) for i in range(20))
    )
    assert outcomes.count(True) == 1
    winner = outcomes.index(True)
    got = await task_store.get(task.task_id)
    assert got.result_file_id == f"{winner:032x}"
    assert got.complete_time == at(winner)


async def test_fail_happens_once(task_store: TaskStore) -> None:
    task = await new_task(task_store)
    assert await task_store.fail(task.task_id, "input is not audio", now=at(1))
    assert not await task_store.fail(task.task_id, "second reason", now=at(2))
    assert not await task_store.complete(task.task_id, TaskResult(), now=at(3))
    got = await task_store.get(task.task_id)
    assert got.state == TaskState.FAILED
    assert got.failure_reason == "input is not audio"
    assert got.complete_time == at(1)


async def test_miner_leases_lists_only_live_unanswered_leases_of_the_caller(task_store: TaskStore) -> None:
    mine_a = await new_task(task_store, when=0)
    mine_b = await new_task(task_store, when=1, redundancy=2)
    answered = await new_task(task_store, when=2, redundancy=2)
    expired = await new_task(task_store, when=3)
    theirs = await new_task(task_store, when=4)
    cancelled = await new_task(task_store, when=5)
    assert await lease(task_store, expired, "m1", when=0, seconds=5)
    assert await lease(task_store, mine_a, "m1", when=6)
    assert await lease(task_store, mine_b, "m1", when=7)
    assert await lease(task_store, mine_b, "m2", when=7)
    assert await lease(task_store, answered, "m1", when=8)
    await answer(task_store, answered, "m1", when=9)
    assert await lease(task_store, theirs, "m2", when=8)
    assert await lease(task_store, cancelled, "m1", when=8)
    assert await task_store.fail(cancelled.task_id, "cancelled by user", now=at(9))

    leases = await task_store.miner_leases("m1", now=at(10), limit=10)
    assert [t.task_id for t in leases] == [mine_a.task_id, mine_b.task_id]
    assert len(await task_store.miner_leases("m1", now=at(10), limit=1)) == 1
    assert [t.task_id for t in await task_store.miner_leases("m2", now=at(10), limit=10)] == [
        mine_b.task_id, theirs.task_id,
    ]
    assert await task_store.miner_leases("m1", now=at(6 + LEASE + 5), limit=10) == []
    assert await task_store.miner_leases("nobody", now=at(10), limit=10) == []


async def test_aggregating_lists_ready_tasks_oldest_first(task_store: TaskStore) -> None:
    tasks = [await new_task(task_store, when=i) for i in range(3)]
    for t in tasks:
        await lease(task_store, t, "m1", when=5)
    await answer(task_store, tasks[2], "m1", when=6)
    await answer(task_store, tasks[0], "m1", when=7)
    assert [t.task_id for t in await task_store.aggregating(limit=10)] == [tasks[0].task_id, tasks[2].task_id]
    assert [t.task_id for t in await task_store.aggregating(limit=1)] == [tasks[0].task_id]


# -- persistence and replicas -----------------------------------------------------------


async def test_data_survives_close_and_reopen(task_backend: TaskStoreBackend) -> None:
    store = await task_backend.open()
    task, _ = await store.create(spec(key="keep-me", redundancy=2), now=at(0))
    await lease(store, task, "m1")
    await lease(store, task, "m2")
    await answer(store, task, "m1", when=1)
    await answer(store, task, "m2", when=2)
    assert await store.complete(task.task_id, TaskResult(transcript=TRANSCRIPT, agreements={"m1": 0.9}), now=at(3))
    before = await store.get(task.task_id)
    await task_backend.close(store)

    reopened = await task_backend.open()
    assert await reopened.get(task.task_id) == before
    again, created = await reopened.create(spec(key="keep-me"), now=at(4))
    assert not created and again == before
    assert await reopened.count_by_state() == {TaskState.COMPLETED: 1}


async def test_two_replicas_never_double_lease(task_backend: TaskStoreBackend) -> None:
    one = await task_backend.open()
    two = await task_backend.open()
    for round_no in range(8):
        tasks = [await new_task(one, when=round_no) for _ in range(25)]
        # Both replicas work through every task at once, so their transactions overlap.
        grants = await asyncio.gather(
            *(
                lease(replica, task, miner, when=round_no)
                for task in tasks
                for replica, miner in ((one, "miner-a"), (two, "miner-b"), (two, "miner-c"), (one, "miner-d"))
            )
        )
        for i, task in enumerate(tasks):
            winners = [g for g in grants[4 * i : 4 * i + 4] if g is not None]
            assert len(winners) == 1, f"task {i} of round {round_no}: {winners}"
            got = await two.get(task.task_id)
            assert [a.miner_id for a in got.assignments] == [winners[0].miner_id]


async def test_two_replicas_complete_once_and_share_idempotency(task_backend: TaskStoreBackend) -> None:
    one = await task_backend.open()
    two = await task_backend.open()
    for round_no in range(50):
        created = await asyncio.gather(
            one.create(spec(key=f"k{round_no}"), now=at(round_no)),
            two.create(spec(key=f"k{round_no}"), now=at(round_no)),
        )
        assert sorted(c for _, c in created) == [False, True]
        task_id = created[0][0].task_id
        assert created[1][0].task_id == task_id
        done = await asyncio.gather(
            one.complete(task_id, TaskResult(result_file_id="1" * 32), now=at(round_no)),
            two.complete(task_id, TaskResult(result_file_id="2" * 32), now=at(round_no)),
        )
        assert sorted(done) == [False, True]

"""Organic evaluation: validators judge completed tasks through the proxy, stake-weighted.

A real proxy with auth on; two validators (stake 300 and 100) evaluate the same task, one
with the production OrganicEvaluator (it fetches the input through Files.GetFile and uses
its own ears — scripted here — as the reference), one by hand. The proxy keeps each verdict
once and feeds the stake-weighted consensus to the miner registry.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from violet.v1 import miner_pb2, validator_gateway_pb2, validator_gateway_pb2_grpc

from tests.chainnet import Keys, make_keys
from violet_grpc.proxy.orchestrator import utcnow
from violet_grpc.proxy.server import RunningProxy, create_server as create_proxy
from violet_grpc.settings import ProxySettings
from violet_grpc.tasks import TaskResult, TaskSpec, TaskType
from violet_grpc.transcripts import Transcript, transcript_to_json
from violet_grpc.validator.organic import OrganicEvaluator


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[tuple[Keys, RunningProxy]]:
    keys = make_keys(tmp_path)
    keys.create("proxy", register=False)
    for name in ("m1", "m2"):
        keys.create(name)
    keys.create("big", stake=300.0, permit=True)
    keys.create("small", stake=100.0, permit=True)
    running = await create_proxy(ProxySettings(port=0, task_store=str(tmp_path / "tasks.db"),
                                               file_store=str(tmp_path / "files"), **keys.settings("proxy")))
    yield keys, running
    await running.stop(0)


async def completed_task(keys: Keys, running: RunningProxy, texts: dict[str, str]) -> str:
    store, now = running.ctx.store, utcnow()
    audio = await running.ctx.files.put(b"RIFF-not-really-audio", content_type="audio/wav", filename="in.wav")
    task, _ = await store.create(TaskSpec(type=TaskType.TRANSCRIPTION, input_file_id=audio.file_id,
                                          redundancy=len(texts)), now=now)
    for name, text in texts.items():
        hotkey = keys.hotkey(name)
        running.ctx.registry.heartbeat(hotkey, "", miner_pb2.MinerCapabilities(miner_id=hotkey))
        await store.lease(task.task_id, hotkey, now=now, lease_seconds=60)
        transcript = Transcript(text=text, language="en", language_probability=1.0, duration=1.0, segments=())
        await store.submit(task.task_id, hotkey, {"transcript": transcript_to_json(transcript)},
                           processing_seconds=0.1, now=now)
    await store.complete(task.task_id, TaskResult(), now=now)
    return task.task_id


async def test_validators_verdicts_become_stake_weighted_miner_scores(proxy):
    keys, running = proxy
    address = f"127.0.0.1:{running.port}"
    task_id = await completed_task(keys, running, {"m1": "the cat sat on the mat", "m2": "a dog ran"})
    heard: list[bytes] = []

    def ears(audio: bytes) -> tuple[str, float]:
        heard.append(audio)
        return "The cat sat on the mat.", 1.0

    async with keys.channel("big", address, keys.hotkey("proxy")) as channel:
        evaluator = OrganicEvaluator(channel, keys.hotkey("big"), ears)
        assert await evaluator.run_once() == 1
        assert heard == [b"RIFF-not-really-audio"]  # the task's input, fetched through Files.GetFile
        assert await evaluator.run_once() == 0  # judged tasks are not offered again
    registry = running.ctx.registry
    assert registry.get(keys.hotkey("m1")).score == pytest.approx(1.0)
    assert registry.get(keys.hotkey("m2")).score == pytest.approx(0.0)

    async with keys.channel("small", address, keys.hotkey("proxy")) as channel:
        stub = validator_gateway_pb2_grpc.ValidatorGatewayServiceStub(channel)
        listed = await stub.ListEvaluationTasks(
            validator_gateway_pb2.ListEvaluationTasksRequest(validator_id=keys.hotkey("small")))
        [item] = listed.tasks
        assert item.task.task_id == task_id
        assert {a.miner_id: a.transcript.text for a in item.answers} == {
            keys.hotkey("m1"): "the cat sat on the mat", keys.hotkey("m2"): "a dog ran"}
        request = validator_gateway_pb2.SubmitEvaluationRequest(
            validator_id=keys.hotkey("small"), task_id=task_id,
            evaluations=[validator_gateway_pb2.MinerEvaluation(miner_id=keys.hotkey("m1"), score=0.2),
                         validator_gateway_pb2.MinerEvaluation(miner_id=keys.hotkey("m2"), score=1.0)])
        assert (await stub.SubmitEvaluation(request)).accepted
        assert (await stub.SubmitEvaluation(request)).accepted  # a retry is harmless
        bad = validator_gateway_pb2.SubmitEvaluationRequest(
            validator_id=keys.hotkey("small"), task_id=task_id,
            evaluations=[validator_gateway_pb2.MinerEvaluation(miner_id=keys.hotkey("m1"), score=7.0)])
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitEvaluation(bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert registry.get(keys.hotkey("m1")).score == pytest.approx((300 * 1.0 + 100 * 0.2) / 400)
    assert registry.get(keys.hotkey("m2")).score == pytest.approx((300 * 0.0 + 100 * 1.0) / 400)

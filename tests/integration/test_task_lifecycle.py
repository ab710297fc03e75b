"""Tasks complete exactly once under redundancy, crashes and foreign answers."""
from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time

import av
import grpc
import numpy as np
import pytest
from google.api import httpbody_pb2
from violet.v1 import (
    miner_gateway_pb2,
    miner_gateway_pb2_grpc,
    resources_pb2,
    tasks_pb2,
    tasks_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
)

from tests.helpers import free_port, load_pcm16, wer
from tests.integration.conftest import start_local_net, stop_local_net
from violet_grpc.miner.server import create_server as create_miner
from violet_grpc.settings import MinerSettings

COMPLETED = resources_pb2.TASK_STATE_COMPLETED
SUBMITTED = resources_pb2.ASSIGNMENT_STATE_SUBMITTED
SHORT_TEXT = "And so my fellow Americans"


@pytest.fixture(scope="module")
def short_wav(jfk_flac) -> bytes:
    """The first 2.6 s of the JFK clip ("And so my fellow Americans") as a WAV file."""
    pcm = np.frombuffer(load_pcm16(jfk_flac), dtype="<i2")[: int(2.6 * 16000)]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def _upload(data: bytes, **kwargs: object) -> transcription_pb2.CreateTranscriptionRequest:
    return transcription_pb2.CreateTranscriptionRequest(
        audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=data), source_language="en", **kwargs)


async def _wait_all(channel: grpc.aio.Channel, task_ids: list[str], timeout: float) -> list[resources_pb2.Task]:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        tasks = [(await stub.GetTask(tasks_pb2.GetTaskRequest(task_id=t))).task for t in task_ids]
        if all(t.state in (COMPLETED, resources_pb2.TASK_STATE_FAILED) for t in tasks) or time.monotonic() > deadline:
            return tasks
        await asyncio.sleep(0.5)


async def test_redundancy_three_completes_each_task_once_with_consensus(tmp_path, engines, short_wav):
    from violet_grpc.audio.decode import decode_file
    from violet_grpc.miner.engines.asr import TranscribeOptions

    expected = engines.asr.transcribe(decode_file(short_wav).samples, TranscribeOptions(language="en")).text
    net = await start_local_net(tmp_path, engines, miners=3, redundancy=3)
    try:
        async with net.channel() as channel:
            stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
            created = [await stub.CreateTranscription(_upload(short_wav, idempotency_key=f"k{i}")) for i in range(20)]
            tasks = await _wait_all(channel, [c.task.task_id for c in created], timeout=240)
    finally:
        await stop_local_net(net)
    for task in tasks:
        assert task.state == COMPLETED, task.failure_reason
        answered = [a for a in task.assignments if a.state == SUBMITTED]
        assert sorted(a.miner_id for a in answered) == ["miner-0", "miner-1", "miner-2"]
        assert all(0.0 <= a.agreement <= 1.0 for a in answered)
        assert any(a.agreement > 0.9 for a in answered)
        assert task.transcript.text == expected


async def test_answer_for_a_task_not_assigned_is_refused_and_changes_nothing(local_net, short_wav):
    async with local_net.channel() as channel:
        created = await transcription_pb2_grpc.TranscriptionServiceStub(channel).CreateTranscription(_upload(short_wav))
        task_id = created.task.task_id
        gateway = miner_gateway_pb2_grpc.MinerGatewayServiceStub(channel)
        before = (await tasks_pb2_grpc.TasksServiceStub(channel).GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))).task
        forged = miner_gateway_pb2.SubmitMinerResponseRequest(
            task_id=task_id, miner_id="intruder", transcript=resources_pb2.Transcript(text="pwned"))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gateway.SubmitMinerResponse(forged)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        [done] = await _wait_all(channel, [task_id], timeout=60)
    assert all(a.miner_id != "intruder" for a in done.assignments)
    assert done.state == COMPLETED and "pwned" not in done.transcript.text
    assert [a.miner_id for a in done.assignments] == ["miner-0"]
    assert all(a.miner_id == "miner-0" for a in before.assignments)


def _start_proxy(home, port: int, miner_port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "violet_grpc.proxy.server", "--port", str(port),
            "--task-store", str(home / "tasks.db"), "--file-store", str(home / "files"),
            "--miners", f"127.0.0.1:{miner_port}", "--lease-seconds", "6", "--heartbeat-seconds", "1", "--auth", "off"]
    log = (home / f"proxy-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


async def _wait_serving(address: str, timeout: float = 60) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(address)


async def test_sigkilled_proxy_restarts_and_finishes_every_accepted_task_once(tmp_path, engines, short_wav):
    miner, miner_port, _ = await create_miner(MinerSettings(port=0, miner_id="steady-miner", max_slots=2, auth=False), engines)
    port = free_port()
    address = f"127.0.0.1:{port}"
    proxy = _start_proxy(tmp_path, port, miner_port)
    try:
        await _wait_serving(address)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
            # Distinct bytes per task (a trailing silence sample) so files differ too.
            uploads = [short_wav + b"\0\0" * i for i in range(50)]
            accepted = [(await stub.CreateTranscription(_upload(data))).task.task_id for data in uploads]
            listing = tasks_pb2_grpc.TasksServiceStub(channel)
            while not (await listing.ListTasks(tasks_pb2.ListTasksRequest(state=COMPLETED))).tasks:
                await asyncio.sleep(0.1)
        os.kill(proxy.pid, signal.SIGKILL)
        proxy.wait()
        proxy = _start_proxy(tmp_path, port, miner_port)
        await _wait_serving(address)
        async with grpc.aio.insecure_channel(address) as channel:
            tasks = await _wait_all(channel, accepted, timeout=300)
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(timeout=20)
        await miner.stop(0.5)
    assert len(tasks) == 50
    for task in tasks:
        assert task.state == COMPLETED, (task.task_id, task.failure_reason)
        assert [a.state for a in task.assignments].count(SUBMITTED) == 1
        assert wer(SHORT_TEXT, task.transcript.text) <= 0.4, task.transcript.text

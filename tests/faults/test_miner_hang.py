"""A miner that takes a task and never answers: the lease runs out, another miner finishes it.

Two ways a miner hangs: its engine wedges while the process still answers health probes (a
stuck GPU call), or the whole process freezes with its connections open (SIGSTOP: nothing
answers, nothing closes). Either way the task must complete on a healthy miner once the
lease deadline passes, exactly once, and the hung miner must not get the task back.

The healthy miner starts only after the task is leased to the hung one, so the first
assignment is not left to chance.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import pytest
from google.api import httpbody_pb2
from violet.v1 import resources_pb2, tasks_pb2, tasks_pb2_grpc, transcription_pb2, transcription_pb2_grpc

from tests.fake_miner import EchoAsrEngine, HangingAsrEngine
from tests.helpers import free_port, tone_wav
from tests.procs import start_fake_miner, stop, wait_serving
from violet_grpc.miner.engine_loader import Engines
from violet_grpc.miner.server import create_server as create_miner
from violet_grpc.proxy.server import create_server as create_proxy
from violet_grpc.settings import MinerSettings, ProxySettings

LEASE_SECONDS = 2.0
SUBMITTED = resources_pb2.ASSIGNMENT_STATE_SUBMITTED
GAVE_UP = (resources_pb2.ASSIGNMENT_STATE_EXPIRED, resources_pb2.ASSIGNMENT_STATE_FAILED)


def _proxy_settings(tmp_path, miners: list[str], heartbeat: float) -> ProxySettings:
    return ProxySettings(auth=False, port=0, task_store=str(tmp_path / "tasks.db"), file_store=str(tmp_path / "files"),
                         miners=miners, heartbeat_seconds=heartbeat, lease_seconds=LEASE_SECONDS, max_attempts=3)


async def _create(channel: grpc.aio.Channel) -> str:
    stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
    request = transcription_pb2.CreateTranscriptionRequest(
        audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=tone_wav()), source_language="en")
    return (await stub.CreateTranscription(request)).task.task_id


async def _wait_for(channel: grpc.aio.Channel, task_id: str, done, timeout: float) -> resources_pb2.Task:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        task = (await stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))).task
        if done(task) or time.monotonic() > deadline:
            return task
        await asyncio.sleep(0.1)


def _finished(task: resources_pb2.Task) -> bool:
    return task.state in (resources_pb2.TASK_STATE_COMPLETED, resources_pb2.TASK_STATE_FAILED)


def _check_reassigned(task: resources_pb2.Task, hung: str, healthy: str, started: float) -> None:
    assert task.state == resources_pb2.TASK_STATE_COMPLETED, (task.failure_reason, list(task.assignments))
    assert task.transcript.text == "hello world"
    by_miner = {}
    for assignment in task.assignments:
        by_miner.setdefault(assignment.miner_id, []).append(assignment.state)
    assert by_miner.get(healthy) == [SUBMITTED], list(task.assignments)
    # The hung miner had its one lease and gave it up; it never got the task back.
    assert len(by_miner.get(hung, [])) == 1 and by_miner[hung][0] in GAVE_UP, list(task.assignments)
    assert [a.state for a in task.assignments].count(SUBMITTED) == 1
    assert time.monotonic() - started < LEASE_SECONDS + 15


async def test_wedged_engine_lease_expires_and_task_completes_on_another_miner(tmp_path):
    hanging = HangingAsrEngine()
    hung_server, hung_port, _ = await create_miner(
        MinerSettings(port=0, miner_id="hung-miner", max_slots=2, auth=False), Engines(asr=hanging))
    healthy_port = free_port()
    proxy = await create_proxy(_proxy_settings(tmp_path, [f"127.0.0.1:{hung_port}", f"127.0.0.1:{healthy_port}"],
                                               heartbeat=0.5))
    healthy_server = None
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            started = time.monotonic()
            task_id = await _create(channel)
            leased = await _wait_for(channel, task_id, lambda t: hanging.calls > 0, timeout=10)
            assert [a.miner_id for a in leased.assignments] == ["hung-miner"]
            healthy_server, _, _ = await create_miner(
                MinerSettings(port=healthy_port, miner_id="healthy-miner", max_slots=2, auth=False),
                Engines(asr=EchoAsrEngine()))
            task = await _wait_for(channel, task_id, _finished, timeout=LEASE_SECONDS + 20)
        _check_reassigned(task, "hung-miner", "healthy-miner", started)
        # The wedged miner still answers probes, so it stays in rotation for other work; it
        # was only this task it must not get back.
        assert hanging.calls == 1
    finally:
        hanging.release()
        await proxy.stop(0.5)
        for server in (hung_server, healthy_server):
            if server is not None:
                await server.stop(0.5)


async def test_frozen_miner_process_lease_expires_and_task_completes_on_another_miner(tmp_path):
    frozen_port, healthy_port = free_port(), free_port()
    frozen = start_fake_miner(frozen_port, tmp_path / "frozen.log", miner_id="frozen-miner", max_slots=2)
    healthy_server = None
    proxy = None
    try:
        wait_serving(f"127.0.0.1:{frozen_port}", frozen)
        # A long heartbeat keeps the frozen miner "online" for the proxy until a call to it fails.
        proxy = await create_proxy(_proxy_settings(tmp_path, [f"127.0.0.1:{frozen_port}",
                                                              f"127.0.0.1:{healthy_port}"], heartbeat=5.0))
        assert [m.miner_id for m in proxy.ctx.registry.all() if proxy.ctx.registry.is_online(m)] == ["frozen-miner"]
        os.kill(frozen.pid, signal.SIGSTOP)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            started = time.monotonic()
            task_id = await _create(channel)
            leased = await _wait_for(channel, task_id, lambda t: len(t.assignments) > 0, timeout=10)
            assert [a.miner_id for a in leased.assignments] == ["frozen-miner"]
            healthy_server, _, _ = await create_miner(
                MinerSettings(port=healthy_port, miner_id="healthy-miner", max_slots=2, auth=False),
                Engines(asr=EchoAsrEngine()))
            task = await _wait_for(channel, task_id, _finished, timeout=LEASE_SECONDS + 20)
        _check_reassigned(task, "frozen-miner", "healthy-miner", started)
    finally:
        if frozen.poll() is None:
            os.kill(frozen.pid, signal.SIGCONT)
        if proxy is not None:
            await proxy.stop(0.5)
        if healthy_server is not None:
            await healthy_server.stop(0.5)
        stop(frozen)


@pytest.mark.skipif(not os.environ.get("VIOLET_SOAK"), reason="soak: set VIOLET_SOAK=1")
async def test_soak_many_tasks_with_a_wedged_miner_all_complete_once(tmp_path):
    """Fifty tasks while one of three miners wedges on every task it takes."""
    hanging = HangingAsrEngine()
    servers = [await create_miner(MinerSettings(port=0, miner_id="hung-miner", max_slots=4, auth=False),
                                  Engines(asr=hanging))]
    for index in range(2):
        servers.append(await create_miner(MinerSettings(port=0, miner_id=f"healthy-{index}", max_slots=4,
                                                        auth=False), Engines(asr=EchoAsrEngine())))
    proxy = await create_proxy(_proxy_settings(tmp_path, [f"127.0.0.1:{port}" for _, port, _ in servers], 0.5))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
            wav = tone_wav()
            ids = []
            for index in range(50):
                request = transcription_pb2.CreateTranscriptionRequest(
                    audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=wav + index.to_bytes(2, "little")))
                ids.append((await stub.CreateTranscription(request)).task.task_id)
            tasks = [await _wait_for(channel, task_id, _finished, timeout=120) for task_id in ids]
    finally:
        hanging.release()
        await proxy.stop(0.5)
        for server, _, _ in servers:
            await server.stop(0.5)
    for task in tasks:
        assert task.state == resources_pb2.TASK_STATE_COMPLETED, (task.failure_reason, list(task.assignments))
        assert [a.state for a in task.assignments].count(SUBMITTED) == 1

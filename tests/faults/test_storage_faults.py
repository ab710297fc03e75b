"""Storage that cannot be written: clear errors, nothing corrupted, the proxy keeps serving.

Two faults, each checked end to end through the public API:

- the file store's directory turns read-only (a remounted volume, a permissions mistake):
  uploads are refused with UNAVAILABLE / FILE_STORE_UNWRITABLE before any task exists, reads
  keep working, and once the directory is writable again the same upload goes through;
- the disk fills up (the proxy process runs under RLIMIT_FSIZE, so every file it writes,
  SQLite's included, stops growing at a limit; a tmpfs would need mount rights): uploads and
  task writes are refused with UNAVAILABLE and a reason, never INTERNAL; once space is back
  (the limit raised) everything works again and every earlier task is intact.

"Nothing corrupted" is checked on disk afterwards: every stored file matches its recorded
SHA-256, no temporary file is left behind, and SQLite's integrity check passes.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import resource
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from violet.v1 import (
    files_pb2,
    files_pb2_grpc,
    resources_pb2,
    streaming_pb2,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
)

from tests.fake_miner import instant_engines
from tests.helpers import free_port, tone_wav
from tests.procs import start_fake_miner, start_proxy, stop, wait_miners_online, wait_serving
from violet_grpc.miner.server import create_server as create_miner
from violet_grpc.proxy.server import create_server as create_proxy
from violet_grpc.settings import MinerSettings, ProxySettings

COMPLETED = resources_pb2.TASK_STATE_COMPLETED
FINAL_STATES = (COMPLETED, resources_pb2.TASK_STATE_FAILED)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo every Violet error carries (fails the test when it is missing)."""
    status = rpc_status.from_call(error)
    assert status is not None and status.details, f"no google.rpc.Status details: {error}"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.domain == "violet.network"
    return info


def upload_request(data: bytes) -> transcription_pb2.CreateTranscriptionRequest:
    return transcription_pb2.CreateTranscriptionRequest(
        audio=httpbody_pb2.HttpBody(content_type="audio/wav", data=data), source_language="en")


def check_file_store_intact(root: Path) -> int:
    """Every record has its bytes with the recorded hash, and no temporary file is left."""
    leftovers = [p for p in root.rglob(".tmp-*")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    records = list(root.rglob("*.json"))
    for record in records:
        meta = json.loads(record.read_text())
        blob = record.with_suffix("")
        assert blob.exists(), f"record without bytes: {record}"
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == meta["sha256"], f"corrupted: {blob}"
    return len(records)


def check_task_store_intact(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _writable(folder: Path) -> bool:
    try:
        (folder / ".probe").write_bytes(b"x")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Makes ``folder`` (and what is under it) unwritable for this process, then restores it.

    Permission bits do that for ordinary users; root ignores them, so as root the folder is
    bind-mounted read-only over itself (skipped where mounting is not allowed either).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
        for path in folders:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path in folders:
                path.chmod(0o755)
        return
    try:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"running as root without mount rights: cannot make a read-only folder ({exc})")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder), str(folder)], check=True, capture_output=True)
        assert not _writable(folder)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


async def _still_serving(channel: grpc.aio.Channel) -> None:
    reply = await system_pb2_grpc.SystemServiceStub(channel).Check(system_pb2.CheckRequest(), timeout=5)
    assert reply.status == system_pb2.SERVING_STATUS_SERVING


async def _wait_final(channel: grpc.aio.Channel, task_id: str, timeout: float = 30) -> resources_pb2.Task:
    stub = tasks_pb2_grpc.TasksServiceStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        task = (await stub.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id), timeout=5)).task
        if task.state in FINAL_STATES or time.monotonic() > deadline:
            return task
        await asyncio.sleep(0.1)


async def _stream(channel: grpc.aio.Channel, pcm: bytes) -> list[transcription_pb2.StreamingTranscribeResponse]:
    config = streaming_pb2.StreamingRecognitionConfig(encoding=streaming_pb2.AUDIO_ENCODING_LINEAR16,
                                                      sample_rate_hertz=16000, interim_results=True)

    async def requests():
        yield transcription_pb2.StreamingTranscribeRequest(config=config)
        for start in range(0, len(pcm), 3200):
            yield transcription_pb2.StreamingTranscribeRequest(audio_content=pcm[start:start + 3200])

    stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
    return [reply async for reply in stub.StreamingTranscribe(requests(), timeout=30)]


async def test_read_only_file_store_refuses_clearly_and_recovers(tmp_path):
    miner, miner_port, _ = await create_miner(MinerSettings(port=0, miner_id="m", max_slots=4, auth=False),
                                              instant_engines())
    files = tmp_path / "files"
    proxy = await create_proxy(ProxySettings(auth=False, port=0, task_store=str(tmp_path / "tasks.db"),
                                             file_store=str(files), miners=[f"127.0.0.1:{miner_port}"],
                                             heartbeat_seconds=1.0, lease_seconds=10.0))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
            tasks = tasks_pb2_grpc.TasksServiceStub(channel)
            first = (await stub.CreateTranscription(upload_request(tone_wav()))).task
            assert (await _wait_final(channel, first.task_id)).state == COMPLETED
            stored_before = check_file_store_intact(files)
            count_before = len((await tasks.ListTasks(tasks_pb2.ListTasksRequest(page_size=100))).tasks)
            new_upload = tone_wav(1.5)

            with read_only(files):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.CreateTranscription(upload_request(new_upload))
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                assert error_info(caught.value).reason == "FILE_STORE_UNWRITABLE"
                assert "cannot write" in caught.value.details()
                # A live stream is relayed in full; only keeping its record fails, and says so.
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await _stream(channel, b"\1\0" * 16000)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                assert error_info(caught.value).reason == "FILE_STORE_UNWRITABLE"
                # Reads keep working, and nothing half-made became a task.
                await _still_serving(channel)
                listed = (await tasks.ListTasks(tasks_pb2.ListTasksRequest(page_size=100))).tasks
                assert len(listed) == count_before
                again = (await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=first.task_id))).task
                assert again.state == COMPLETED and again.transcript.text == "hello world"
                body = (await files_pb2_grpc.FilesServiceStub(channel).GetFile(
                    files_pb2.GetFileRequest(file_id=first.input_file_id))).content
                assert body.data == tone_wav()

            assert check_file_store_intact(files) == stored_before
            retried = (await stub.CreateTranscription(upload_request(new_upload))).task
            assert (await _wait_final(channel, retried.task_id)).state == COMPLETED
            await _still_serving(channel)
        check_file_store_intact(files)
    finally:
        await proxy.stop(0.5)
        await miner.stop(0.5)
    check_task_store_intact(tmp_path / "tasks.db")


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


async def test_full_disk_refuses_clearly_keeps_serving_and_recovers(tmp_path):
    """The proxy process may write no file beyond 1 MB: file and task stores both hit it."""
    limit = 1_000_000
    miner_port, proxy_port = free_port(), free_port()
    address = f"127.0.0.1:{proxy_port}"
    miner = start_fake_miner(miner_port, tmp_path / "miner.log")
    proxy = start_proxy(proxy_port, tmp_path, [f"127.0.0.1:{miner_port}"], extra=["--lease-seconds", "5"],
                        preexec_fn=_limit_file_size(limit))
    try:
        wait_serving(f"127.0.0.1:{miner_port}", miner)
        wait_serving(address, proxy)
        wait_miners_online(address, 1)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = transcription_pb2_grpc.TranscriptionServiceStub(channel)
            # A file larger than the space left: refused, with the reason.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateTranscription(upload_request(tone_wav(40.0)))  # 1.28 MB
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
            assert error_info(caught.value).reason == "FILE_STORE_UNWRITABLE"
            await _still_serving(channel)

            # Small uploads until the task store's files reach the limit too.
            accepted: list[str] = []
            refusal: grpc.aio.AioRpcError | None = None
            for index in range(400):
                try:
                    reply = await stub.CreateTranscription(upload_request(tone_wav(0.2) + index.to_bytes(4, "little")))
                except grpc.aio.AioRpcError as exc:
                    refusal = exc
                    break
                accepted.append(reply.task.task_id)
            assert refusal is not None, "the task store never reached the size limit"
            assert refusal.code() == grpc.StatusCode.UNAVAILABLE, (refusal.code(), refusal.details())
            assert error_info(refusal).reason in ("TASK_STORE_UNAVAILABLE", "FILE_STORE_UNWRITABLE")
            await _still_serving(channel)
            for task_id in accepted[:5] + accepted[-5:]:
                await tasks_pb2_grpc.TasksServiceStub(channel).GetTask(tasks_pb2.GetTaskRequest(task_id=task_id))

            # Space is back: everything works again and every accepted task finishes.
            psutil.Process(proxy.pid).rlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            late = (await stub.CreateTranscription(upload_request(tone_wav(40.0)))).task
            for task_id in [*accepted, late.task_id]:
                task = await _wait_final(channel, task_id, timeout=60)
                assert task.state == COMPLETED, (task_id, task.state, task.failure_reason)
            await _still_serving(channel)
        assert proxy.poll() is None, "the proxy died"
    finally:
        stop(proxy)
        stop(miner)
    check_file_store_intact(tmp_path / "files")
    check_task_store_intact(tmp_path / "tasks.db")

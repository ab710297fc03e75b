"""A miner dies in the middle of a live stream; the user's stream goes on, once, without repeats."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from tests.helpers import free_port, load_pcm16, wer
from violet_grpc.client import VioletClient
from violet_grpc.proxy.server import create_server as create_proxy
from violet_grpc.settings import ProxySettings
from violet_grpc.text_normalize import normalize_text


def _start_miner(tmp_path, name: str, port: int) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("wb")
    argv = [sys.executable, "-m", "violet_grpc.miner.server", "--axon.port", str(port), "--engines", "asr",
            "--miner-id", name, "--max-slots", "1", "--auth", "off"]
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
async def two_miner_net(tmp_path):
    ports = {"miner-a": free_port(), "miner-b": free_port()}
    procs = {name: _start_miner(tmp_path, name, port) for name, port in ports.items()}
    proxy = await create_proxy(ProxySettings(
        auth=False, port=0, task_store=str(tmp_path / "tasks.db"), file_store=str(tmp_path / "files"),
        miners=[f"127.0.0.1:{p}" for p in ports.values()], heartbeat_seconds=0.5))
    registry = proxy.ctx.registry
    for _ in range(240):
        if sum(registry.is_online(m) for m in registry.all()) == 2:
            break
        await asyncio.sleep(0.25)
    else:
        pytest.fail("miners did not come up: " + "".join((tmp_path / f"{n}.log").read_text() for n in ports))
    yield proxy, procs
    await proxy.stop(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _stream(address: str, pcm: bytes, on_progress=None) -> list:
    events = []
    async with VioletClient(address) as client:
        async for event in client.stream_pcm(pcm, realtime=True, language="en"):
            events.append(event)
            if on_progress:
                await on_progress(event)
    return events


async def test_killed_miner_mid_stream_is_replaced_transparently(two_miner_net, jfk_flac, jfk_text):
    proxy, procs = two_miner_net
    address = f"127.0.0.1:{proxy.port}"
    pcm = load_pcm16(jfk_flac)
    baseline = await _stream(address, pcm)
    baseline_wer = wer(jfk_text, " ".join(e.text for e in baseline if e.kind == "final"))

    killed: list[str] = []

    async def kill_serving_miner(event) -> None:
        if killed or event.kind != "final":
            return
        serving = [m for m in proxy.ctx.registry.all() if m.in_flight > 0]
        assert len(serving) == 1
        killed.append(serving[0].miner_id)
        os.kill(procs[serving[0].miner_id].pid, signal.SIGKILL)

    events = await _stream(address, pcm, kill_serving_miner)
    assert killed, "no final arrived before the end, so no miner was killed"
    summary = events[-1].message.summary
    assert events[-1].kind == "summary"
    assert summary.failover_count == 1
    assert summary.miner_id != killed[0]
    finals = [e for e in events if e.kind == "final"]
    text = " ".join(e.text for e in finals)
    assert wer(jfk_text, text) <= baseline_wer + 0.05, text
    words = normalize_text(text).split()
    assert len(words) <= len(normalize_text(jfk_text).split()) + 1, f"repeated words: {text}"
    ends = [e.end for e in finals]
    assert ends == sorted(ends)
    utterances = [e.message.final_result.utterance_index for e in finals]
    assert utterances == sorted(utterances)

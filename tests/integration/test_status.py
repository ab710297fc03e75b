"""System.GetStatus (GET /api/v1/status) notices a miner that goes away within one heartbeat
interval: in-process servers stopped mid-test, a real miner process killed, and a
heartbeat-only miner that stops beating."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from violet.v1 import miner_gateway_pb2, miner_gateway_pb2_grpc, system_pb2, system_pb2_grpc

from tests.helpers import free_port
from violet_grpc.miner.engine_loader import Engines
from violet_grpc.miner.server import create_server as create_miner
from violet_grpc.proxy.server import RunningProxy
from violet_grpc.proxy.server import create_server as create_proxy
from violet_grpc.settings import MinerSettings, ProxySettings

HEARTBEAT = 1.0


async def start_proxy(tmp: Path, miners: list[str], heartbeat: float = HEARTBEAT) -> RunningProxy:
    return await create_proxy(ProxySettings(
        auth=False, port=0, task_store=str(tmp / "tasks.db"), file_store=str(tmp / "files"),
        miners=miners, heartbeat_seconds=heartbeat,
    ))


async def online(proxy: RunningProxy) -> dict[str, bool]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
        status = await system_pb2_grpc.SystemServiceStub(channel).GetStatus(system_pb2.GetStatusRequest())
    assert status.miners_online == sum(m.online for m in status.miners)
    return {m.miner_id: m.online for m in status.miners}


async def wait_for(proxy: RunningProxy, wanted: dict[str, bool], timeout: float) -> float:
    """Seconds until GetStatus shows ``wanted`` for those miners (fails after ``timeout``)."""
    import asyncio

    started = time.monotonic()
    seen: dict[str, bool] = {}
    while time.monotonic() - started < timeout:
        seen = await online(proxy)
        if all(seen.get(k) == v for k, v in wanted.items()):
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"status still {seen} after {timeout}s; wanted {wanted}")


async def test_stopped_miner_server_is_offline_within_one_heartbeat(tmp_path):
    miners = [await create_miner(MinerSettings(port=0, miner_id=f"m{i}", auth=False), Engines()) for i in range(2)]
    proxy = await start_proxy(tmp_path, [f"127.0.0.1:{port}" for _, port, _ in miners])
    try:
        await wait_for(proxy, {"m0": True, "m1": True}, timeout=5)
        await miners[1][0].stop(0)
        took = await wait_for(proxy, {"m1": False}, timeout=HEARTBEAT)
        assert took < HEARTBEAT
        assert (await online(proxy))["m0"] is True
        # A miner that comes back on the same port is online again by the next probe.
        back, _, _ = await create_miner(MinerSettings(port=miners[1][1], miner_id="m1", auth=False), Engines())
        miners[1] = (back, miners[1][1], None)
        await wait_for(proxy, {"m1": True}, timeout=3 * HEARTBEAT)
    finally:
        await proxy.stop(0.2)
        for server, _, _ in miners:
            await server.stop(0)


async def test_killed_miner_process_is_offline_within_one_heartbeat(tmp_path):
    port = free_port()
    env = {**os.environ, "VIOLET_AUTH": "off", "VIOLET_TELEMETRY": "off"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "violet_grpc.miner.server", "--axon.ip", "127.0.0.1", "--axon.port", str(port),
         "--engines", "", "--miner-id", "real-miner"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    proxy = None
    try:
        proxy = await start_proxy(tmp_path, [f"127.0.0.1:{port}"])
        await wait_for(proxy, {"real-miner": True}, timeout=30)
        proc.send_signal(signal.SIGKILL)
        took = await wait_for(proxy, {"real-miner": False}, timeout=HEARTBEAT)
        assert took < HEARTBEAT
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proxy is not None:
            await proxy.stop(0.2)


async def test_heartbeat_only_miner_is_offline_one_interval_after_its_last_beat(tmp_path):
    interval = 2.0
    proxy = await start_proxy(tmp_path, [], heartbeat=interval)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{proxy.port}") as channel:
            reply = await miner_gateway_pb2_grpc.MinerGatewayServiceStub(channel).Heartbeat(
                miner_gateway_pb2.HeartbeatRequest(miner_id="puller"))
        last_beat = time.monotonic()
        # Asked to beat every half interval, so one late beat does not flap it offline.
        assert reply.heartbeat_interval_seconds == 1
        assert (await online(proxy))["puller"] is True
        await wait_for(proxy, {"puller": False}, timeout=interval + 1)
        assert time.monotonic() - last_beat <= interval + 0.3
    finally:
        await proxy.stop(0.2)

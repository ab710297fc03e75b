"""The miner process: loads engines, serves MinerService, heartbeats to the proxy."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from violet.v1 import miner_gateway_pb2, miner_gateway_pb2_grpc, miner_pb2, miner_pb2_grpc

from violet_grpc import errors
from violet_grpc import settings as settings_mod
from violet_grpc import telemetry
from violet_grpc.auth.identity import Identity, load_identity
from violet_grpc.auth.policy import miner_rules
from violet_grpc.miner.capacity import Slots
from violet_grpc.miner.engine_loader import Engines, load_engines
from violet_grpc.miner.pull_worker import PullWorker
from violet_grpc.miner.servicer import MinerServicer
from violet_grpc.server_common import (
    CHANNEL_OPTIONS,
    SERVER_OPTIONS,
    add_health_and_reflection,
    bind,
    mark_serving,
    wait_for_termination,
)
from violet_grpc.settings import MinerSettings

log = logging.getLogger(__name__)

SERVICE_NAME = miner_pb2.DESCRIPTOR.services_by_name["MinerService"].full_name


async def create_server(
    settings: MinerSettings, engines: Engines | None = None, *, identity: Identity | None = None
) -> tuple[grpc.aio.Server, int, MinerServicer]:
    """Builds and starts the miner's server; returns it, its real port and the servicer.

    With ``settings.auth`` (the default) MinerService takes only calls signed by the
    configured proxy hotkey or by registered validators, and the miner's id is its hotkey.
    """
    if settings.auth and identity is None:
        identity = load_identity(settings)
    engines = engines if engines is not None else await asyncio.to_thread(load_engines, settings)
    cores = os.cpu_count() or 1
    slots = Slots(settings.max_slots or cores)
    executor = ThreadPoolExecutor(max_workers=max(slots.limit, cores), thread_name_prefix="miner-engine")
    interceptors = []
    if settings.auth and identity is not None:
        if not settings.proxy_hotkey:
            log.warning("no --proxy-hotkey: only validators may call this miner, not the proxy")
        interceptors = identity.interceptors(miner_rules(), trusted=[settings.proxy_hotkey])
    server = grpc.aio.server(options=SERVER_OPTIONS,
                             interceptors=[*interceptors, *telemetry.miner_interceptors(telemetry.current())])
    port = bind(server, settings.host, settings.port)
    miner_id = identity.hotkey if identity is not None else settings.miner_id or f"{settings.host}:{port}"
    servicer = MinerServicer(engines, executor, slots, miner_id=miner_id)
    miner_pb2_grpc.add_MinerServiceServicer_to_server(servicer, server)
    health_servicer = add_health_and_reflection(server, [SERVICE_NAME])
    await server.start()
    await mark_serving(health_servicer, [SERVICE_NAME])
    return server, port, servicer


async def heartbeat_loop(servicer: MinerServicer, proxy: str, endpoint: str, interval: float = 5.0, *,
                         identity: Identity | None = None, proxy_hotkey: str = "") -> None:
    """Tells the proxy every few seconds that this miner is alive and how much room it has.

    With an ``identity`` the heartbeats are signed for ``proxy_hotkey``.
    """
    channel_ = (identity.channel(proxy, proxy_hotkey or None, options=CHANNEL_OPTIONS) if identity is not None
                else grpc.aio.insecure_channel(proxy, options=CHANNEL_OPTIONS))
    async with channel_ as channel:
        stub = miner_gateway_pb2_grpc.MinerGatewayServiceStub(channel)
        while True:
            request = miner_gateway_pb2.HeartbeatRequest(
                miner_id=servicer.miner_id, endpoint=endpoint, capabilities=servicer.capabilities()
            )
            try:
                reply = await stub.Heartbeat(request, timeout=5)
                interval = reply.heartbeat_interval_seconds or interval
            except grpc.RpcError as exc:
                log.warning("heartbeat to %s failed: %s", proxy, exc.code().name)
            await asyncio.sleep(interval)


async def serve(settings: MinerSettings, identity: Identity | None = None,
                on_listening: Callable[[int], Awaitable[None]] | None = None) -> None:
    """Runs the miner until SIGINT/SIGTERM (``on_listening(port)`` runs once it serves)."""
    if settings.auth and identity is None:
        identity = load_identity(settings)
    if settings.auth and settings.proxy_server_url and not settings.proxy_hotkey:
        raise errors.FailedPrecondition(
            "signed heartbeats need the proxy's hotkey: pass --proxy-hotkey SS58 (or VIOLET_PROXY_HOTKEY)",
            reason="MISSING_SETTING", metadata={"field": "proxy_hotkey"})
    server, port, servicer = await create_server(settings, identity=identity)
    if on_listening is not None:
        await on_listening(port)
    endpoint = f"{settings.external_ip or settings.host}:{settings.external_port or port}"
    print(f"violet miner {servicer.miner_id} listening on {endpoint}", flush=True)
    background = []
    if settings.proxy_server_url:
        background.append(asyncio.create_task(heartbeat_loop(
            servicer, settings.proxy_server_url, endpoint, identity=identity if settings.auth else None,
            proxy_hotkey=settings.proxy_hotkey)))
    if settings.pull_url:
        signer = identity.wallet if settings.auth and identity is not None else None
        worker = PullWorker(settings.pull_url, servicer.miner_id, servicer.engines, servicer.capabilities,
                            wallet=signer, proxy_hotkey=settings.proxy_hotkey or None)
        background.append(asyncio.create_task(worker.run()))
        print(f"pulling work from {settings.pull_url}", flush=True)
    try:
        await wait_for_termination(server)
    finally:
        for task in background:
            task.cancel()
        telemetry.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``violet miner``."""
    parser = argparse.ArgumentParser(prog="violet miner", description="Run a Violet miner (MinerService over gRPC).")
    settings_mod.add_arguments(parser, MinerSettings)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(settings_mod.from_namespace(MinerSettings, args)))


if __name__ == "__main__":
    main()

"""The proxy process: public API, gateways, dispatcher and stream relay on one gRPC server."""
from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from violet.v1 import (
    files_pb2,
    files_pb2_grpc,
    miner_gateway_pb2,
    miner_gateway_pb2_grpc,
    openai_audio_pb2,
    openai_audio_pb2_grpc,
    synthesis_pb2,
    synthesis_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
    transcription_pb2,
    transcription_pb2_grpc,
    translation_pb2,
    translation_pb2_grpc,
    validator_gateway_pb2,
    validator_gateway_pb2_grpc,
)

from violet_grpc import settings as settings_mod
from violet_grpc import telemetry
from violet_grpc.auth.identity import Identity, load_identity
from violet_grpc.auth.policy import proxy_rules
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.dispatcher import Dispatcher
from violet_grpc.proxy.miner_registry import MinerRegistry
from violet_grpc.proxy.orchestrator import Orchestrator
from violet_grpc.proxy.services.files import FilesServicer
from violet_grpc.proxy.services.miner_gateway import MinerGatewayServicer
from violet_grpc.proxy.services.openai_audio import OpenAIAudioServicer
from violet_grpc.proxy.services.synthesis import SynthesisServicer
from violet_grpc.proxy.services.system import SystemServicer
from violet_grpc.proxy.services.tasks import TasksServicer
from violet_grpc.proxy.services.transcription import TranscriptionServicer
from violet_grpc.proxy.services.translation import TranslationServicer
from violet_grpc.proxy.services.validator_gateway import ValidatorGatewayServicer
from violet_grpc.proxy.stream_relay import StreamRelay
from violet_grpc.proxy.task_events import TaskEvents
from violet_grpc.server_common import CHANNEL_OPTIONS, SERVER_OPTIONS, add_health_and_reflection, bind, mark_serving, wait_for_termination
from violet_grpc.settings import ProxySettings
from violet_grpc.storage import RetryPolicy, file_store_from_uri, task_store_from_uri

log = logging.getLogger(__name__)


def _service(module: object, name: str) -> str:
    return module.DESCRIPTOR.services_by_name[name].full_name  # type: ignore[attr-defined]


SERVICE_NAMES = [
    _service(system_pb2, "SystemService"),
    _service(transcription_pb2, "TranscriptionService"),
    _service(synthesis_pb2, "SynthesisService"),
    _service(translation_pb2, "TranslationService"),
    _service(files_pb2, "FilesService"),
    _service(tasks_pb2, "TasksService"),
    _service(miner_gateway_pb2, "MinerGatewayService"),
    _service(validator_gateway_pb2, "ValidatorGatewayService"),
    _service(openai_audio_pb2, "OpenAIAudioService"),
]


@dataclass
class RunningProxy:
    """A started proxy: the server, its port and its collaborators (tests reach into these)."""

    server: grpc.aio.Server
    port: int
    ctx: ProxyContext

    async def stop(self, grace: float = 2.0) -> None:
        """Stops serving, then the background loops, then closes the store."""
        await self.ctx.dispatcher.stop()
        await self.server.stop(grace)
        await self.ctx.registry.stop()
        await self.ctx.store.close()


def build_context(settings: ProxySettings, identity: Identity | None = None) -> ProxyContext:
    """Wires stores, registry, orchestrator, dispatcher and relay from settings.

    With an ``identity`` (auth on), calls to miners are signed with the proxy's hotkey.
    """
    store = task_store_from_uri(settings.task_store, credentials=settings.firebase_credentials or None)
    files = file_store_from_uri(settings.file_store, credentials=settings.firebase_credentials or None)
    events = TaskEvents()
    channels = None
    if identity is not None:
        def channels(endpoint: str, receiver: Callable[[], str | None]) -> grpc.aio.Channel:
            return identity.channel(endpoint, receiver, options=CHANNEL_OPTIONS)
    registry = MinerRegistry(settings.miners, settings.heartbeat_seconds, channel_factory=channels)
    store = telemetry.instrument_proxy(store, registry, telemetry.current())
    orchestrator = Orchestrator(store, files, events, RetryPolicy(max_attempts=settings.max_attempts))
    dispatcher = Dispatcher(orchestrator, registry, lease_seconds=settings.lease_seconds)
    orchestrator.on_created(dispatcher.wake)
    relay = StreamRelay(orchestrator, registry, max_stream_seconds=settings.max_stream_seconds)
    return ProxyContext(settings, store, files, registry, orchestrator, dispatcher, relay)


async def create_server(settings: ProxySettings) -> RunningProxy:
    """Builds, binds and starts the proxy (port 0 picks a free port).

    With ``settings.auth`` (the default) the miner and validator gateways take only
    hotkey-signed calls from registered neurons; the public services stay open.
    """
    identity = load_identity(settings) if settings.auth else None
    ctx = build_context(settings, identity)
    interceptors = identity.interceptors(proxy_rules()) if identity else []
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
    port = bind(server, settings.host, settings.port)
    system_pb2_grpc.add_SystemServiceServicer_to_server(SystemServicer(ctx), server)
    transcription_pb2_grpc.add_TranscriptionServiceServicer_to_server(TranscriptionServicer(ctx), server)
    synthesis_pb2_grpc.add_SynthesisServiceServicer_to_server(SynthesisServicer(ctx), server)
    translation_pb2_grpc.add_TranslationServiceServicer_to_server(TranslationServicer(ctx), server)
    files_pb2_grpc.add_FilesServiceServicer_to_server(FilesServicer(ctx), server)
    tasks_pb2_grpc.add_TasksServiceServicer_to_server(TasksServicer(ctx), server)
    miner_gateway_pb2_grpc.add_MinerGatewayServiceServicer_to_server(MinerGatewayServicer(ctx), server)
    validator_gateway_pb2_grpc.add_ValidatorGatewayServiceServicer_to_server(ValidatorGatewayServicer(ctx), server)
    openai_audio_pb2_grpc.add_OpenAIAudioServiceServicer_to_server(OpenAIAudioServicer(ctx), server)
    health_servicer = add_health_and_reflection(server, SERVICE_NAMES)
    await server.start()
    await ctx.registry.start()
    await ctx.dispatcher.start()
    await mark_serving(health_servicer, SERVICE_NAMES)
    return RunningProxy(server, port, ctx)


async def serve(settings: ProxySettings) -> None:
    """Runs the proxy until SIGINT/SIGTERM."""
    running = await create_server(settings)
    print(f"violet proxy listening on {settings.host}:{running.port}", flush=True)
    try:
        await wait_for_termination(running.server)
    finally:
        await running.stop()
        telemetry.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``violet proxy``."""
    parser = argparse.ArgumentParser(prog="violet proxy", description="Run the Violet proxy (public gRPC API).")
    settings_mod.add_arguments(parser, ProxySettings)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(settings_mod.from_namespace(ProxySettings, args)))


if __name__ == "__main__":
    main()

"""Pieces every Violet gRPC server shares: health, reflection, message limits, graceful stop."""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha import _async as reflection_aio

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"

log = logging.getLogger(__name__)

#: Largest message a server accepts or sends (uploads are also limited by settings).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
]

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def add_health_and_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> health.aio.HealthServicer:
    """Registers grpc.health.v1 (all services SERVING) and server reflection (v1 and v1alpha).

    grpcurl 1.8 asks for reflection v1alpha, newer clients for v1, so both are served.
    """
    names = list(service_names)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    all_names = [
        *names,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
        REFLECTION_V1,
    ]
    servicer = reflection_aio.ReflectionServicer(all_names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    _add_reflection_v1(servicer, server)
    return health_servicer


def _add_reflection_v1(servicer: reflection_aio.ReflectionServicer, server: grpc.aio.Server) -> None:
    """Serves reflection v1 with the v1alpha implementation.

    grpcio-reflection only ships v1alpha; v1 is the same protocol under another package
    name (identical messages on the wire), so one servicer answers both.
    """
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": handler}),)
    )


async def mark_serving(health_servicer: health.aio.HealthServicer, service_names: Iterable[str]) -> None:
    """Marks the overall server and every named service SERVING."""
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    for name in service_names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


def bind(server: grpc.aio.Server, host: str, port: int) -> int:
    """Binds an insecure port and returns the real port (port 0 picks a free one)."""
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return bound


async def wait_for_termination(server: grpc.aio.Server, grace: float = 5.0) -> None:
    """Serves until SIGINT/SIGTERM, then stops gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping (grace %.0f s)", grace)
    await server.stop(grace)

"""SystemService: liveness and the network overview."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from violet.v1 import system_pb2, system_pb2_grpc

from violet_grpc import __version__
from violet_grpc.convert import timestamp
from violet_grpc.proxy.context import ProxyContext
from violet_grpc.proxy.orchestrator import utcnow
from violet_grpc.rpc_errors import translate_errors
from violet_grpc.tasks import TaskState


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    """Answers /health and /api/v1/status."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @translate_errors
    async def Check(self, request: system_pb2.CheckRequest, context: Any) -> system_pb2.CheckResponse:
        return system_pb2.CheckResponse(status=system_pb2.SERVING_STATUS_SERVING, version=__version__)

    @translate_errors
    async def GetStatus(self, request: system_pb2.GetStatusRequest, context: Any) -> system_pb2.GetStatusResponse:
        ctx = self.ctx
        counts = await ctx.store.count_by_state()
        recent = await ctx.store.completed_since(utcnow() - timedelta(minutes=5))
        miners = [
            system_pb2.MinerStatus(
                miner_id=m.miner_id, endpoint=m.endpoint, online=ctx.registry.is_online(m),
                free_slots=m.free_slots, max_slots=m.capabilities.max_slots, score=m.score,
                last_seen_time=timestamp(m.last_seen), task_types=list(m.capabilities.task_types),
            )
            for m in ctx.registry.all()
        ]
        return system_pb2.GetStatusResponse(
            miners_online=sum(m.online for m in miners),
            miners=miners,
            queue_depth=counts.get(TaskState.QUEUED, 0),
            tasks_by_state=[system_pb2.TaskStateCount(state=int(s), count=n) for s, n in sorted(counts.items())],
            uptime_seconds=time.monotonic() - ctx.started_at,
            version=__version__,
            completed_per_minute=recent / 5.0,
            task_store_backend=ctx.store.backend,
            file_store_backend=ctx.files.backend,
            active_streams=ctx.relay.active,
        )

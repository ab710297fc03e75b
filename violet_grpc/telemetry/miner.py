"""Miner metrics, observed by a gRPC server interceptor around the MinerService job methods.

Logged (``miner/`` prefix): ``jobs`` and ``errors`` (also per method, e.g.
``miner/Transcribe/jobs``), ``error_rate``, ``job_seconds`` (also per method; mean/p50/p95/max)
and ``cancelled`` (the caller went away), with the sink's ``_per_min`` and ``_total``.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from violet_grpc.telemetry.sink import Telemetry

#: The methods that are work; GetCapabilities, health and reflection are not counted.
JOB_METHODS = frozenset({"Transcribe", "StreamingTranscribe", "Synthesize", "TranslateDocument"})
_SERVICE = "/violet.v1.MinerService/"


def miner_interceptors(telemetry: Telemetry) -> list[grpc.aio.ServerInterceptor]:
    """Interceptors to build the miner's server with (none when telemetry is off)."""
    if not telemetry.enabled:
        return []
    telemetry.role("miner")
    telemetry.ratio("miner/error_rate", "miner/errors", "miner/jobs")
    return [JobMetricsInterceptor(telemetry)]


class JobMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every MinerService job, whatever its streaming shape."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        name = method[len(_SERVICE):] if method.startswith(_SERVICE) else ""
        if handler is None or name not in JOB_METHODS:
            return handler
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._wrap_unary(name, handler.unary_unary))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self._wrap_unary(name, handler.stream_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._wrap_stream(name, handler.unary_stream))
        return handler._replace(stream_stream=self._wrap_stream(name, handler.stream_stream))

    def _done(self, name: str, started: float, outcome: str) -> None:
        t = self.telemetry
        seconds = time.perf_counter() - started
        t.count("miner/jobs")
        t.count(f"miner/{name}/jobs")
        t.observe("miner/job_seconds", seconds)
        t.observe(f"miner/{name}/job_seconds", seconds)
        if outcome == "error":
            t.count("miner/errors")
            t.count(f"miner/{name}/errors")
        elif outcome == "cancelled":
            t.count("miner/cancelled")

    def _wrap_unary(self, name: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def observed(request: Any, context: Any) -> Any:
            started, outcome = time.perf_counter(), "error"
            try:
                result = await behavior(request, context)
                outcome = _outcome(context)
                return result
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            finally:
                self._done(name, started, outcome)

        return observed

    def _wrap_stream(self, name: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def observed(request: Any, context: Any) -> Any:
            started, outcome = time.perf_counter(), "error"
            try:
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
                outcome = _outcome(context)
            except (asyncio.CancelledError, GeneratorExit):
                outcome = "cancelled"
                raise
            finally:
                self._done(name, started, outcome)

        return observed


def _outcome(context: Any) -> str:
    """``ok`` unless the handler set an error status without raising."""
    try:
        code = context.code()
    except Exception:
        return "ok"
    return "ok" if code in (None, grpc.StatusCode.OK, 0) else "error"
